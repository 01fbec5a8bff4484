//! Cold start for `docs/PERFORMANCE.md`: spawns `<binary> serve` (environment inherited),
//! polls `GET /live` on `--port` every 0.5 ms with a raw HTTP/1.1 request, and takes the time
//! from spawn to the first `200`. Repeats, kills each child, prints the median, min and max.
//!
//! `cargo run --release --example coldstart -- target/release/mcp-dust-server 5003 20`

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// Whether `/live` answers 200 right now.
fn live(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .context("usage: coldstart <binary> [port] [runs]")?;
    let port: u16 = args.next().map_or(Ok(5003), |p| p.parse())?;
    let runs: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    if live(port) {
        bail!("something already answers on port {port}");
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .arg("serve")
            .env("MCP_SERVER_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {binary}"))?;
        let deadline = started + Duration::from_secs(10);
        let answered = loop {
            if live(port) {
                break Some(started.elapsed());
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        child.kill()?;
        child.wait()?;
        times.push(answered.context("no answer from /live within 10 s")?);
        // Let the port go before the next start.
        while live(port) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| start to first /live answer | {runs} runs | median {:.1} ms | min {:.1} ms | max {:.1} ms |",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
    Ok(())
}
