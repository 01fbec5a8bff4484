// Answers as people read them: an agent's Markdown, parsed by markdown-it (vendored in
// markdown-it.js) and built into DOM nodes here, token by token.
//
// Why tokens and not markdown-it's HTML: no HTML string is ever produced or parsed, so the page
// keeps `trusted-types 'none'` (no policy exists that could turn a string into markup) and there
// is no sanitizer to get right. What an answer can become is decided here, not by its text:
// - raw HTML stays text (`html: false`), and so does anything markdown-it does not know;
// - only the elements of ELEMENTS are created, with no attributes copied from the answer
//   except a link's address (markdown-it's `style` for table alignment is dropped: inline
//   styles are refused by the CSP anyway);
// - a link is a link only to http(s) or mailto, opens in a new tab without access to this page
//   (`noopener noreferrer`); any other address (`javascript:`, `data:`, relative) stays text;
// - images are shown as their alt text: the page loads nothing from elsewhere (`img-src 'self'`).
//
// Dust cites its sources with `:cite[ref]` (or `:cite[ref1,ref2]`) in the answer; `citations`
// maps each ref to `{title, url}` (the search results of the run). Each cited source gets a
// number in order of first citation, shown as `[n]`, a link to the source when its url is
// http(s), and listed under the answer.

import markdownit from "./markdown-it.js";

const md = markdownit({ html: false, linkify: true, typographer: false });

/** The tags a token may open, and what they become here. */
const ELEMENTS = new Map([
  ["p", "p"], ["ul", "ul"], ["ol", "ol"], ["li", "li"], ["blockquote", "blockquote"],
  ["strong", "strong"], ["em", "em"], ["s", "s"],
  ["table", "table"], ["thead", "thead"], ["tbody", "tbody"], ["tr", "tr"], ["th", "th"], ["td", "td"],
  // Headings sit inside a chat message: one level is the page's, so they start at h3.
  ["h1", "h3"], ["h2", "h4"], ["h3", "h5"], ["h4", "h6"], ["h5", "h6"], ["h6", "h6"],
]);

const CITE = /:cite\[([^\]\n]*)\]/g;
const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** `href` made safe to follow, or `null`: only absolute http(s) and mailto addresses. */
export function safeHref(href, protocols = LINK_PROTOCOLS) {
  try {
    const url = new URL(href);
    return protocols.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** The anchor of a link the page keeps: a new tab that cannot reach back into the console. */
function link(href, ...children) {
  const a = document.createElement("a");
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.append(...children);
  return a;
}

/** Looks a ref up in `citations` (an array of `{ref, title, url}` or an object by ref). */
function lookup(citations, ref) {
  if (Array.isArray(citations)) return citations.find((c) => c && c.ref === ref) || null;
  return (citations && Object.hasOwn(citations, ref) && citations[ref]) || null;
}

/**
 * The answer `text` (Markdown) as a fragment of DOM nodes, with its citations numbered and its
 * cited sources listed after it.
 */
export function renderAnswer(text, citations = []) {
  const cited = []; // refs in order of first citation; the number is the index + 1
  const fragment = document.createDocumentFragment();
  appendTokens(fragment, md.parse(String(text ?? ""), {}), citations, cited);
  if (cited.length) {
    const list = document.createElement("ol");
    list.className = "sources";
    list.setAttribute("aria-label", "Sources");
    for (const ref of cited) {
      const source = lookup(citations, ref);
      const title = (source && (source.title || source.url)) || ref;
      const href = source && safeHref(source.url, new Set(["http:", "https:"]));
      const item = document.createElement("li");
      item.append(href ? link(href, title) : title);
      list.append(item);
    }
    fragment.append(list);
  }
  return fragment;
}

/** Appends the nodes of `tokens` (a flat markdown-it stream with nesting) to `root`. */
function appendTokens(root, tokens, citations, cited) {
  const stack = [root];
  const top = () => stack[stack.length - 1];
  for (const token of tokens) {
    if (token.type === "inline") {
      appendTokens(top(), token.children || [], citations, cited);
    } else if (token.nesting === 1) {
      let node;
      if (token.type === "link_open") {
        const href = safeHref(token.attrGet("href"));
        node = href ? link(href) : document.createElement("span");
      } else {
        node = document.createElement(ELEMENTS.get(token.tag) || "span");
        const start = token.type === "ordered_list_open" && Number.parseInt(token.attrGet("start"), 10);
        if (start && start !== 1) node.start = start;
      }
      top().append(node);
      stack.push(node);
    } else if (token.nesting === -1) {
      if (stack.length > 1) stack.pop();
    } else {
      appendLeaf(top(), token, citations, cited);
    }
  }
}

/** One token that opens nothing: text, code, a break, a rule, an image. */
function appendLeaf(parent, token, citations, cited) {
  switch (token.type) {
    case "text":
      appendText(parent, token.content, citations, cited);
      break;
    case "code_inline": {
      const code = document.createElement("code");
      code.textContent = token.content;
      parent.append(code);
      break;
    }
    case "fence":
    case "code_block": {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = token.content;
      pre.append(code);
      parent.append(pre);
      break;
    }
    case "hardbreak":
      parent.append(document.createElement("br"));
      break;
    case "softbreak":
      parent.append("\n");
      break;
    case "hr":
      parent.append(document.createElement("hr"));
      break;
    case "image":
      // Its alt text only (the page loads no images from elsewhere).
      appendTokens(parent, token.children || [], citations, cited);
      break;
    default:
      // html_block / html_inline (not produced with `html: false`) and anything new: as text.
      if (token.content) parent.append(token.content);
  }
}

/** Text, with each `:cite[...]` replaced by the numbers of its sources. */
function appendText(parent, text, citations, cited) {
  let at = 0;
  for (const match of text.matchAll(CITE)) {
    if (match.index > at) parent.append(text.slice(at, match.index));
    at = match.index + match[0].length;
    const refs = match[1].split(",").map((r) => r.trim()).filter(Boolean);
    for (const ref of refs) {
      if (!cited.includes(ref)) cited.push(ref);
      const number = `[${cited.indexOf(ref) + 1}]`;
      const source = lookup(citations, ref);
      const href = source && safeHref(source.url, new Set(["http:", "https:"]));
      const sup = document.createElement("sup");
      sup.className = "citation";
      if (href) {
        const a = link(href, number);
        if (source.title) a.title = String(source.title);
        sup.append(a);
      } else {
        sup.append(number);
      }
      parent.append(sup);
    }
  }
  if (at < text.length) parent.append(text.slice(at));
}
