//! A failure no retry can fix stops the run at once (issue 17): a privilege revoked, or a target
//! column dropped, while the migration copies. The run must end long before
//! `ferry.outageDeadlineSecs` (set to 300 s here; retrying such an error would run into it),
//! with exactly one error line naming the side, the node and the cause, and exit code 4 (what
//! was committed stays; after the fix the same command resumes).

mod common;

use std::path::PathBuf;
use std::process::{Child, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ROWS: i64 = 12_000;

/// One throttled source table for both tests (12,000 rows at 2,000 rows/s: ~6 s of copying).
fn source() -> &'static str {
    static KS: OnceLock<String> = OnceLock::new();
    KS.get_or_init(|| {
        common::testbed();
        let ks = common::unique_name("fatal");
        common::gen(&ks, "t", ROWS as u64, 4, 17);
        ks
    })
}

/// A config for the test bed's first PostgreSQL endpoint, slow enough to act on mid-run, in
/// many chunks whatever the machine's load (one per vnode range: measured sizing would make
/// few chunks when round trips look slow), with the outage deadline far away.
fn config(schema: &str, extra: &str) -> PathBuf {
    let body = common::testbed_properties(source(), "t", schema)
        + "yugabyte.host=127.0.0.1:5433\ncassandra.readsPerSec=2000\ncassandra.fetchSizeInRows=500\n\
           cassandra.inputSplitSizeMb.autoDetermine=false\nferry.maxParallelChunks=2\n\
           ferry.adaptiveConcurrency=false\nferry.outageDeadlineSecs=300\n"
        + &format!("migration.checkpoint.keyspace={schema}_progress\n")
        + extra;
    common::write_config(schema, &body)
}

async fn target_rows(schema: &str) -> i64 {
    let pg = common::pg_connect(5433).await;
    pg.query_one(&format!("SELECT count(*) FROM {schema}.t"), &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

/// Waits until the migration has committed rows, so what follows happens mid-copy.
async fn wait_for_rows(child: &mut Child, schema: &str) {
    let started = Instant::now();
    while target_rows(schema).await == 0 {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the migration ended before any row was committed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no row after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the run to end; it must end well before the 300 s outage deadline (a retried
/// fatal error would keep it alive that long).
fn wait_ended(mut child: Child) -> (Output, Duration) {
    let t = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap");
            panic!(
                "the run still retried 120 s after the fatal error (outage deadline 300 s):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child.wait_with_output().expect("output"), t.elapsed())
}

/// The run stopped with code 4 and exactly one error line holding every needle.
fn assert_one_fatal_line(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ferry: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "not one error line:\n{stderr}");
    let line = errors[0];
    for n in needles {
        assert!(line.contains(n), "the error line lacks '{n}': {line}");
    }
    line.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privilege_revoked_mid_run_stops_it_at_once() {
    let schema = common::unique_name("fatal_grant");
    let role = format!("{schema}_role");
    let pg = common::pg_connect(5433).await;
    pg.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN; GRANT CREATE ON DATABASE ferry TO {role};"
    ))
    .await
    .expect("create the role");
    let cfg = config(&schema, &format!("yugabyte.username={role}\n"));
    let mut child = common::spawn_migrate(&cfg, &["--create-tables"]);
    wait_for_rows(&mut child, &schema).await;
    // The role created (and owns) the tables; a superuser's REVOKE acts as their owner. Both
    // the rows' table and the chunk leases' (a lease is a row lock, which needs UPDATE): a
    // refused lease used to be retried until the outage deadline.
    pg.batch_execute(&format!(
        "REVOKE INSERT ON {schema}.t FROM {role}; \
         REVOKE UPDATE ON {schema}_progress.ferry_chunks FROM {role}"
    ))
    .await
    .expect("revoke");
    let (out, took) = wait_ended(child);
    eprintln!("stopped {took:?} after the revoke");
    let line = assert_one_fatal_line(
        &out,
        &[
            "the target",
            "127.0.0.1:543",
            "permission denied",
            "42501",
            "not retried",
        ],
    );
    eprintln!("{line}");
    let partial = target_rows(&schema).await;
    assert!(partial < ROWS, "the run copied everything ({partial} rows)");

    // Granted again, the same command resumes and completes.
    pg.batch_execute(&format!(
        "GRANT INSERT ON {schema}.t TO {role}; GRANT UPDATE ON {schema}_progress.ferry_chunks TO {role}"
    ))
        .await
        .expect("grant");
    let out = common::run_migrate(&cfg, &["--create-tables"]);
    assert!(out.contains("resuming"), "{out}");
    assert_eq!(target_rows(&schema).await, ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_column_dropped_mid_run_stops_it_at_once() {
    let schema = common::unique_name("fatal_column");
    let cfg = config(&schema, "");
    let mut child = common::spawn_migrate(&cfg, &["--create-tables"]);
    wait_for_rows(&mut child, &schema).await;
    let pg = common::pg_connect(5433).await;
    pg.batch_execute(&format!("ALTER TABLE {schema}.t DROP COLUMN c_text"))
        .await
        .expect("drop a column");
    let (out, took) = wait_ended(child);
    eprintln!("stopped {took:?} after the drop");
    assert_one_fatal_line(
        &out,
        &[
            "the target",
            "127.0.0.1:543",
            "c_text",
            "42703",
            "not retried",
        ],
    );
    assert!(target_rows(&schema).await < ROWS);
}
