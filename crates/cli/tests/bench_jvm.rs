//! The server's JVM in a probe's record: the test bed's Kafka (read with jstat) and Cassandra
//! (whose stock options hide jstat's counters: read through JMX), before and after the probe.
//! The figures are checked against the JVM read directly with jstat / the process table.

mod common;

use std::process::Command;

use common::*;

/// The pid of the java process whose command line holds `needle`.
fn java_pid(needle: &str) -> u32 {
    let out = Command::new("pgrep").args(["-f", needle]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .find(|p: &u32| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "java")
        })
        .unwrap_or_else(|| panic!("no java process runs {needle}"))
}

#[test]
fn kafka_record_holds_its_jvms_gc_and_heap_from_jstat() {
    testbed();
    let d = bench_dir("ferry_bench_jvm");
    let rec = d.join("k.json");
    ferry_ok(&[
        "bench",
        "kafka",
        "--bootstrap",
        KAFKA,
        "--topic",
        &unique_name("jvm"),
        "--num-records",
        "20000",
        "--out",
        rec.to_str().unwrap(),
    ]);
    let v = read_record(&rec);
    let jvm = &v["server"]["jvm"];
    assert_eq!(jvm["read_with"], "jstat", "{jvm}");
    assert_eq!(jvm["pid"], java_pid("kafka.Kafka"));
    let (b, a) = (&jvm["before"], &jvm["after"]);
    let n = |x: &serde_json::Value| x.as_f64().unwrap();
    assert!(n(&a["gc_count"]) >= n(&b["gc_count"]) && n(&a["gc_ms"]) >= n(&b["gc_ms"]));
    assert!(n(&b["heap_used_mb"]) > 0.0 && n(&a["heap_committed_mb"]) >= n(&a["heap_used_mb"]));
    let s = &v["summary"];
    assert_eq!(n(&s["jvm_gc_count"]), n(&a["gc_count"]) - n(&b["gc_count"]));
    assert_eq!(n(&s["jvm_heap_after_mb"]), n(&a["heap_used_mb"]));
    // The JVM, read again by the test: its counters only grow from what the record holds.
    let out = Command::new("jstat")
        .args(["-gc", &jvm["pid"].to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let head: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    let vals: Vec<f64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let col = |c: &str| vals[head.iter().position(|h| *h == c).unwrap()];
    assert!(col("YGC") + col("FGC") + col("CGC") >= n(&a["gc_count"]));
    assert!(col("GCT") * 1000.0 + 1.0 >= n(&a["gc_ms"]));
}

#[test]
fn cassandra_hides_jstat_counters_and_is_read_through_jmx() {
    testbed();
    let d = bench_dir("ferry_bench_jvm");
    let rec = d.join("c.json");
    ferry_ok(&[
        "bench",
        "cassandra",
        "--host",
        CASSANDRA,
        "--keyspace",
        &unique_name("jvm"),
        "--operations",
        "2000",
        "--password",
        "cassandra",
        "--out",
        rec.to_str().unwrap(),
    ]);
    let v = read_record(&rec);
    let jvm = &v["server"]["jvm"];
    assert_eq!(jvm["read_with"], "jmx", "{jvm}");
    assert_eq!(jvm["pid"], java_pid("CassandraDaemon"));
    // jstat itself cannot read this JVM (-XX:+PerfDisableSharedMem).
    let out = Command::new("jstat")
        .args(["-gc", &jvm["pid"].to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() < 2);
    let heap = jvm["after"]["heap_used_mb"].as_f64().unwrap();
    assert!(heap > 1.0, "{jvm}");
    assert!(v["summary"]["jvm_gc_time_pct"].as_f64().unwrap() >= 0.0);
}
