//! Every kind of run record ferry writes reads back (issue 17): migrate, validate and diagnose
//! write the same typed, versioned record as the probes; `ferry report` over a folder holding
//! every kind produces the report, and `ferry compare` takes each kind. Secrets never reach a
//! record: `bench kafka --property sasl.password=…` and `--set yugabyte.password=…` are redacted.

mod common;

use common::*;

const SECRET: &str = "s3cr3t-never-in-a-record";

#[test]
fn report_and_compare_accept_every_kind_and_no_record_holds_a_secret() {
    testbed();
    let runs = bench_dir("ferry_records");
    let ks = unique_name("records");
    gen(&ks, "t", 300, 2, 3);
    let schema = unique_name("records");
    let body =
        testbed_properties(&ks, "t", &schema) + &format!("ferry.runsDir={}\n", runs.display());
    let cfg = write_config(&schema, &body);
    let c = cfg.to_str().unwrap();
    // A password for a target that trusts loopback: accepted, unused, and never written.
    let set_secret = format!("yugabyte.password={SECRET}");
    let out = ferry()
        .args(["migrate", "-c", c, "--create-tables", "--set", &set_secret])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let validate = ferry()
        .args(["validate", "-c", c, "--set", &set_secret])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("validate");
    assert_eq!(validate.status.code(), Some(0));
    // diagnose's checks may fail on a loaded machine (exit code 1); its record is what counts.
    let diagnose = ferry()
        .args(["diagnose", "-c", c, "--samples", "3", "--scan-rows", "200"])
        .args(["--copy-rows", "200", "--set", &set_secret])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("diagnose");
    assert!(matches!(diagnose.status.code(), Some(0) | Some(1)));
    let kafka = runs.join("kafka-produce-1.json");
    ferry_ok(&[
        "bench",
        "kafka",
        "--bootstrap",
        KAFKA,
        "--topic",
        &unique_name("records"),
        "--num-records",
        "2000",
        "--property",
        &format!("sasl.password={SECRET}"),
        "--out",
        kafka.to_str().unwrap(),
    ]);
    let pg = runs.join("postgres-1.json");
    ferry_ok(&[
        "bench",
        "postgres",
        "--host",
        &format!("127.0.0.1:{}", PG_PORTS[0]),
        "--dbname",
        "ferry",
        "--schema",
        &unique_name("records_pg"),
        "--builtin",
        "select-only",
        "--concurrency",
        "1",
        "--duration",
        "1s",
        "--out",
        pg.to_str().unwrap(),
    ]);

    let mut records: Vec<std::path::PathBuf> = std::fs::read_dir(&runs)
        .expect("runs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    records.sort();
    let mut kinds: Vec<String> = Vec::new();
    for p in &records {
        let text = std::fs::read_to_string(p).expect("record");
        assert!(!text.contains(SECRET), "{} holds the secret", p.display());
        let r = read_record(p);
        kinds.push(r["kind"].as_str().expect("kind").to_string());
        // compare takes each kind (a record against itself: no gate, exit code 0).
        let s = p.to_str().unwrap();
        let out = run_ferry(&["compare", s, s]);
        assert_eq!(out.status.code(), Some(0), "compare {s}");
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "diagnose",
            "kafka-produce",
            "migration",
            "postgres",
            "validation"
        ]
    );
    let text = std::fs::read_to_string(&kafka).unwrap();
    assert!(
        text.contains("sasl.password") && text.contains("<redacted>"),
        "{text}"
    );

    let md = runs.join("report.md");
    let html = runs.join("report.html");
    // report over the folder: every kind at once.
    let mut args = vec!["report".to_string(), runs.display().to_string()];
    args.extend([
        "--md".into(),
        md.display().to_string(),
        "--html".into(),
        html.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ferry_ok(&args);
    let report = std::fs::read_to_string(&md).expect("report.md");
    for kind in ["migration", "validation", "diagnose", "postgres"] {
        assert!(report.contains(kind), "the report lacks {kind}:\n{report}");
    }
    assert!(std::fs::metadata(&html).expect("report.html").len() > 0);
}
