//! Rejects are inside the exactly-once boundary (issue 17): each rejected row is a row of the
//! progress schema's reject table, committed in its chunk's transaction, and the JSON-lines
//! reject file is exported from that table. After kill -9 and a resume, and with three workers
//! on one plan, the file holds every rejected row exactly once.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ROWS: i32 = 4_000;

/// Rows whose `v` holds U+0000, which PostgreSQL text cannot: every tenth.
fn rejected_ids() -> Vec<i32> {
    (0..ROWS).filter(|id| id % 10 == 0).collect()
}

/// One source table for the tests of this file.
async fn source() -> String {
    static KS: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    KS.get_or_init(|| async {
        common::testbed();
        let ks = common::unique_name("rejects");
        let session = common::cassandra().await;
        for cql in [
            format!(
                "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            format!("CREATE TABLE {ks}.r (id int PRIMARY KEY, v text)"),
        ] {
            session.query_unpaged(cql, &[]).await.expect("schema");
        }
        let insert = session
            .prepare(format!("INSERT INTO {ks}.r (id, v) VALUES (?, ?)"))
            .await
            .expect("prepare");
        for block in (0..ROWS).collect::<Vec<_>>().chunks(500) {
            futures::future::try_join_all(block.iter().map(|&id| {
                let v = if id % 10 == 0 {
                    format!("bad \u{0} {id}")
                } else {
                    format!("row {id}")
                };
                let insert = &insert;
                let session = &session;
                async move { session.execute_unpaged(insert, (id, v)).await }
            }))
            .await
            .expect("insert");
        }
        ks
    })
    .await
    .clone()
}

/// A slow run (about 4 s at 1,000 rows/s) in many chunks (one per vnode range), with its own
/// reject file.
fn config(ks: &str, schema: &str) -> (PathBuf, PathBuf) {
    let reject_file = std::env::temp_dir()
        .join("ferry-tests")
        .join(format!("{schema}.rejects.jsonl"));
    let body = common::testbed_properties(ks, "r", schema)
        + "cassandra.readsPerSec=1000\ncassandra.fetchSizeInRows=200\n\
           cassandra.inputSplitSizeMb.autoDetermine=false\nferry.maxParallelChunks=2\n\
           ferry.adaptiveConcurrency=false\nferry.leaseSecs=3\n"
        + &format!(
            "migration.checkpoint.keyspace={schema}_progress\nferry.rejectFile={}\n",
            reject_file.display()
        );
    (common::write_config(schema, &body), reject_file)
}

async fn count(sql: &str) -> i64 {
    let pg = common::pg_connect(5433).await;
    pg.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(0)
}

/// The reject file's ids, each with how often it appears; checks every line's shape.
fn file_ids(path: &PathBuf) -> BTreeMap<i32, usize> {
    let text = std::fs::read_to_string(path).expect("the reject file");
    let mut ids = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(v["column"], "v", "{line}");
        assert!(v["reason"].as_str().unwrap().contains("U+0000"), "{line}");
        assert!(v["table"].as_str().unwrap().ends_with(".r"), "{line}");
        let id = v["primary_key"]["id"].as_i64().expect("id") as i32;
        // No text form holds U+0000: the value is the hex of its bytes.
        let hex: String = format!("bad \u{0} {id}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(v["value"], format!("0x{hex}"), "{line}");
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// Every rejected row once, every other row in the target once.
async fn assert_exactly_once(schema: &str, reject_file: &PathBuf) {
    let ids = file_ids(reject_file);
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "rejects in the file more than once: {twice:?}"
    );
    assert_eq!(ids.keys().copied().collect::<Vec<_>>(), rejected_ids());
    let want = ROWS as i64 - rejected_ids().len() as i64;
    assert_eq!(
        count(&format!("SELECT count(DISTINCT id) FROM {schema}.r")).await,
        want
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM {schema}_progress.ferry_rejects"
        ))
        .await,
        rejected_ids().len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_keeps_every_reject_exactly_once() {
    let ks = source().await;
    let schema = common::unique_name("rej_kill");
    let (cfg, reject_file) = config(&ks, &schema);
    let mut child = common::spawn_migrate(&cfg, &["--create-tables"]);
    // Kill once some chunks committed, rejects with them.
    let t = Instant::now();
    let rejects_table = format!("SELECT count(*) FROM {schema}_progress.ferry_rejects");
    while count(&rejects_table).await == 0 {
        assert!(child.try_wait().expect("poll").is_none(), "ended early");
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no reject after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let rows = count(&format!("SELECT count(*) FROM {schema}.r")).await;
    let rejected = count(&rejects_table).await;
    eprintln!("killed with {rows} rows and {rejected} rejects committed");
    assert!(
        (rows + rejected) < ROWS as i64,
        "the run finished before the kill"
    );
    // What the killed run committed is consistent: its chunks' rejects and rows, nothing of
    // the chunks in flight (a reject's row is never in the target).
    let pg = common::pg_connect(5433).await;
    let overlap: i64 = pg
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}_progress.ferry_rejects j \
                 JOIN {schema}.r t ON t.id = (j.primary_key::jsonb->>'id')::int"
            ),
            &[],
        )
        .await
        .expect("overlap")
        .get(0);
    assert_eq!(overlap, 0);

    let out = common::spawn_migrate(&cfg, &["--create-tables"])
        .wait_with_output()
        .expect("resume");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("resuming"), "{text}");
    assert_exactly_once(&schema, &reject_file).await;

    // `ferry status --rejects` exports the same file again from the table.
    std::fs::remove_file(&reject_file).expect("remove the reject file");
    let out = common::ferry()
        .args(["status", "-c", cfg.to_str().unwrap(), "--rejects"])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("status --rejects");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exactly_once(&schema, &reject_file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_keep_every_reject_exactly_once() {
    let ks = source().await;
    let schema = common::unique_name("rej_workers");
    let (cfg, reject_file) = config(&ks, &schema);
    let workers: Vec<_> = (0..3)
        .map(|_| common::spawn_migrate(&cfg, &["--create-tables", "--json"]))
        .collect();
    let mut rejected_by_workers = 0;
    for w in workers {
        let out = w.wait_with_output().expect("worker");
        assert!(
            matches!(out.status.code(), Some(0) | Some(3)),
            "a worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
        rejected_by_workers += summary["rows_rejected"].as_u64().expect("rows_rejected");
    }
    // Each worker counted only the rejects of the chunks it committed.
    assert_eq!(rejected_by_workers, rejected_ids().len() as u64);
    assert_exactly_once(&schema, &reject_file).await;
}
