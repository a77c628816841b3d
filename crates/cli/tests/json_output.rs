//! `--json` on every command (issue 24): each prints one JSON object on stdout with
//! `schema_version` and `command`, and its top-level fields are exactly those docs/json.md
//! lists for it — so the documented shape and the printed one cannot drift apart. Runs every
//! command for real against the test bed, in the order a user would.

mod common;

use std::collections::BTreeSet;
use std::process::Output;

use common::{ferry, unique_name, write_config};
use serde_json::Value;

/// The top-level fields docs/json.md documents for `command`: the first column of the table
/// under its "## `ferry COMMAND …`" heading.
fn documented_fields(command: &str) -> BTreeSet<String> {
    let doc =
        std::fs::read_to_string(common::repo_root().join("docs/json.md")).expect("docs/json.md");
    let heading = format!("## `ferry {command}");
    let section = doc
        .split("\n## ")
        .map(|s| format!("## {s}"))
        .find(|s| s.starts_with(&heading))
        .unwrap_or_else(|| panic!("docs/json.md has no section {heading}…"));
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(f, _)| f.to_string()))
        .collect()
}

/// Runs `ferry ARGS`, expects exit code `code`, parses stdout as one JSON object and checks its
/// shape against docs/json.md.
fn json_of(command: &str, args: &[&str], code: i32) -> Value {
    json_of_any(command, args, &[code])
}

/// As [`json_of`], for a command whose exit code depends on measurements (any of `codes`).
fn json_of_any(command: &str, args: &[&str], codes: &[i32]) -> Value {
    let out: Output = ferry()
        .args(args)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("running ferry");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "ferry {}: exit code {:?}, expected one of {codes:?}\n{stdout}{stderr}",
        args.join(" "),
        out.status.code()
    );
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "ferry {}: stdout is not one JSON object ({e}):\n{stdout}",
            args.join(" ")
        )
    });
    assert_eq!(v["schema_version"], 1, "{v}");
    assert_eq!(v["command"], command, "{v}");
    let printed: BTreeSet<String> = v.as_object().expect("an object").keys().cloned().collect();
    let documented = documented_fields(command);
    assert_eq!(
        printed, documented,
        "ferry {command} --json prints fields other than docs/json.md lists: printed only {:?}, documented only {:?}",
        printed.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&printed).collect::<Vec<_>>()
    );
    v
}

#[test]
fn every_command_prints_its_documented_json() {
    common::testbed();
    let ks = unique_name("json");
    let schema = unique_name("json");
    let dir = common::bench_dir("json");
    let d = |name: &str| dir.join(name).display().to_string();

    let g = json_of(
        "gen",
        &[
            "gen",
            "--keyspace",
            &ks,
            "--table",
            "t",
            "--rows",
            "600",
            "--json",
        ],
        0,
    );
    assert_eq!(g["rows"], 600);

    let body = common::testbed_properties(&ks, "t", &schema)
        + &format!("ferry.runsDir={}\n", dir.display());
    let cfg = write_config(&schema, &body);
    let c = cfg.to_str().unwrap();

    let p = json_of("plan", &["plan", "-c", c, "--create-tables", "--json"], 0);
    let chunks = p["tables"][0]["chunks"].as_array().expect("chunks");
    assert!(!chunks.is_empty());
    assert_eq!(p["tables"][0]["target_exists"], false);

    let m = json_of(
        "migrate",
        &["migrate", "-c", c, "--create-tables", "--json"],
        0,
    );
    assert_eq!(m["rows_written"], 600);

    let s = json_of("status", &["status", "-c", c, "--json"], 0);
    let mine = s["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .find(|m| m["target"].as_str().is_some_and(|t| t.contains(&schema)))
        .unwrap_or_else(|| panic!("no migration into {schema} in {s}"))
        .clone();
    assert_eq!(mine["rows"], 600);
    assert_eq!(mine["finished"], true);
    assert_eq!(mine["done"], mine["chunks"]);
    assert_eq!(mine["pending"], 0);

    let v = json_of("validate", &["validate", "-c", c, "--json"], 0);
    assert_eq!(v["equal"], true);

    // diagnose judges latencies and rates measured on a shared machine: a check may fail (exit
    // code 1) when other tests load it; the shape is what this test is about.
    let dg = json_of_any(
        "diagnose",
        &[
            "diagnose",
            "-c",
            c,
            "--samples",
            "3",
            "--scan-rows",
            "500",
            "--copy-rows",
            "500",
            "--json",
        ],
        &[0, 1],
    );
    assert!(!dg["endpoints"].as_array().expect("endpoints").is_empty());

    let record = std::fs::read_dir(&dir)
        .expect("runs dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("migration-"))
        })
        .expect("the migration's run record");
    let r = record.to_str().unwrap();
    let cmp = json_of("compare", &["compare", r, r, "--json"], 0);
    assert_eq!(cmp["gate"], Value::Null);
    let cmp = json_of(
        "compare",
        &["compare", r, r, "--min-improvement", "30%", "--json"],
        1,
    );
    assert_eq!(cmp["gate"]["passed"], false);
    assert!(cmp["probes"][0]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .any(|m| m["metric"] == "records_per_sec"));

    let b = json_of(
        "bench",
        &[
            "bench",
            "postgres",
            "--host",
            "127.0.0.1:5433",
            "--dbname",
            "ferry",
            "--builtin",
            "select-only",
            "--schema",
            &schema,
            "--duration",
            "1s",
            "--out",
            &d("pg.json"),
            "--json",
        ],
        0,
    );
    assert_eq!(b["kind"], "postgres");
    assert!(b["summary"]["records_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(b["run_record"], d("pg.json"));

    let suite = dir.join("suite.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"json\"\n[[probe]]\ntype = \"postgres\"\nhosts = [\"127.0.0.1:5433\"]\ndbname = \"ferry\"\n\
             builtin = \"select-only\"\nschema = \"{schema}\"\nduration_s = 1.0\nexpect = [\"records_per_sec > 1\", \"records_per_sec < 1\"]\n"
        ),
    )
    .unwrap();
    let bl = json_of(
        "baseline",
        &[
            "baseline",
            suite.to_str().unwrap(),
            "--out",
            &d("baseline.json"),
            "--json",
        ],
        1,
    );
    assert_eq!(bl["passed"], false, "records_per_sec < 1 cannot be met");
    let met: Vec<bool> = bl["probes"][0]["expectations"]
        .as_array()
        .expect("expectations")
        .iter()
        .map(|e| e["met"].as_bool().unwrap())
        .collect();
    assert_eq!(met, [true, false]);

    let rp = json_of(
        "report",
        &[
            "report",
            &d("pg.json"),
            &d("baseline.json"),
            "--md",
            &d("report.md"),
            "--json",
        ],
        0,
    );
    assert_eq!(rp["markdown"], d("report.md"));
    assert_eq!(rp["markdown_text"], Value::Null);
    assert!(std::path::Path::new(&d("report.md")).exists());
    let rp = json_of("report", &["report", &d("pg.json"), "--json"], 0);
    assert!(rp["markdown_text"].as_str().unwrap().contains('#'));
}
