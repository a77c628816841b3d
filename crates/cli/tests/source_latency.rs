//! `ferry.sourceLatencyTargetMs` (issue 18): the adaptive controller keeps the p99 of ferry's
//! own Cassandra page reads under the target by running fewer chunks at once. A target no page
//! read can meet (1 ms for 5,000-row pages) makes it back off window after window, against the
//! real Cassandra; the data still arrives exact.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_backs_off_when_page_reads_are_over_the_target() {
    common::testbed();
    let ks = common::unique_name("srclat");
    common::gen(&ks, "t", 100_000, 1, 21);
    let cfg = common::write_config(
        &ks,
        &(common::testbed_properties(&ks, "t", &ks)
            // Throttled to last ~10 s: the controller judges 2 s windows (the first at a level
            // is discarded), and an unthrottled run on a quiet machine ends within two.
            + "ferry.maxParallelChunks=16\nferry.sourceLatencyTargetMs=1\ncassandra.readsPerSec=10000\n"),
    );
    let cfg = cfg.to_str().unwrap();
    let out = common::ferry()
        .args(["migrate", "-c", cfg, "--create-tables", "--json"])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("run ferry");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let t = &summary["tables"][0];
    eprintln!("{t:#}");
    assert_eq!(t["rows_written"], 100_000);
    let p99 = t["source_page_p99_ms"].as_f64().expect("page-read p99");
    // The fault: every page read was over the 1 ms target.
    assert!(p99 > 1.0, "p99 {p99} ms");
    let (start, end) = (
        t["workers"]["start"].as_u64().unwrap(),
        t["workers"]["end"].as_u64().unwrap(),
    );
    assert_eq!(start, 16);
    // Backed off by a quarter at least once, and never raised above the start.
    assert!(end <= 12, "workers {start} → {end}");
    assert!(t["workers"]["peak"].as_u64().unwrap() <= 16);
    let out = common::ferry()
        .args(["validate", "-c", cfg])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("validate");
    assert!(out.status.success(), "the target differs from the source");
}
