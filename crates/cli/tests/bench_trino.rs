//! The Trino probe against a real Trino (the test bed's, started here with `scripts/testbed up
//! trino`, which installs it on first use): the record's figures are Trino's own statistics,
//! errors are one line naming Trino and the cause, and `compare` tells a selective query from a
//! full scan.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;

const TRINO: &str = "http://127.0.0.1:8080";

/// Starts the test bed's Trino (once per test binary; a no-op when it already runs). The bare
/// `scripts/testbed up` leaves Trino out, so these tests bring it up themselves.
fn trino() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| testbed_cmd(&["up", "trino"]));
}

/// `ferry bench trino --query SQL --repetitions N --out FILE` → the record.
fn bench(sql: &str, repetitions: u32, out: &Path) -> Value {
    let stdout = ferry_ok(&[
        "bench",
        "trino",
        "--server",
        TRINO,
        "--query",
        sql,
        "--repetitions",
        &repetitions.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("executions"), "{stdout}");
    read_record(out)
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn trino_probe_records_trinos_own_statistics() {
    trino();
    let d = bench_dir("ferry_bench_trino");
    let out = d.join("nation.json");
    let r = bench("SELECT count(*) FROM tpch.tiny.nation", 3, &out);
    assert_eq!(r["kind"], "trino");
    assert!(
        r["target"].as_str().unwrap().starts_with("Trino "),
        "{}",
        r["target"]
    );
    assert_eq!(r["server"]["coordinator"], true);
    assert_eq!(r["sample_unit"], "round");
    assert_eq!(r["samples"].as_array().unwrap().len(), 3);
    let s = &r["summary"];
    // tpch.tiny.nation has 25 rows: Trino's processedRows, not anything ferry counted.
    assert_eq!(s["processed_rows"], 25.0, "{s}");
    assert_eq!(s["records"], 3.0);
    for k in [
        "elapsed_ms",
        "elapsed_p95_ms",
        "wall_ms",
        "p50_ms",
        "records_per_sec",
    ] {
        assert!(s[k].as_f64().unwrap() > 0.0, "summary.{k} in {s}");
    }
    for k in [
        "cpu_ms",
        "queued_ms",
        "processed_bytes",
        "peak_memory_bytes",
    ] {
        assert!(s[k].as_f64().unwrap() >= 0.0, "summary.{k} in {s}");
    }
    for sample in r["samples"].as_array().unwrap() {
        assert_eq!(sample["metrics"]["processed_rows"], 25.0);
    }
    let q = &r["result"]["queries"][0];
    assert_eq!(q["result_rows"], 1);
    let ids: Vec<&str> = q["query_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(!host_samples_empty(&r));

    // Trino knows those queries: its own system table lists each one as finished.
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let check = bench(
        &format!(
            "SELECT query_id FROM system.runtime.queries WHERE state = 'FINISHED' AND query_id IN ({list})"
        ),
        1,
        &d.join("check.json"),
    );
    assert_eq!(check["result"]["queries"][0]["result_rows"], 3, "{check}");
}

fn host_samples_empty(r: &Value) -> bool {
    r["host_samples"].as_array().is_none_or(|a| a.is_empty())
}

/// The built-in set: the seed's count / aggregate / join over tpch, each query's figures named.
#[test]
fn trino_builtin_tpch_set() {
    trino();
    let d = bench_dir("ferry_bench_trino");
    let out = d.join("tpch.json");
    let stdout = ferry_ok(&[
        "bench",
        "trino",
        "--suite",
        "tpch",
        "--tpch-schema",
        "tiny",
        "--repetitions",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        stdout.contains("count:") && stdout.contains("aggregate:") && stdout.contains("join:"),
        "{stdout}"
    );
    let r = read_record(&out);
    let s = &r["summary"];
    // tpch tiny: 60,175 lineitem rows; the aggregate's 4 (returnflag, linestatus) groups; the
    // join's 25 nations.
    assert_eq!(s["count_processed_rows"], 60175.0, "{s}");
    assert_eq!(s["aggregate_processed_rows"], 60175.0, "{s}");
    assert!(s["join_processed_rows"].as_f64().unwrap() > 15000.0, "{s}");
    assert_eq!(s["records"], 6.0);
    for k in [
        "count_elapsed_ms",
        "aggregate_cpu_ms",
        "join_elapsed_p95_ms",
        "elapsed_ms",
    ] {
        assert!(s[k].as_f64().unwrap() > 0.0, "summary.{k} in {s}");
    }
    let qs = r["result"]["queries"].as_array().unwrap();
    let rows: Vec<(&str, u64)> = qs
        .iter()
        .map(|q| {
            (
                q["name"].as_str().unwrap(),
                q["result_rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("count", 1), ("aggregate", 4), ("join", 25)]);
    assert_eq!(r["samples"].as_array().unwrap().len(), 2);
}

#[test]
fn trino_errors_are_one_line_naming_trino_and_the_cause() {
    trino();
    let d = bench_dir("ferry_bench_trino");
    let out = run_ferry(&[
        "bench",
        "trino",
        "--server",
        TRINO,
        "--query",
        "SELECT * FROM tpch.tiny.no_such_table",
        "--out",
        d.join("x.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("Trino: query failed: TABLE_NOT_FOUND")
            && err.contains("tpch.tiny.no_such_table"),
        "{err}"
    );

    let down = format!("http://127.0.0.1:{}", dead_port());
    let out = run_ferry(&[
        "bench",
        "trino",
        "--server",
        &down,
        "--query",
        "SELECT 1",
        "--out",
        d.join("y.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("Trino: cannot reach the server at")
            && err.contains(&down)
            && err.contains("refused"),
        "{err}"
    );
}

/// The shipped suite (at scale tiny), plus a probe against a server that is down: the down one
/// is recorded with its error, the others measured; the report has a Trino section.
#[test]
fn trino_in_a_baseline_suite_and_the_report() {
    trino();
    let d = bench_dir("ferry_bench_trino");
    let shipped = std::fs::read_to_string(repo_root().join("bench/suites/trino-tpch.toml"))
        .expect("bench/suites/trino-tpch.toml");
    let suite = d.join("suite.toml");
    std::fs::write(
        &suite,
        format!(
            "{}\n[[probe]]\ntype = \"trino\"\nname = \"trino-down\"\nserver = \"http://127.0.0.1:{}\"\nqueries = [\"SELECT 1\"]\n",
            shipped
                .replace("tpch.sf1.", "tpch.tiny.")
                .replace("repetitions = 5", "repetitions = 2"),
            dead_port()
        ),
    )
    .unwrap();
    let out = d.join("baseline.json");
    let o = run_ferry(&[
        "baseline",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a probe fails on purpose:\n{text}"
    );
    assert!(
        text.contains("trino-down: FAILED: Trino: cannot reach"),
        "{text}"
    );
    let r = read_record(&out);
    let probes = r["probes"].as_array().unwrap();
    let names: Vec<&str> = probes.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["trino-count", "trino-aggregate", "trino-join", "trino-down"]
    );
    assert_eq!(probes[0]["summary"]["processed_rows"], 60175.0);
    for p in &probes[..3] {
        assert_eq!(p["expectations"][0]["met"], true, "{}", p["expectations"]);
        assert!(p["error"].is_null());
    }
    assert!(probes[3]["error"]
        .as_str()
        .unwrap()
        .starts_with("Trino: cannot reach"));

    let md = d.join("report.md");
    ferry_ok(&[
        "report",
        out.to_str().unwrap(),
        "--md",
        md.to_str().unwrap(),
    ]);
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("### Trino") && md.contains("queries/s") && md.contains("trino-join"),
        "{md}"
    );
}

/// A selective query against a full scan, both over tpch sf1: a point lookup in customer
/// (Trino generates its 150,000 rows and keeps one) against an aggregation over all 6,001,215
/// lineitem rows. The tpch connector has no index, so "selective" means less data to generate,
/// filter and aggregate; that is the real difference compare must show, and it is large enough
/// (an order of magnitude here) to hold on a busy 2-core machine.
#[test]
fn trino_compare_tells_a_selective_query_from_a_full_scan() {
    trino();
    let d = bench_dir("ferry_bench_trino");
    let (full, sel) = (d.join("full.json"), d.join("selective.json"));
    let f = bench(
        "SELECT returnflag, linestatus, count(*), sum(extendedprice * (1 - discount)) \
         FROM tpch.sf1.lineitem GROUP BY returnflag, linestatus",
        5,
        &full,
    );
    let s = bench(
        "SELECT name, acctbal FROM tpch.sf1.customer WHERE custkey = 7",
        5,
        &sel,
    );
    assert_eq!(f["summary"]["processed_rows"], 6001215.0);
    assert_eq!(s["summary"]["processed_rows"], 150000.0);
    assert_eq!(s["result"]["queries"][0]["result_rows"], 1);

    let (fs, ss) = (full.to_str().unwrap(), sel.to_str().unwrap());
    let out = run_ferry(&[
        "compare",
        fs,
        ss,
        "--metric",
        "elapsed_ms",
        "--min-improvement",
        "30%",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("gate: PASS"), "{text}");
    let line = |m: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{m} ")))
            .unwrap_or_else(|| panic!("{m} missing:\n{text}"))
            .to_string()
    };
    for m in ["elapsed_ms", "cpu_ms", "records_per_sec"] {
        assert!(line(m).ends_with("better"), "{}", line(m));
    }
    // The other way round it is a regression, and a run against itself is noise: both fail.
    for (x, y) in [(ss, fs), (fs, fs)] {
        let out = run_ferry(&[
            "compare",
            x,
            y,
            "--metric",
            "elapsed_ms",
            "--min-improvement",
            "30%",
        ]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
