//! CQL frame compression (`cassandra.connection.compression`, issue 18): LZ4 cuts the bytes a
//! read takes on the wire (counted by toxiproxy, between ferry and Cassandra), the rows read are
//! the same, and `ferry diagnose` recommends LZ4 when the link's bandwidth limits the read (a
//! real bandwidth toxic on the source's proxy) and not on loopback.
//!
//! Both tests count or shape traffic on the shared `cassandra` proxy, so they run one at a time
//! (and alone in this test binary).

mod common;

use std::process::Output;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn ferry(args: &[&str]) -> Output {
    common::run_ferry_env(args, &[("FERRY_CASSANDRA_PASSWORD", "cassandra")])
}

/// A bandwidth toxic on the source proxy's downstream, removed on drop (also on a failed test).
struct Bandwidth;

impl Bandwidth {
    fn cap(kbps: u32) -> Bandwidth {
        common::toxiproxy(
            "DELETE",
            "/proxies/cassandra/toxics/compression_test_bw",
            "",
        );
        assert!(
            common::toxiproxy(
                "POST",
                "/proxies/cassandra/toxics",
                &format!(
                    r#"{{"name":"compression_test_bw","type":"bandwidth","stream":"downstream","toxicity":1.0,"attributes":{{"rate":{kbps}}}}}"#
                ),
            ),
            "adding the bandwidth toxic"
        );
        Bandwidth
    }
}

impl Drop for Bandwidth {
    fn drop(&mut self) {
        common::toxiproxy(
            "DELETE",
            "/proxies/cassandra/toxics/compression_test_bw",
            "",
        );
    }
}

fn compression_check(report: &serde_json::Value) -> serde_json::Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "cassandra.connection.compression")
        .cloned()
        .unwrap_or_else(|| panic!("no compression check in {report:#}"))
}

#[test]
fn lz4_cuts_the_bytes_a_read_takes_on_the_wire() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A benchmark's WAN settings replace the proxies' toxics: not while this one is on.
    let _net = common::network_lock_blocking();
    common::testbed();
    let ks = common::unique_name("lz4");
    common::gen(&ks, "t", 4_000, 1, 18);
    let cfg = common::write_config(&ks, &common::testbed_properties(&ks, "t", &ks));
    let cfg = cfg.to_str().unwrap();
    let mut bytes = Vec::new();
    for compression in ["NONE", "LZ4"] {
        let before = common::proxy_downstream_bytes("cassandra");
        let out = ferry(&[
            "migrate",
            "-c",
            cfg,
            "--create-tables",
            "--scan-only",
            "--json",
            "--set",
            &format!("cassandra.connection.compression={compression}"),
        ]);
        assert!(out.status.success());
        let after = common::proxy_downstream_bytes("cassandra");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(summary["tables"][0]["rows_read"], 4_000, "{summary:#}");
        bytes.push(after - before);
    }
    eprintln!("bytes from Cassandra: NONE {}, LZ4 {}", bytes[0], bytes[1]);
    // The full shape's random values compress to about 0.7 of their size.
    assert!(
        (bytes[1] as f64) < 0.85 * bytes[0] as f64,
        "LZ4 did not cut the bytes on the wire: {bytes:?}"
    );
}

#[test]
fn diagnose_recommends_lz4_when_the_links_bandwidth_limits_the_read() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A benchmark's WAN settings replace the proxies' toxics: not while this one is on.
    let _net = common::network_lock_blocking();
    common::testbed();
    let ks = common::unique_name("lz4_diag");
    common::gen(&ks, "t", 4_000, 1, 19);
    let cfg = common::write_config(&ks, &common::testbed_properties(&ks, "t", &ks));
    let cfg = cfg.to_str().unwrap();
    let diagnose = || {
        let out = ferry(&["diagnose", "-c", cfg, "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("diagnose JSON")
    };
    // Loopback: compression's CPU only costs.
    let check = compression_check(&diagnose());
    assert_eq!(check["verdict"], "ok", "{check:#}");

    // About 1.9 MB of rows through a 300 KB/s link: transfer dominates.
    let _cap = Bandwidth::cap(300);
    let before = common::proxy_downstream_bytes("cassandra");
    let t = std::time::Instant::now();
    let check = compression_check(&diagnose());
    let (secs, moved) = (
        t.elapsed().as_secs_f64(),
        common::proxy_downstream_bytes("cassandra") - before,
    );
    // The toxic was in the path: the bytes diagnose read took at least their time at 300 KB/s.
    assert!(
        secs >= moved as f64 / (300.0 * 1024.0) * 0.9,
        "{moved} bytes in {secs:.1} s: the bandwidth toxic was not hit"
    );
    assert_eq!(check["verdict"], "warn", "{check:#}");
    assert_eq!(check["recommended"], "LZ4", "{check:#}");
}
