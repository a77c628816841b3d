//! `ferry diagnose` against the real test bed on loopback (the WAN and node-down cases live in
//! `testbed_faults.rs`, which may change the network).

mod common;

use std::path::Path;

/// A small table every test here scans.
fn source() -> String {
    static KS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KS.get_or_init(|| {
        common::testbed();
        let ks = common::unique_name("diag");
        common::gen(&ks, "t", 2_000, 2, 5);
        ks
    })
    .clone()
}

fn diagnose(cfg: &Path, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = common::ferry();
    cmd.args(["diagnose", "-c"])
        .arg(cfg)
        .args(["--samples", "5"])
        .args(args);
    cmd.env("FERRY_CASSANDRA_PASSWORD", "cassandra");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ferry diagnose");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn loopback_report_has_every_endpoint_with_percentiles_and_passes() {
    let ks = source();
    let schema = common::unique_name("diag_ok");
    let cfg = common::write_config(&schema, &common::testbed_properties(&ks, "t", &schema));
    let (code, stdout, stderr) = diagnose(&cfg, &[], &["--json"]);
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(code, Some(0), "{report:#}");
    let eps = report["endpoints"].as_array().expect("endpoints");
    let addrs: Vec<&str> = eps.iter().filter_map(|e| e["address"].as_str()).collect();
    for a in [
        "127.0.0.1:9042",
        "127.0.0.1:5433",
        "127.0.0.1:5434",
        "127.0.0.1:5435",
    ] {
        assert!(addrs.contains(&a), "{a} missing from {addrs:?}");
    }
    for e in eps {
        let r = &e["rtt_ms"];
        let (p50, p95, p99) = (
            r["p50"].as_f64().unwrap(),
            r["p95"].as_f64().unwrap(),
            r["p99"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99, "{e}");
        assert!(e["connect_ms"].as_f64().is_some());
        assert!(
            e["throughput"]["mb_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
            "{e}"
        );
    }
    let source = eps.iter().find(|e| e["role"] == "source").expect("source");
    assert_eq!(source["facts"]["release_version"], "5.0.8");
    assert!(
        report["source_facts"][format!("replication of {ks}")].is_string(),
        "{report:#}"
    );
    assert!(report["target_facts"]["version"]
        .as_str()
        .unwrap_or("")
        .contains("PostgreSQL"));
}

#[test]
fn the_readable_report_and_the_written_file_name_what_to_change() {
    let ks = source();
    let schema = common::unique_name("diag_one");
    // One listed node and no load balancing: the seed's costliest mistake.
    let body = common::testbed_properties(&ks, "t", &schema)
        .replace(
            "127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435",
            "127.0.0.1:5433",
        )
        .replace(
            "yugabyte.loadBalanceHosts=true",
            "yugabyte.loadBalanceHosts=false",
        );
    let cfg = common::write_config(&schema, &body);
    let rec = cfg.with_extension("rec.properties");
    let (code, stdout, _) = diagnose(&cfg, &[], &["--write", rec.to_str().unwrap()]);
    assert_eq!(code, Some(1), "a node left out fails:\n{stdout}");
    assert!(stdout.contains("FAIL every node listed"), "{stdout}");
    let text = std::fs::read_to_string(&rec).expect("recommended file");
    assert!(
        text.contains("\nyugabyte.host=127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435\n"),
        "{text}"
    );
    assert!(text.contains("yugabyte.loadBalanceHosts=true"), "{text}");
    assert!(
        text.contains("# ferry diagnose: was yugabyte.host=127.0.0.1:5433"),
        "{text}"
    );
    // The written file is a valid configuration that diagnoses clean.
    let (code, stdout, _) = diagnose(&rec, &[], &[]);
    assert_eq!(code, Some(0), "{stdout}");
}

#[test]
fn a_wrong_password_says_which_side_refused() {
    let ks = source();
    let schema = common::unique_name("diag_pw");
    let cfg = common::write_config(&schema, &common::testbed_properties(&ks, "t", &schema));
    // Cassandra refuses.
    let (code, stdout, _) = diagnose(&cfg, &[("FERRY_CASSANDRA_PASSWORD", "wrong")], &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL login: Cassandra at 127.0.0.1:9042 refused the credentials"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("wrong"),
        "the password is never printed:\n{stdout}"
    );
    // The target refuses (role yugabyte logs in with scram).
    let body = common::testbed_properties(&ks, "t", &schema)
        .replace("yugabyte.username=postgres", "yugabyte.username=yugabyte");
    let cfg = common::write_config(&format!("{schema}_y"), &body);
    let (code, stdout, _) = diagnose(&cfg, &[("FERRY_YUGABYTE_PASSWORD", "wrong")], &["--json"]);
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    for e in report["endpoints"].as_array().unwrap() {
        let login = e["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "login")
            .expect("login verdict");
        if e["role"] == "target" {
            assert_eq!(login["verdict"], "fail", "{e:#}");
            let found = login["found"].as_str().unwrap();
            assert!(
                found.starts_with(&format!(
                    "target {} refused",
                    e["address"].as_str().unwrap()
                )),
                "{found}"
            );
        } else {
            assert_eq!(login["verdict"], "ok", "Cassandra accepted: {e:#}");
        }
    }
}
