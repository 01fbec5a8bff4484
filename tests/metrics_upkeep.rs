//! The metrics recorder folds histogram samples into their buckets by itself: a server that
//! nobody scrapes must not grow with the number of requests it served (docs/PERFORMANCE.md,
//! finding 14). One test in its own binary, so that its resident memory is its own.

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
    // Bursts of samples, each followed by one upkeep interval: the server's own upkeep thread
    // folds them whenever it runs, and it has every interval to run in, so the test does not
    // depend on how promptly a busy machine schedules it (one CI run recorded so fast, with the
    // thread starved, that three intervals' samples were unfolded at once).
    const BURST: u64 = 500_000;
    let burst = || {
        for _ in 0..BURST {
            histogram.record(0.001);
        }
        std::thread::sleep(mcp_dust_server::observe::UPKEEP_INTERVAL);
    };
    // What one burst holds, and the allocator's pools, are reached first.
    for _ in 0..3 {
        burst();
    }
    let before = rss_kb();
    let bursts: u64 = 20;
    for _ in 0..bursts {
        burst();
    }
    let samples = bursts * BURST;
    let grown_kb = rss_kb().saturating_sub(before);
    // Kept until a scrape, each sample would hold 8 bytes: the bursts would add `samples * 8`
    // bytes. Folded every interval, the resident memory stays where it was.
    let unbounded_kb = samples * 8 / 1024;
    assert!(
        unbounded_kb > 8 * 1024,
        "too few samples to tell ({samples} in {bursts} bursts)"
    );
    assert!(
        grown_kb < unbounded_kb / 4,
        "resident memory grew by {grown_kb} kB over {samples} histogram samples \
         (kept unfolded they take {unbounded_kb} kB)"
    );
}
