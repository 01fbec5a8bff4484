// Reads a `text/event-stream` response body (fetch + ReadableStream: EventSource cannot POST)
// and hands each event to `onEvent(name, data)` as it arrives.

/** Parses one SSE frame (the lines between two blank lines) into `{event, data}`. */
export function parseFrame(frame) {
  let event = "message";
  const data = [];
  for (const line of frame.split(/\r?\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

const FRAME_END = /\r?\n\r?\n/;

/** Consumes `response.body` to its end, calling `onEvent(name, parsedJson)` per event. */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let separator;
    while ((separator = FRAME_END.exec(buffer)) !== null) {
      const parsed = parseFrame(buffer.slice(0, separator.index));
      buffer = buffer.slice(separator.index + separator[0].length);
      if (parsed) onEvent(parsed.event, JSON.parse(parsed.data));
    }
  }
  const last = parseFrame(buffer);
  if (last) onEvent(last.event, JSON.parse(last.data));
}
