//! `scripts/testbed up X` followed by a plain `ferry bench X` works (issue 24): every probe's
//! default address is the one `scripts/testbed env` publishes, and the probes the test bed
//! runs by default (plus Redis) really complete with no address or credential flag.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

fn testbed_env() -> BTreeMap<String, String> {
    let out = std::process::Command::new(common::repo_root().join("scripts/testbed"))
        .arg("env")
        .output()
        .expect("scripts/testbed env");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `[default: …]` clap shows for `flag` in `ferry ARGS -h`.
fn default_of(args: &[&str], flag: &str) -> String {
    let out = common::ferry()
        .args(args)
        .arg("-h")
        .output()
        .expect("ferry -h");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    // The flag's own line, and the description lines under it up to the next flag.
    let line = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(&format!("{flag} ")))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.trim_start().starts_with('-'))
        .map(|(_, l)| l)
        .find(|l| l.contains("[default: "))
        .unwrap_or_else(|| panic!("no default for {flag} in:\n{help}"));
    let start = line.find("[default: ").unwrap() + "[default: ".len();
    line[start..].split(']').next().unwrap().to_string()
}

#[test]
fn every_probe_defaults_to_the_test_bed_address() {
    let env = testbed_env();
    let first_pg = env["FERRY_POSTGRES_NODES"]
        .split(',')
        .next()
        .unwrap()
        .to_string();
    for (args, flag, want) in [
        (
            &["bench", "cassandra"][..],
            "--host",
            &env["FERRY_CASSANDRA"],
        ),
        (&["bench", "postgres"][..], "--host", &first_pg),
        (&["bench", "kafka"][..], "--bootstrap", &env["FERRY_KAFKA"]),
        (&["bench", "trino"][..], "--server", &env["FERRY_TRINO"]),
        (&["bench", "redis"][..], "--host", &env["FERRY_REDIS"]),
        (&["bench", "ray"][..], "--address", &env["FERRY_RAY"]),
        (&["gen"][..], "--cassandra", &env["FERRY_CASSANDRA"]),
    ] {
        assert_eq!(
            &default_of(args, flag),
            want,
            "ferry {} {flag} does not default to the test bed's address",
            args.join(" ")
        );
    }
    assert_eq!(env["FERRY_REDIS"], "127.0.0.1:6379", "Redis's own port");
}

/// Runs `ferry bench ARGS` in a fresh folder (the record goes to its runs/), expecting success,
/// and returns the record.
fn bench_plain(args: &[&str]) -> serde_json::Value {
    let dir = common::bench_dir("plain");
    let out = common::ferry()
        .arg("bench")
        .args(args)
        .current_dir(&dir)
        .env_remove("FERRY_CASSANDRA_PASSWORD")
        .env_remove("PGPASSWORD")
        .output()
        .expect("ferry bench");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "ferry bench {}:\n{text}",
        args.join(" ")
    );
    let runs = dir.join("runs");
    let record = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
        .next()
        .expect("a run record in runs/")
        .unwrap()
        .path();
    common::read_record(Path::new(&record))
}

#[test]
fn plain_bench_commands_work_against_the_test_bed() {
    common::testbed();
    common::testbed_cmd(&["up", "redis"]);
    let env = testbed_env();

    let r = bench_plain(&["redis", "--operations", "2000"]);
    assert!(
        r["target"].as_str().unwrap().contains(&env["FERRY_REDIS"]),
        "{}",
        r["target"]
    );
    assert!(r["summary"]["set_ops_per_sec"].as_f64().unwrap() > 0.0);

    let r = bench_plain(&["postgres", "--builtin", "select-only", "--duration", "1s"]);
    assert!(r["summary"]["records_per_sec"].as_f64().unwrap() > 0.0);

    let r = bench_plain(&["cassandra", "--operations", "500"]);
    assert!(r["summary"]["write_ops_per_sec"].as_f64().unwrap() > 0.0);

    let r = bench_plain(&["kafka", "--num-records", "2000"]);
    assert_eq!(r["summary"]["records"], 2000.0);
}
