//! `ferry validate` on the real test bed (issue 5): a clean migrated table is equal; each
//! corruption made in the target — a deleted row, an added row, one changed value in every
//! column type, a changed element inside a collection and inside a UDT — is found, and nothing
//! else; rows ferry rejected are reported missing with the reject reason.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use ferry_migrate::gen::COLUMNS;
use serde_json::{json, Value};

fn ferry_ok(args: &[&str]) -> Output {
    let out = common::ferry()
        .args(args)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("run ferry");
    out
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write_config(ks: &str, table: &str, schema: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("ferry-tests").join(ks);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{table}.properties"));
    std::fs::write(
        &path,
        format!(
            "cassandra.host=127.0.0.1\ncassandra.port=9042\ncassandra.localDC=datacenter1\n\
             cassandra.username=cassandra\ncassandra.fetchSizeInRows=500\n\
             yugabyte.host=127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435\nyugabyte.database=ferry\n\
             yugabyte.username=postgres\nyugabyte.loadBalanceHosts=true\n\
             table.source.keyspace={ks}\ntable.source.table={table}\n\
             table.target.schema={schema}\ntable.target.table={table}\n\
             ferry.runsDir={}\n{extra}",
            dir.join("runs").display()
        ),
    )
    .expect("write config");
    path
}

/// The differing rows of a diff file as (kind, primary key, columns).
fn diffs(path: &Path) -> BTreeSet<(String, String, Vec<String>)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("diff line is JSON");
            (
                v["kind"].as_str().unwrap().to_string(),
                v["primary_key"].to_string(),
                v["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// Two distinct values of the column's target type: the update sets the first unless the row
/// already holds it, so the value always changes.
fn two_values(cql: &str) -> (&'static str, &'static str) {
    match cql {
        "ascii" | "text" | "varchar" => ("'changed-a'", "'changed-b'"),
        "bigint" | "int" | "varint" => ("4242", "4343"),
        "smallint" | "tinyint" => ("42", "43"),
        "blob" => ("'\\xdead'::bytea", "'\\xbeef'::bytea"),
        "boolean" => ("true", "false"),
        "date" => ("'2001-02-03'::date", "'2001-02-04'::date"),
        "decimal" => ("3.25", "3.5"),
        "double" | "float" => ("2.5", "3.5"),
        "duration" => ("'1 day'::interval", "'2 days'::interval"),
        "inet" => ("'10.9.8.7'::inet", "'10.9.8.6'::inet"),
        "time" => ("'01:02:03'::time", "'01:02:04'::time"),
        "timestamp" => (
            "'2001-02-03 04:05:06+00'::timestamptz",
            "'2001-02-03 04:05:07+00'::timestamptz",
        ),
        "uuid" | "timeuuid" => (
            "'00000000-0000-1000-8000-000000000001'::uuid",
            "'00000000-0000-1000-8000-000000000002'::uuid",
        ),
        "set<text>" => ("ARRAY['changed-a']", "ARRAY['changed-b']"),
        "map<text, int>" => ("'{\"changed\": 1}'::jsonb", "'{\"changed\": 2}'::jsonb"),
        "tuple<int, text, double>" => ("'[1, \"x\", 2.5]'::jsonb", "'[2, \"x\", 2.5]'::jsonb"),
        "vector<float, 3>" => ("'{1,2,3}'::real[]", "'{1,2,4}'::real[]"),
        t if t.starts_with("frozen<map") => (
            "'{\"changed\": [[1]]}'::jsonb",
            "'{\"changed\": [[2]]}'::jsonb",
        ),
        other => panic!("no corruption for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_finds_exactly_each_corruption() {
    common::testbed();
    let ks = common::unique_name("val");
    let out = ferry_ok(&[
        "gen",
        "--keyspace",
        &ks,
        "--table",
        "mix",
        "--rows",
        "3000",
        "--seed",
        "5",
        "--partition-rows",
        "3",
    ]);
    assert!(out.status.success(), "gen: {}", text(&out));
    let cfg = write_config(&ks, "mix", &ks, "");
    let cfg = cfg.to_str().unwrap();
    let out = ferry_ok(&["migrate", "-c", cfg, "--create-tables"]);
    assert!(out.status.success(), "migrate: {}", text(&out));

    // Clean: equal in full and in sample mode, exit 0.
    let out = ferry_ok(&["validate", "-c", cfg, "--full"]);
    assert!(out.status.success(), "clean full validate: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("equal") && stdout.contains("3000"),
        "{stdout}"
    );
    let out = ferry_ok(&["validate", "-c", cfg, "--sample", "300", "--json"]);
    assert!(
        out.status.success(),
        "clean sample validate: {}",
        text(&out)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(summary["equal"], json!(true));
    assert_eq!(summary["tables"][0]["source_rows"], json!(300));
    assert_eq!(summary["tables"][0]["target_rows"], json!(300));

    // Corrupt the target: one row per change, each on its own key.
    let pg = common::pg_connect(5433).await;
    let t = format!("{ks}.mix");
    let keys: Vec<(i64, i32)> = pg
        .query(
            &format!(
                "SELECT pk, ck FROM {t} WHERE c_udt IS NOT NULL AND cardinality(c_list) > 0 \
                 ORDER BY pk, ck LIMIT 40"
            ),
            &[],
        )
        .await
        .expect("pick rows")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut keys = keys.into_iter();
    let mut expected = BTreeSet::new();
    let key_json = |(pk, ck): (i64, i32)| json!({"pk": pk, "ck": ck}).to_string();
    for (name, cql) in COLUMNS.iter().skip(2) {
        let key = keys.next().expect("enough rows");
        let set = match *name {
            // Inside a collection: one element of the list.
            "c_list" => "c_list[1] = CASE WHEN c_list[1] = 7 THEN 8 ELSE 7 END".to_string(),
            // Inside a UDT: one field of the jsonb object.
            "c_udt" => "c_udt = jsonb_set(c_udt, '{street}', \
                        CASE WHEN c_udt->>'street' = 'changed' THEN '\"other\"' ELSE '\"changed\"' END::jsonb)"
                .to_string(),
            _ => {
                let (a, b) = two_values(cql);
                format!("{name} = CASE WHEN {name} IS NOT DISTINCT FROM {a} THEN {b} ELSE {a} END")
            }
        };
        let n = pg
            .execute(
                &format!("UPDATE {t} SET {set} WHERE pk = $1 AND ck = $2"),
                &[&key.0, &key.1],
            )
            .await
            .unwrap_or_else(|e| panic!("corrupting {name}: {e}"));
        assert_eq!(n, 1);
        expected.insert((
            "different".to_string(),
            key_json(key),
            vec![name.to_string()],
        ));
    }
    let deleted = keys.next().unwrap();
    pg.execute(
        &format!("DELETE FROM {t} WHERE pk = $1 AND ck = $2"),
        &[&deleted.0, &deleted.1],
    )
    .await
    .unwrap();
    expected.insert(("missing".to_string(), key_json(deleted), vec![]));
    pg.execute(
        &format!("INSERT INTO {t} (pk, ck, c_text) VALUES (-77, -7, 'added')"),
        &[],
    )
    .await
    .unwrap();
    expected.insert(("extra".to_string(), key_json((-77, -7)), vec![]));

    let diff_file = std::env::temp_dir()
        .join("ferry-tests")
        .join(&ks)
        .join("diffs.jsonl");
    let out = ferry_ok(&[
        "validate",
        "-c",
        cfg,
        "--full",
        "--show",
        "100",
        "--diff-file",
        diff_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("DIFFERS"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "missing   {{\"ck\":{},\"pk\":{}}}",
            deleted.1, deleted.0
        )),
        "the screen names the missing row's key:\n{stdout}"
    );
    assert!(stdout.contains("columns: c_udt"), "{stdout}");
    let found = diffs(&diff_file);
    let missed: Vec<_> = expected.difference(&found).collect();
    let spurious: Vec<_> = found.difference(&expected).collect();
    assert!(
        missed.is_empty() && spurious.is_empty(),
        "not found: {missed:#?}\nreported but not made: {spurious:#?}"
    );
    assert_eq!(found.len(), COLUMNS.len() - 2 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_are_reported_missing_with_the_reason() {
    common::testbed();
    let ks = common::unique_name("valrej");
    let session = common::cassandra().await;
    for cql in [
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        format!("CREATE TABLE {ks}.rej (id int PRIMARY KEY, t text, ts timestamp)"),
    ] {
        session.query_unpaged(cql, &[]).await.expect("schema");
    }
    let insert = format!("INSERT INTO {ks}.rej (id, t, ts) VALUES (?, ?, ?)");
    for id in 0..200i32 {
        session
            .query_unpaged(
                insert.clone(),
                (
                    id,
                    format!("row {id}"),
                    scylla::value::CqlTimestamp(1_700_000_000_000),
                ),
            )
            .await
            .expect("insert");
    }
    // Both legal in Cassandra, both rejected by ferry: U+0000 in text, a timestamp past
    // PostgreSQL's year 294276.
    session
        .query_unpaged(
            insert.clone(),
            (
                1000i32,
                "nul \u{0} inside".to_string(),
                scylla::value::CqlTimestamp(0),
            ),
        )
        .await
        .expect("insert nul");
    session
        .query_unpaged(
            insert,
            (
                1001i32,
                "far future".to_string(),
                scylla::value::CqlTimestamp(9_000_000_000_000_000_000),
            ),
        )
        .await
        .expect("insert far timestamp");

    let dir = std::env::temp_dir().join("ferry-tests").join(&ks);
    std::fs::create_dir_all(&dir).unwrap();
    let reject_file = dir.join("rejects.jsonl");
    let cfg = write_config(
        &ks,
        "rej",
        &ks,
        &format!("ferry.rejectFile={}\n", reject_file.display()),
    );
    let cfg = cfg.to_str().unwrap();
    // migrate --validate: the only differences are the rejected rows, so the exit code stays
    // the migration's "rows rejected" (3), not "differs" (1).
    let out = ferry_ok(&["migrate", "-c", cfg, "--create-tables", "--validate"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("differs: rejected rows"),
        "{}",
        text(&out)
    );

    let diff_file = dir.join("diffs.jsonl");
    let out = ferry_ok(&[
        "validate",
        "-c",
        cfg,
        "--diff-file",
        diff_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rejected: t:"), "{stdout}");
    let lines: Vec<Value> = std::fs::read_to_string(&diff_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for (line, id, column, reason) in [
        (&lines[0], 1000, "t", "U+0000"),
        (&lines[1], 1001, "ts", "294276"),
    ] {
        assert_eq!(line["kind"], json!("missing"), "{line}");
        assert_eq!(line["primary_key"], json!({ "id": id }), "{line}");
        assert_eq!(line["reject"]["column"], json!(column), "{line}");
        assert_eq!(line["reject"]["in_reject_file"], json!(true), "{line}");
        assert!(
            line["reject"]["reason"].as_str().unwrap().contains(reason),
            "{line}"
        );
    }
}
