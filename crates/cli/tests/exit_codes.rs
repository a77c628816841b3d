//! The exit-code table (README, `ferry --help`, `crates/cli/src/exit.rs`), each code pinned to a
//! real situation against the real test bed:
//!
//! | code | situation here |
//! |---|---|
//! | 0 | a clean migration; validate of an equal table; compare without a gate |
//! | 1 | validate of a table missing a row; compare's gate missed |
//! | 2 | an unknown configuration key, an unknown flag, an unreadable run record |
//! | 3 | a migration with a row PostgreSQL cannot hold (U+0000 in text) |
//! | 4 | Ctrl-C mid-migration; the target gone past `ferry.outageDeadlineSecs` mid-migration |
//!
//! Issue 24: "bad input, a resumable stop and a failed gate are not told apart everywhere".

mod common;

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::{ferry, testbed_properties, unique_name, write_config};

const SUCCESS: i32 = 0;
const CHECK_FAILED: i32 = 1;
const BAD_INPUT: i32 = 2;
const REJECTED: i32 = 3;
const STOPPED: i32 = 4;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(args: &[&str]) -> Output {
    let out = ferry()
        .args(args)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("running ferry");
    eprintln!("ferry {}\n{}", args.join(" "), text(&out));
    out
}

fn migrate(cfg: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["migrate", "-c", cfg.to_str().unwrap(), "--create-tables"];
    args.extend_from_slice(extra);
    run(&args)
}

async fn target_rows(schema: &str, table: &str) -> i64 {
    let pg = common::pg_connect(5433).await;
    pg.query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

/// Waits (polling the target, at most 60 s) until the migration has committed some rows, so
/// what follows happens mid-copy and not before it.
async fn wait_for_rows(child: &mut Child, schema: &str, table: &str) -> i64 {
    let started = Instant::now();
    loop {
        let n = target_rows(schema, table).await;
        if n > 0 {
            return n;
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_and_writes_nothing() {
    common::testbed();
    let schema = unique_name("exit_bad");
    let body = testbed_properties("nokeyspace", "t", &schema) + "cassandra.fetchSizeInRow=100\n";
    let cfg = write_config(&schema, &body);
    let out = migrate(&cfg, &[]);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", text(&out));
    assert!(
        text(&out).contains("cassandra.fetchSizeInRows"),
        "the error names the key to use: {}",
        text(&out)
    );
    let out = migrate(&cfg, &["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", text(&out));
    let out = run(&[
        "compare",
        "/nonexistent/before.json",
        "/nonexistent/after.json",
    ]);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", text(&out));

    let pg = common::pg_connect(5433).await;
    let n: i64 = pg
        .query_one(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            &[&schema],
        )
        .await
        .expect("schemata")
        .get(0);
    assert_eq!(n, 0, "bad input created the target schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_rejected_and_check_failed() {
    common::testbed();
    let ks = unique_name("exit_ok");
    common::gen(&ks, "t", 2_000, 2, 24);
    let session = common::cassandra().await;
    session
        .query_unpaged(
            format!("CREATE TABLE {ks}.r (id int PRIMARY KEY, v text)"),
            (),
        )
        .await
        .expect("create r");
    for (id, v) in [(1, "fine"), (2, "nul \u{0} inside"), (3, "also fine")] {
        session
            .query_unpaged(
                format!("INSERT INTO {ks}.r (id, v) VALUES (?, ?)"),
                (id, v.to_string()),
            )
            .await
            .expect("insert r");
    }

    // 0: a clean migration, then validate of the equal table.
    let schema = unique_name("exit_ok");
    let cfg = write_config(&schema, &testbed_properties(&ks, "t", &schema));
    let runs = common::bench_dir("exit_runs");
    let runs_dir = format!("ferry.runsDir={}", runs.display());
    let out = migrate(&cfg, &["--set", &runs_dir]);
    assert_eq!(out.status.code(), Some(SUCCESS), "{}", text(&out));
    assert_eq!(target_rows(&schema, "t").await, 2_000);
    let out = run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(SUCCESS), "{}", text(&out));

    // 1: one row deleted from the target.
    let pg = common::pg_connect(5433).await;
    let deleted = pg
        .execute(
            &format!("DELETE FROM {schema}.t WHERE ctid IN (SELECT ctid FROM {schema}.t LIMIT 1)"),
            &[],
        )
        .await
        .expect("delete a row");
    assert_eq!(deleted, 1);
    let out = run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(CHECK_FAILED), "{}", text(&out));
    assert!(text(&out).contains("DIFFERS"), "{}", text(&out));

    // 3: the row with U+0000 cannot live in PostgreSQL text; the other two arrive.
    let rschema = unique_name("exit_rej");
    let body = testbed_properties(&ks, "r", &rschema)
        + &format!(
            "ferry.rejectFile={}\n",
            std::env::temp_dir()
                .join("ferry-tests")
                .join(format!("{rschema}.rejects.jsonl"))
                .display()
        );
    let rcfg = write_config(&rschema, &body);
    let out = migrate(&rcfg, &[]);
    assert_eq!(out.status.code(), Some(REJECTED), "{}", text(&out));
    assert_eq!(target_rows(&rschema, "r").await, 2);

    // compare: 0 without a gate, 1 when the gate is missed (a record against itself is no
    // improvement). The record is the clean migration's own run record.
    let record = std::fs::read_dir(&runs)
        .expect("runs dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("migration-"))
        })
        .expect("the migration's run record");
    let r = record.to_str().unwrap();
    let out = run(&["compare", r, r]);
    assert_eq!(out.status.code(), Some(SUCCESS), "{}", text(&out));
    let out = run(&["compare", r, r, "--min-improvement", "30%"]);
    assert_eq!(out.status.code(), Some(CHECK_FAILED), "{}", text(&out));
    assert!(text(&out).contains("gate: FAILED"), "{}", text(&out));
}

/// A throttled source table for the stop tests: 12,000 rows at 2,000 rows/s is about 6 s of
/// copying, long enough to interrupt, in one chunk per vnode range whatever the machine's load
/// (measured sizing makes few chunks when round trips look slow, and the first rows would then
/// commit only at the end).
fn slow_config(ks: &str, schema: &str, extra: &str) -> std::path::PathBuf {
    let body = testbed_properties(ks, "t", schema)
        + "cassandra.readsPerSec=2000\ncassandra.fetchSizeInRows=500\nferry.maxParallelChunks=2\nferry.adaptiveConcurrency=false\n\
           cassandra.inputSplitSizeMb.autoDetermine=false\n"
        + extra;
    write_config(schema, &body)
}

fn spawn(cfg: &Path) -> Child {
    common::spawn_migrate(cfg, &["--create-tables"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_migrations_exit_4_and_the_same_command_resumes() {
    common::testbed();
    let ks = unique_name("exit_stop");
    common::gen(&ks, "t", 12_000, 4, 42);

    // Ctrl-C: the chunks in flight finish, the process exits 4, a rerun completes.
    let schema = unique_name("exit_int");
    let cfg = slow_config(&ks, &schema, "");
    let mut child = spawn(&cfg);
    wait_for_rows(&mut child, &schema, "t").await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    eprintln!("interrupted migration:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(STOPPED), "{}", text(&out));
    assert!(
        text(&out).contains("stopping: finishing the chunks in flight"),
        "the interrupt was not seen: {}",
        text(&out)
    );
    let partial = target_rows(&schema, "t").await;
    assert!(
        partial > 0 && partial < 12_000,
        "stopped with {partial} rows"
    );
    let out = migrate(&cfg, &[]);
    assert_eq!(out.status.code(), Some(SUCCESS), "{}", text(&out));
    assert_eq!(target_rows(&schema, "t").await, 12_000);
    let out = run(&["validate", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(SUCCESS), "{}", text(&out));

    // The target gone mid-copy past the outage deadline: exit 4 (not 2: the plan is stored and
    // the committed chunks stay), and the same command finishes once the target is back. The
    // target is reached through a toxiproxy proxy of this test's own, so no other test's
    // traffic is cut.
    let proxy = unique_name("exit_pg");
    let listen = free_port();
    toxiproxy(
        "POST",
        "/proxies",
        &format!(
            r#"{{"name":"{proxy}","listen":"127.0.0.1:{listen}","upstream":"127.0.0.2:5432","enabled":true}}"#
        ),
    );
    let schema = unique_name("exit_out");
    let cfg = slow_config(
        &ks,
        &schema,
        &format!(
            "yugabyte.host=127.0.0.1:{listen}\nyugabyte.loadBalanceHosts=false\nferry.outageDeadlineSecs=3\nferry.leaseSecs=3\n"
        ),
    );
    let mut child = spawn(&cfg);
    wait_for_rows(&mut child, &schema, "t").await;
    toxiproxy("POST", &format!("/proxies/{proxy}"), r#"{"enabled":false}"#);
    let out = child.wait_with_output().expect("wait");
    toxiproxy("POST", &format!("/proxies/{proxy}"), r#"{"enabled":true}"#);
    let outcome = text(&out);
    eprintln!("migration with the target gone:\n{outcome}");
    assert_eq!(out.status.code(), Some(STOPPED), "{outcome}");
    assert!(
        outcome.contains("has been failing") && outcome.contains("the same command resumes"),
        "{outcome}"
    );
    assert!(target_rows(&schema, "t").await < 12_000);
    let out = migrate(&cfg, &[]);
    toxiproxy("DELETE", &format!("/proxies/{proxy}"), "");
    assert_eq!(out.status.code(), Some(SUCCESS), "{}", text(&out));
    assert_eq!(target_rows(&schema, "t").await, 12_000);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn toxiproxy(method: &str, path: &str, body: &str) {
    assert!(
        common::toxiproxy(method, path, body),
        "toxiproxy {method} {path} failed"
    );
}
