//! Issue 23: stored progress is bound to the tables it describes. A rerun after the target
//! table was dropped and recreated, truncated or emptied, after the source table was dropped
//! and recreated, or after the column mapping changed, never reads as "0 rows, success": a
//! table this run created starts over and says so; otherwise the run refuses with one line
//! naming the table, what changed and the fix (exit 2, nothing written), and `--fresh` then
//! ends exact (`ferry validate` compares every value). A rewrite that keeps every row (VACUUM
//! FULL) still resumes without a word about staleness.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use futures::future::try_join_all;

const ROWS: i32 = 3000;

/// Creates `ks.table` (a few columns, 3 rows per partition) and fills it with `rows` rows whose
/// values depend on `version`, so a recreated table holds different data.
async fn source_table(ks: &str, table: &str, rows: i32, version: i32) {
    let s = common::cassandra().await;
    s.query_unpaged(
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        (),
    )
    .await
    .expect("create keyspace");
    s.query_unpaged(
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{table} \
             (pk int, ck int, v text, n bigint, PRIMARY KEY ((pk), ck))"
        ),
        (),
    )
    .await
    .expect("create table");
    let insert = s
        .prepare(format!(
            "INSERT INTO {ks}.{table} (pk, ck, v, n) VALUES (?, ?, ?, ?)"
        ))
        .await
        .expect("prepare insert");
    for block in (0..rows).collect::<Vec<_>>().chunks(500) {
        try_join_all(block.iter().map(|&i| {
            let v = format!("v{version}-row{i}");
            let n = i64::from(i) * 1000 + i64::from(version);
            let (insert, s) = (&insert, &s);
            async move { s.execute_unpaged(insert, (i / 3, i % 3, v, n)).await }
        }))
        .await
        .expect("insert rows");
    }
}

async fn drop_source_table(ks: &str, table: &str) {
    let s = common::cassandra().await;
    s.query_unpaged(format!("DROP TABLE {ks}.{table}"), ())
        .await
        .expect("drop source table");
}

fn config(ks: &str, schema: &str) -> PathBuf {
    common::write_config(schema, &common::testbed_properties(ks, "t", schema))
}

fn ferry(args: &[&str], cfg: &Path) -> Output {
    let out = common::ferry()
        .args(args)
        .arg("-c")
        .arg(cfg)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("run ferry");
    eprintln!(
        "ferry {args:?}: exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn migrate_ok(cfg: &Path, args: &[&str]) -> Output {
    let out = ferry(&[&["migrate"], args].concat(), cfg);
    assert!(out.status.success(), "ferry migrate {args:?} failed");
    out
}

/// `ferry validate`: every row and value of the target equals the source's.
fn validate_ok(cfg: &Path, args: &[&str]) {
    let out = ferry(&[&["validate"], args].concat(), cfg);
    assert!(
        out.status.success(),
        "ferry validate: the target differs from the source"
    );
}

/// A refusal: exit 2, one line on stderr naming the tables, `what` changed and `fix`.
fn assert_refused(out: &Output, ks: &str, schema: &str, what: &str, fix: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "a stale plan must be refused");
    let line = err
        .lines()
        .find(|l| l.starts_with("ferry: error:"))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"));
    assert!(
        line.contains(&format!("{ks}.t → {schema}.t")),
        "the error names the table: {line}"
    );
    assert!(line.contains(what), "the error says what changed: {line}");
    assert!(
        line.ends_with(&format!("rerun with {fix} to copy this table again")),
        "the error names the fix {fix}: {line}"
    );
    assert_eq!(
        err.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "one line: {err}"
    );
}

async fn pg(sql: &str) {
    common::pg_connect(5433)
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn count(schema: &str) -> i64 {
    common::table_digest(schema, "t").await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_table_this_run_created_starts_over_and_says_so() {
    common::testbed();
    let ks = common::unique_name("stale_create");
    source_table(&ks, "t", ROWS, 1).await;
    let cfg = config(&ks, &ks);
    migrate_ok(&cfg, &["--create-tables"]);
    pg(&format!("DROP TABLE {ks}.t")).await;

    let out = migrate_ok(&cfg, &["--create-tables"]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "ferry: {ks}.t did not exist and this run created it: the stored progress of {ks}.t"
        )) && err.contains("is void; copying it from the start"),
        "the run must say it started over: {err}"
    );
    assert!(!err.contains("resuming"), "{err}");
    assert_eq!(count(&ks).await, i64::from(ROWS));
    validate_ok(&cfg, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_table_recreated_by_hand_is_refused_then_fresh_ends_exact() {
    common::testbed();
    let ks = common::unique_name("stale_recreate");
    source_table(&ks, "t", ROWS, 1).await;
    let cfg = config(&ks, &ks);
    migrate_ok(&cfg, &["--create-tables"]);
    // Same columns, new table: what a restore from a schema dump gives.
    pg(&format!(
        "CREATE TABLE {ks}.t2 (LIKE {ks}.t INCLUDING ALL); DROP TABLE {ks}.t; \
         ALTER TABLE {ks}.t2 RENAME TO t"
    ))
    .await;

    for args in [&[][..], &["--create-tables"][..]] {
        let out = ferry(&[&["migrate"], args].concat(), &cfg);
        assert_refused(
            &out,
            &ks,
            &ks,
            "the target table was dropped and recreated after",
            "--fresh",
        );
        assert_eq!(count(&ks).await, 0, "nothing may be written");
    }
    let status = ferry(&["status"], &cfg);
    assert!(String::from_utf8_lossy(&status.stdout)
        .contains("stale: the target table was dropped and recreated"));

    migrate_ok(&cfg, &["--fresh"]);
    assert_eq!(count(&ks).await, i64::from(ROWS));
    validate_ok(&cfg, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_or_emptied_target_is_refused_a_rewrite_resumes() {
    common::testbed();
    let ks = common::unique_name("stale_truncate");
    source_table(&ks, "t", ROWS, 1).await;
    let cfg = config(&ks, &ks);
    migrate_ok(&cfg, &["--create-tables"]);

    // VACUUM FULL gives the table a new file but keeps every row: a resume, not a refusal.
    pg(&format!("VACUUM FULL {ks}.t")).await;
    let out = migrate_ok(&cfg, &[]);
    let err = stderr(&out);
    assert!(err.contains("resuming"), "{err}");
    assert!(
        !err.contains("no longer matches") && !err.contains("warning:"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "{ks}.t: resumed; {ROWS} rows were already in {ks}.t from earlier runs"
        )),
        "the summary shows the rows already there: {stdout}"
    );
    let status = ferry(&["status"], &cfg);
    assert!(String::from_utf8_lossy(&status.stdout).contains("current"));

    pg(&format!("TRUNCATE {ks}.t")).await;
    let out = ferry(&["migrate"], &cfg);
    assert_refused(
        &out,
        &ks,
        &ks,
        "the target table was truncated or emptied after",
        "--fresh",
    );
    assert_eq!(count(&ks).await, 0, "nothing may be written");
    let status = ferry(&["status"], &cfg);
    assert!(String::from_utf8_lossy(&status.stdout)
        .contains("stale: the target table was truncated or emptied"));
    migrate_ok(&cfg, &["--fresh"]);
    assert_eq!(count(&ks).await, i64::from(ROWS));
    validate_ok(&cfg, &[]);

    // DELETE keeps the file (as YugabyteDB's in-place TRUNCATE does): the empty table says it.
    pg(&format!("DELETE FROM {ks}.t")).await;
    let out = ferry(&["migrate"], &cfg);
    assert_refused(
        &out,
        &ks,
        &ks,
        "the target table was truncated or emptied after",
        "--fresh",
    );
    migrate_ok(&cfg, &["--fresh"]);
    validate_ok(&cfg, &[]);

    // Rows deleted by hand, not all: a resume, with a warning counting them (exactly with
    // --validate, which then reports the missing rows and exits 1).
    pg(&format!("DELETE FROM {ks}.t WHERE pk < 10")).await;
    let out = ferry(&["migrate", "--validate"], &cfg);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "ferry: warning: {ks}.t holds {} rows but earlier runs recorded {ROWS} as copied",
            ROWS - 30
        )),
        "{err}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "validate finds the deleted rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_source_table_is_refused_then_fresh_truncate_ends_exact() {
    common::testbed();
    let ks = common::unique_name("stale_source");
    source_table(&ks, "t", ROWS, 1).await;
    let cfg = config(&ks, &ks);
    migrate_ok(&cfg, &["--create-tables"]);
    let before = common::table_digest(&ks, "t").await;

    drop_source_table(&ks, "t").await;
    source_table(&ks, "t", ROWS - 500, 2).await;
    let out = ferry(&["migrate"], &cfg);
    assert_refused(
        &out,
        &ks,
        &ks,
        "the source table was dropped and recreated after",
        "--fresh --truncate",
    );
    assert_eq!(
        common::table_digest(&ks, "t").await,
        before,
        "nothing may be written"
    );
    let status = ferry(&["status"], &cfg);
    assert!(String::from_utf8_lossy(&status.stdout)
        .contains("stale: the source table was dropped and recreated"));

    migrate_ok(&cfg, &["--fresh", "--truncate"]);
    assert_eq!(count(&ks).await, i64::from(ROWS - 500));
    validate_ok(&cfg, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_column_mapping_is_refused_then_fresh_truncate_ends_exact() {
    common::testbed();
    let ks = common::unique_name("stale_mapping");
    source_table(&ks, "t", ROWS, 1).await;
    let cfg = config(&ks, &ks);
    migrate_ok(&cfg, &["--create-tables"]);
    let before = common::table_digest(&ks, "t").await;

    // The target gets a column the new mapping writes `v` into; the old rows hold `v` in `v`.
    pg(&format!("ALTER TABLE {ks}.t ADD COLUMN v2 text")).await;
    let mapped = ["--set", "table.columnMapping.v=v2"];
    let out = ferry(&[&["migrate"][..], &mapped].concat(), &cfg);
    assert_refused(
        &out,
        &ks,
        &ks,
        "the column mapping or target DDL changed after",
        "--fresh --truncate",
    );
    assert_eq!(
        common::table_digest(&ks, "t").await.0,
        before.0,
        "nothing may be written"
    );

    migrate_ok(&cfg, &[&["--fresh", "--truncate"][..], &mapped].concat());
    assert_eq!(count(&ks).await, i64::from(ROWS));
    validate_ok(&cfg, &mapped);
}
