//! `ferry bench redis` against the test bed's real Redis (`scripts/testbed up redis`, which
//! installs Debian's redis-server on first use): the figures come from the server (its INFO
//! counters and settings), pipelining makes a difference `compare` calls real, and a server
//! that is not there is a one-line error naming Redis.
//!
//! The tests take a lock: they share one server and read its global counters.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use common::*;

const REDIS: &str = "127.0.0.1:6379";

/// Starts the test bed's Redis (idempotent) and serializes the tests of this file.
fn redis() -> MutexGuard<'static, ()> {
    static UP: OnceLock<()> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    UP.get_or_init(|| testbed_cmd(&["up", "redis"]));
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One field of the server's INFO, read with redis-cli (not through ferry).
fn info(field: &str) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "info", "all"])
        .output()
        .expect("redis-cli (installed with redis-server by scripts/testbed up redis)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("INFO has no {field}"))
}

fn info_n(field: &str) -> i64 {
    info(field).parse().expect("a number")
}

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379"])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn redis_probe_measures_set_get_and_reads_the_servers_facts() {
    let _g = redis();
    let d = bench_dir("ferry_bench_redis");
    let out = d.join("redis.json");
    let prefix = unique_name("ferry_test");
    let (hits0, cmds0) = (info_n("keyspace_hits"), info_n("total_commands_processed"));
    let text = ferry_ok(&[
        "bench",
        "redis",
        "--host",
        REDIS,
        "--operations",
        "4000",
        "--keys",
        "1000",
        "--value-size",
        "256",
        "--concurrency",
        "4",
        "--key-prefix",
        &prefix,
        "--out",
        out.to_str().unwrap(),
    ]);
    let (hits1, cmds1) = (info_n("keyspace_hits"), info_n("total_commands_processed"));
    assert!(
        text.contains("SET: 4000 requests") && text.contains("GET: 4000 requests"),
        "{text}"
    );
    assert!(text.contains("maxmemory 512.00M (allkeys-lru)"), "{text}");
    let r = read_record(&out);
    assert_eq!(r["kind"], "redis");
    assert!(r["target"]
        .as_str()
        .unwrap()
        .starts_with(&format!("Redis {} at {REDIS}", info("redis_version"))));
    let s = &r["summary"];
    for k in [
        "set_ops_per_sec",
        "set_p50_ms",
        "set_p99_ms",
        "get_ops_per_sec",
        "get_p50_ms",
        "get_p99_ms",
        "records_per_sec",
    ] {
        assert!(s[k].as_f64().unwrap() > 0.0, "summary.{k}: {s}");
    }
    assert_eq!(
        (s["set_records"].as_f64(), s["get_records"].as_f64()),
        (Some(4000.0), Some(4000.0))
    );
    assert!(s["set_p50_ms"].as_f64() <= s["set_p99_ms"].as_f64());

    // The server's own counters: every GET asked for a key the SETs wrote, so each one is a
    // keyspace hit in INFO (other clients of this server can only add to the count).
    let srv = &r["server"];
    assert_eq!(srv["during"]["probe_get_hits"], 4000);
    let during_hits = srv["during"]["keyspace_hits"].as_i64().unwrap();
    assert!(during_hits >= 4000, "{srv}");
    assert!(
        hits1 - hits0 >= during_hits,
        "redis-cli saw {} new hits",
        hits1 - hits0
    );
    assert_eq!(srv["during"]["keyspace_misses"], 0, "{srv}");
    assert_eq!(srv["during"]["keyspace_hit_ratio"], 1.0);
    assert!(srv["during"]["commands_processed"].as_i64().unwrap() >= 8000);
    assert!(cmds1 - cmds0 >= 8000);
    // The seed's cache settings, as the test bed configured them and INFO reports them.
    assert_eq!(
        srv["memory"]["maxmemory"].as_i64(),
        Some(info_n("maxmemory"))
    );
    assert_eq!(srv["memory"]["maxmemory"], 512 * 1024 * 1024);
    assert_eq!(srv["memory"]["maxmemory_policy"], "allkeys-lru");
    assert!(srv["memory"]["used_memory"].as_i64().unwrap() > 1000 * 256);
    assert!(srv["stats"]["keyspace_hit_ratio"].as_f64().is_some());
    // The probe leaves no keys behind.
    assert_eq!(redis_cli(&["exists", &format!("{prefix}:0")]), "0");

    // GET-only: the probe writes the keys first (untimed), then times the GETs.
    let out2 = d.join("get.json");
    ferry_ok(&[
        "bench",
        "redis",
        "--host",
        REDIS,
        "--workload",
        "get",
        "--operations",
        "2000",
        "--keys",
        "500",
        "--pipeline",
        "8",
        "--key-prefix",
        &prefix,
        "--out",
        out2.to_str().unwrap(),
    ]);
    let g = read_record(&out2);
    assert_eq!(g["summary"]["get_records"], 2000.0);
    assert!(g["summary"].get("set_records").is_none());
    assert_eq!(g["server"]["during"]["probe_get_hits"], 2000);
    assert_eq!(g["parameters"]["pipeline"], 8);
}

/// Pipelining is the change: 32 commands per round trip against 1, same everything else, each
/// phase for a fixed time so both runs have their 100 ms windows as samples. The gate must call
/// it better beyond noise (by far more than 30%), and refuse a run against itself.
#[test]
fn compare_pipelined_against_request_response() {
    let _g = redis();
    let d = bench_dir("ferry_bench_redis");
    let prefix = unique_name("ferry_test_pipe");
    let probe = |pipeline: &str, out: &Path| {
        ferry_ok(&[
            "bench",
            "redis",
            "--host",
            REDIS,
            "--duration",
            "1s",
            "--concurrency",
            "4",
            "--pipeline",
            pipeline,
            "--key-prefix",
            &prefix,
            "--out",
            out.to_str().unwrap(),
        ]);
        read_record(out)
    };
    let (plain, piped) = (d.join("plain.json"), d.join("pipelined.json"));
    let a = probe("1", &plain);
    let b = probe("32", &piped);
    assert_eq!(a["sample_unit"], "window");
    assert!(
        a["samples"].as_array().unwrap().len() >= 10,
        "{}",
        a["samples"]
    );
    assert_eq!(b["parameters"]["pipeline"], 32);
    let (ps, qs) = (plain.to_str().unwrap(), piped.to_str().unwrap());
    let out = run_ferry(&["compare", ps, qs, "--min-improvement", "30%"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "pipelining should pass a 30% gate:\n{text}"
    );
    assert!(text.contains("gate: PASS"), "{text}");
    let line = |m: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{m} ")))
            .unwrap_or_else(|| panic!("{m} missing:\n{text}"))
            .to_string()
    };
    for m in ["records_per_sec", "set_ops_per_sec", "get_ops_per_sec"] {
        assert!(line(m).ends_with("better"), "{}", line(m));
    }
    let out = run_ferry(&["compare", ps, ps, "--min-improvement", "30%"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn redis_down_or_refusing_is_one_line_naming_redis() {
    let _g = redis();
    let d = bench_dir("ferry_bench_redis");
    // Nothing listens on port 1.
    let out = run_ferry(&[
        "bench",
        "redis",
        "--host",
        "127.0.0.1:1",
        "--out",
        d.join("x.json").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("Redis: cannot connect to 127.0.0.1:1")
            && err.contains("scripts/testbed up redis"),
        "{err}"
    );

    // A password the server does not expect: the server's own refusal, named.
    let out = run_ferry(&[
        "bench",
        "redis",
        "--host",
        REDIS,
        "--password",
        "not-the-password",
        "--out",
        d.join("y.json").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("Redis: AUTH failed: ERR"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}
