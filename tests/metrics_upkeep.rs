//! The metrics recorder folds histogram samples into their buckets by itself: a server that
//! nobody scrapes must not grow with the number of requests it served (docs/PERFORMANCE.md,
//! finding 14). One test in its own binary, so that its resident memory is its own.

use std::time::{Duration, Instant};

/// This process's resident memory in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn histogram_samples_do_not_accumulate_without_a_scrape() {
    let _handle = mcp_dust_server::observe::install("upkeep_test");
    let histogram = metrics::histogram!("http_request_duration_seconds", "route" => "/mcp");
    let record_for = |span: Duration| -> u64 {
        let until = Instant::now() + span;
        let mut samples = 0;
        while Instant::now() < until {
            for _ in 0..100_000 {
                histogram.record(0.001);
            }
            samples += 100_000;
            // Leave the other threads (the upkeep among them) room on a busy machine.
            std::thread::sleep(Duration::from_millis(1));
        }
        samples
    };
    // What one upkeep interval holds, and the allocator's pools, are reached first.
    record_for(mcp_dust_server::observe::UPKEEP_INTERVAL * 2);
    let before = rss_kb();
    let samples = record_for(mcp_dust_server::observe::UPKEEP_INTERVAL * 5);
    let grown_kb = rss_kb().saturating_sub(before);
    // Kept until a scrape, each sample would hold 8 bytes: the five intervals would add
    // `samples * 8` bytes. Folded every interval, the resident memory stays where it was.
    let unbounded_kb = samples * 8 / 1024;
    assert!(
        unbounded_kb > 8 * 1024,
        "too few samples to tell ({samples} in five intervals)"
    );
    assert!(
        grown_kb < unbounded_kb / 4,
        "resident memory grew by {grown_kb} kB over {samples} histogram samples \
         (kept unfolded they take {unbounded_kb} kB)"
    );
}
