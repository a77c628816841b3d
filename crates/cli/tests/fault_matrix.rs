//! The fault matrix (issue 21): a migration in flight meets a network or server fault on one
//! side, injected mid-run with toxiproxy's toxics or a real server stop and start, and ends
//! exact (`ferry validate` equal, exit 0) or stops with one line that says how to resume, after
//! which a rerun ends exact. Every test asserts that its fault was hit: the server's start time
//! or pid changed, or the run's own fault counters (reconnects, chunks retried, pages re-read)
//! moved. Each prints a `matrix:` line (fault, side, outcome, recovery) for docs/fault-matrix.md.
//!
//! The faults change the shared test bed, so the tests of this binary run one at a time, each
//! holding the network lock benchmarks take (`common::network_lock`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

static BED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Rows of the source table; the run is throttled (`cassandra.readsPerSec`) to last ~10 s.
const ROWS: i64 = 100_000;
const PG_PROXIES: [&str; 3] = ["pg1", "pg2", "pg3"];

/// The source table every test copies (made once per test binary).
async fn source() -> String {
    static KS: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    KS.get_or_init(|| async {
        common::testbed();
        let ks = common::unique_name("matrix");
        common::gen(&ks, "t", ROWS as u64, 4, 47);
        ks
    })
    .await
    .clone()
}

/// A connection to the PostgreSQL server itself, not through a proxy (the faults are on the
/// proxies); waits for a restarting server.
async fn pg_direct() -> tokio_postgres::Client {
    let started = Instant::now();
    loop {
        match tokio_postgres::connect(
            "host=127.0.0.2 port=5432 user=postgres dbname=ferry",
            tokio_postgres::NoTls,
        )
        .await
        {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                return client;
            }
            Err(e) if started.elapsed() < Duration::from_secs(90) => {
                eprintln!("waiting for PostgreSQL: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("PostgreSQL did not come back: {e}"),
        }
    }
}

async fn postmaster_started() -> String {
    pg_direct()
        .await
        .query_one("SELECT pg_postmaster_start_time()::text", &[])
        .await
        .expect("pg_postmaster_start_time")
        .get(0)
}

/// Stops PostgreSQL (`pg_ctl stop -m fast`: every connection goes), waits `pause`, starts it,
/// and checks that it really restarted (its start time changed from `before`).
async fn restart_target(before: &str, pause: Duration) {
    common::testbed_cmd(&["stop", "postgres"]);
    tokio::time::sleep(pause).await;
    common::testbed_cmd(&["up", "postgres"]);
    assert_ne!(
        postmaster_started().await,
        before,
        "PostgreSQL did not restart"
    );
}

/// The run's target connections reconnected (`what` names the connection for the message).
fn assert_reconnected(summary: &Value, what: &str) {
    assert!(
        summary["faults"]["target"]["reconnects"].as_u64() > Some(0),
        "{what} did not reconnect: {}",
        summary["faults"]
    );
}

/// One test's migration: its config (own target and progress schemas) and the child process.
struct Run {
    schema: String,
    cfg: PathBuf,
}

impl Run {
    /// `extra`: properties added to the test bed's (they win over the defaults below).
    async fn new(prefix: &str, extra: &str) -> Run {
        let ks = source().await;
        let schema = common::unique_name(prefix);
        let body = common::testbed_properties(&ks, "t", &schema)
            + &format!(
                "migration.checkpoint.keyspace={schema}_p\ncassandra.readsPerSec=10000\n\
                 ferry.maxParallelChunks=4\ncassandra.fetchSizeInRows=2000\n{extra}"
            );
        let cfg = common::write_config(&schema, &body);
        Run { schema, cfg }
    }

    fn spawn(&self) -> Child {
        common::spawn_migrate(&self.cfg, &["--create-tables", "--json"])
    }

    /// Waits until the target holds at least `rows` committed rows (the run is copying).
    async fn wait_rows(&self, child: &mut Child, rows: i64) {
        let pg = pg_direct().await;
        let started = Instant::now();
        loop {
            let table = format!("{}.t", self.schema);
            let exists: bool = pg
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                .await
                .expect("to_regclass")
                .get(0);
            let n: i64 = if exists {
                pg.query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .expect("counting the target's rows")
                    .get(0)
            } else {
                0
            };
            if n >= rows {
                return;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("the run ended ({status}) before the fault: {n} rows copied");
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "the run did not reach {rows} rows ({n})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a ferry backend of this run's database to wait on a lock of `kind`
    /// (pg_stat_activity's wait_event_type 'Lock', wait_event `kind`) with `query_like`.
    async fn wait_lock(&self, child: &mut Child, kind: &str, query_like: &str) {
        let pg = pg_direct().await;
        let started = Instant::now();
        loop {
            let waiting: i64 = pg
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ferry' \
                     AND wait_event_type = 'Lock' AND wait_event = $1 AND query LIKE $2",
                    &[&kind, &query_like],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            if waiting > 0 {
                return;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("the run ended ({status}) before it waited on the {kind} lock");
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "no ferry backend waited on a {kind} lock ({query_like})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `ferry validate` against the source: the target is exact.
    fn assert_exact(&self) {
        let out = common::ferry()
            .args(["validate", "-c"])
            .arg(&self.cfg)
            .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
            .output()
            .expect("ferry validate");
        assert!(
            out.status.success(),
            "validate found the target not exact:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A rerun of the same command after a stop: resumes and ends exact.
    fn rerun_exact(&self) {
        let out = common::run_migrate(&self.cfg, &["--create-tables"]);
        assert!(out.contains("resum"), "the rerun did not resume:\n{out}");
        self.assert_exact();
    }
}

/// The run's end: exit 0 and its JSON summary, or a panic with what it printed.
fn finished(child: Child) -> Value {
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "the run did not ride through the fault (exit {:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The run's faults (the summary's `faults`): (source pages re-read + chunks retried,
/// target reconnects + chunks retried, the longest outage of either side in s).
fn faults(summary: &Value) -> (u64, u64, f64) {
    let f = &summary["faults"];
    let n = |side: &str, k: &str| f[side][k].as_u64().unwrap_or(0);
    let s = |side: &str| f[side]["longest_outage_seconds"].as_f64().unwrap_or(0.0);
    (
        n("source", "pages_reread") + n("source", "chunks_retried"),
        n("target", "reconnects") + n("target", "chunks_retried"),
        s("source").max(s("target")),
    )
}

/// A stopped run's one line: exit 4 (stopped, resumable), naming the side, the endpoint and
/// the resume.
fn stopped_line(out: &Output, side: &str, endpoint: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(4),
        "expected exit 4 (stopped, resumable):\n{err}"
    );
    let line = err
        .lines()
        .rfind(|l| l.starts_with("ferry: error:"))
        .unwrap_or_else(|| panic!("no error line:\n{err}"))
        .to_string();
    for part in [side, endpoint, "rerun the same command"] {
        assert!(line.contains(part), "the line lacks {part:?}: {line}");
    }
    line
}

/// A toxic on a toxiproxy proxy, removed when dropped (also when the test fails).
struct Toxic {
    proxy: String,
    name: String,
}

impl Toxic {
    fn add(proxy: &str, kind: &str, stream: &str, attributes: &str) -> Toxic {
        let name = format!("matrix_{kind}_{stream}");
        let body = format!(
            r#"{{"name":"{name}","type":"{kind}","stream":"{stream}","toxicity":1.0,"attributes":{attributes}}}"#
        );
        assert!(
            common::toxiproxy("POST", &format!("/proxies/{proxy}/toxics"), &body),
            "adding the {kind} toxic to {proxy}"
        );
        Toxic {
            proxy: proxy.to_string(),
            name,
        }
    }

    /// The same toxic on every PostgreSQL endpoint.
    fn on_target(kind: &str, stream: &str, attributes: &str) -> Vec<Toxic> {
        PG_PROXIES
            .iter()
            .map(|p| Toxic::add(p, kind, stream, attributes))
            .collect()
    }
}

impl Drop for Toxic {
    fn drop(&mut self) {
        common::toxiproxy(
            "DELETE",
            &format!("/proxies/{}/toxics/{}", self.proxy, self.name),
            "",
        );
    }
}

fn matrix(fault: &str, side: &str, outcome: &str, recovery: f64) {
    eprintln!("matrix: | {fault} | {side} | {outcome} | {recovery:.1} s |");
}

// ---- the target side ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_restart_mid_run_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_restart", "").await;
    let before = postmaster_started().await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    restart_target(&before, Duration::from_secs(3)).await;
    let summary = finished(child);
    let (_, target, recovery) = faults(&summary);
    assert!(target > 0, "no target fault counted: {}", summary["faults"]);
    run.assert_exact();
    matrix("whole target restart", "target", "exit 0, exact", recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_connection_reset_mid_run_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_reset", "").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    let toxics = Toxic::on_target("reset_peer", "upstream", r#"{"timeout":0}"#);
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(toxics);
    let summary = finished(child);
    let (_, target, recovery) = faults(&summary);
    assert!(target > 0, "the resets were not hit: {}", summary["faults"]);
    run.assert_exact();
    matrix(
        "connection reset (reset_peer)",
        "target",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_stall_past_the_socket_timeout_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_stall", "yugabyte.socketTimeout=2\n").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    // Replies come 5 s late: past the 2 s the run waits for one.
    let toxics = Toxic::on_target("latency", "downstream", r#"{"latency":5000}"#);
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(toxics);
    let summary = finished(child);
    let (_, target, recovery) = faults(&summary);
    assert!(target > 0, "the stall was not hit: {}", summary["faults"]);
    assert!(
        summary["faults"]["target"]["reconnects"].as_u64() > Some(0),
        "a stalled connection must be dropped: {}",
        summary["faults"]
    );
    run.assert_exact();
    matrix(
        "stall past yugabyte.socketTimeout (latency 5 s, timeout 2 s)",
        "target",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_half_open_connections_are_dropped_and_the_run_ends_exact() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_halfopen", "yugabyte.socketTimeout=2\n").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    // timeout 0: the proxy stops forwarding and never closes.
    let up = Toxic::on_target("timeout", "upstream", r#"{"timeout":0}"#);
    let down = Toxic::on_target("timeout", "downstream", r#"{"timeout":0}"#);
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop((up, down));
    let summary = finished(child);
    assert!(
        summary["faults"]["target"]["reconnects"].as_u64() > Some(0),
        "the half-open connections were not dropped: {}",
        summary["faults"]
    );
    run.assert_exact();
    let (_, _, recovery) = faults(&summary);
    matrix(
        "half-open connection (timeout toxic, never closes)",
        "target",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_connections_cut_mid_copy_are_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_limit", "").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    // For 3 s every target connection is closed once 500 KB more went through it: COPY
    // streams die mid-chunk, again on the new connections. (A link that cuts every connection
    // before a whole chunk went through, for good, stops the run at ferry.outageDeadlineSecs;
    // docs/fault-matrix.md.)
    let toxics = Toxic::on_target("limit_data", "upstream", r#"{"bytes":500000}"#);
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(toxics);
    let summary = finished(child);
    let (_, target, recovery) = faults(&summary);
    assert!(target > 0, "limit_data was not hit: {}", summary["faults"]);
    run.assert_exact();
    matrix(
        "connections closed mid-COPY after 500 KB (limit_data, 3 s)",
        "target",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_down_past_the_deadline_stops_in_one_line_and_a_rerun_ends_exact() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_deadline", "ferry.outageDeadlineSecs=4\n").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    let cut = Instant::now();
    for n in ["1", "2", "3"] {
        common::testbed_cmd(&["node", "down", n]);
    }
    let out = child.wait_with_output().expect("wait");
    let took = cut.elapsed().as_secs_f64();
    for n in ["1", "2", "3"] {
        common::testbed_cmd(&["node", "up", n]);
    }
    let line = stopped_line(&out, "the target", "127.0.0.1:543");
    assert!(line.contains("ferry.outageDeadlineSecs=4"), "{line}");
    eprintln!("stopped {took:.1} s after the cut: {line}");
    run.rerun_exact();
    matrix(
        "every target endpoint down past ferry.outageDeadlineSecs",
        "target",
        "exit 4, one line; the rerun resumes, exact",
        took,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_restart_during_set_up_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_setup", "").await;
    let before = postmaster_started().await;
    // The run's set-up takes the progress schema's DDL lock; holding it here keeps the run in
    // its set-up (creating the progress tables) until the restart.
    let holder = pg_direct().await;
    holder
        .execute("SELECT pg_advisory_lock(hashtext('ferry ddl'))", &[])
        .await
        .expect("taking the DDL lock");
    let mut child = run.spawn();
    run.wait_lock(&mut child, "advisory", "%ferry ddl%").await;
    restart_target(&before, Duration::from_secs(2)).await;
    drop(holder);
    let summary = finished(child);
    assert_reconnected(&summary, "the set-up connection");
    run.assert_exact();
    let (_, _, recovery) = faults(&summary);
    matrix(
        "target restart during set-up (creating the progress tables)",
        "target",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_restart_during_the_final_bookkeeping_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_t_bookkeeping", "").await;
    let before = postmaster_started().await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, 1).await;
    // The run's plan row is locked here: the workers never touch it, the final "table done"
    // mark waits on it, and the restart then breaks that wait.
    let holder = pg_direct().await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM {}_p.ferry_runs FOR UPDATE",
            run.schema
        ))
        .await
        .expect("locking the plan row");
    run.wait_lock(&mut child, "transactionid", "%finished_at%")
        .await;
    restart_target(&before, Duration::from_secs(2)).await;
    drop(holder);
    let summary = finished(child);
    assert_reconnected(&summary, "the bookkeeping connection");
    run.assert_exact();
    let pg = pg_direct().await;
    let finished: bool = pg
        .query_one(
            &format!(
                "SELECT bool_and(finished_at IS NOT NULL) FROM {}_p.ferry_runs",
                run.schema
            ),
            &[],
        )
        .await
        .expect("ferry_runs")
        .get(0);
    assert!(finished, "the table was not marked done after the restart");
    let (_, _, recovery) = faults(&summary);
    matrix(
        "target restart during the final bookkeeping (the done mark)",
        "target",
        "exit 0, exact",
        recovery,
    );
}

// ---- the source side ----

fn cassandra_pid() -> String {
    let dir = std::env::var("FERRY_TESTBED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::repo_root().join(".testbed"));
    std::fs::read_to_string(Path::new(&dir).join("run/cassandra.pid"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_restart_mid_run_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_s_restart", "ferry.outageDeadlineSecs=300\n").await;
    let before = cassandra_pid();
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    common::testbed_cmd(&["stop", "cassandra"]);
    common::testbed_cmd(&["up", "cassandra"]);
    let after = cassandra_pid();
    assert!(
        !after.is_empty() && after != before,
        "Cassandra did not restart (pid {before} -> {after})"
    );
    let summary = finished(child);
    let (source, _, recovery) = faults(&summary);
    assert!(source > 0, "no source fault counted: {}", summary["faults"]);
    run.assert_exact();
    matrix("Cassandra restart", "source", "exit 0, exact", recovery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_connection_reset_mid_run_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_s_reset", "").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    let toxic = Toxic::add("cassandra", "reset_peer", "upstream", r#"{"timeout":0}"#);
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(toxic);
    let summary = finished(child);
    let (source, _, recovery) = faults(&summary);
    assert!(source > 0, "the resets were not hit: {}", summary["faults"]);
    run.assert_exact();
    matrix(
        "connection reset (reset_peer)",
        "source",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_stall_past_the_read_timeout_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_s_stall", "cassandra.readTimeoutMs=1500\n").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    let toxic = Toxic::add("cassandra", "latency", "downstream", r#"{"latency":4000}"#);
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(toxic);
    let summary = finished(child);
    let (source, _, recovery) = faults(&summary);
    assert!(source > 0, "the stall was not hit: {}", summary["faults"]);
    run.assert_exact();
    matrix(
        "stall past cassandra.readTimeoutMs (latency 4 s, timeout 1.5 s)",
        "source",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_half_open_connection_is_ridden_through() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_s_halfopen", "cassandra.readTimeoutMs=1500\n").await;
    let mut child = run.spawn();
    run.wait_rows(&mut child, ROWS / 5).await;
    let up = Toxic::add("cassandra", "timeout", "upstream", r#"{"timeout":0}"#);
    let down = Toxic::add("cassandra", "timeout", "downstream", r#"{"timeout":0}"#);
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop((up, down));
    let summary = finished(child);
    let (source, _, recovery) = faults(&summary);
    assert!(
        source > 0,
        "the half-open connection was not hit: {}",
        summary["faults"]
    );
    run.assert_exact();
    matrix(
        "half-open connection (timeout toxic, never closes)",
        "source",
        "exit 0, exact",
        recovery,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliced_and_delayed_streams_on_both_sides_copy_exactly() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = Run::new("mx_slicer", "").await;
    let before = (
        common::proxy_downstream_bytes("cassandra"),
        common::proxy_upstream_bytes("pg1")
            + common::proxy_upstream_bytes("pg2")
            + common::proxy_upstream_bytes("pg3"),
    );
    // Every packet cut into pieces of ~64 bytes, 10 µs apart, both ways on both sides.
    let attrs = r#"{"average_size":64,"size_variation":32,"delay":10}"#;
    let mut toxics = vec![
        Toxic::add("cassandra", "slicer", "downstream", attrs),
        Toxic::add("cassandra", "slicer", "upstream", attrs),
    ];
    toxics.extend(Toxic::on_target("slicer", "upstream", attrs));
    toxics.extend(Toxic::on_target("slicer", "downstream", attrs));
    let summary = finished(run.spawn());
    drop(toxics);
    let after = (
        common::proxy_downstream_bytes("cassandra"),
        common::proxy_upstream_bytes("pg1")
            + common::proxy_upstream_bytes("pg2")
            + common::proxy_upstream_bytes("pg3"),
    );
    assert!(
        after.0 > before.0 + 1_000_000 && after.1 > before.1 + 1_000_000,
        "the run's bytes did not go through the sliced proxies: {before:?} -> {after:?}"
    );
    run.assert_exact();
    let (_, _, recovery) = faults(&summary);
    matrix(
        "slicer (64-byte pieces) both ways",
        "both",
        "exit 0, exact",
        recovery,
    );
}

// ---- ferry validate ----

/// A target copied without faults, for the validation cells.
async fn copied(prefix: &str, extra: &str) -> Run {
    let run = Run::new(prefix, &format!("cassandra.readsPerSec=0\n{extra}")).await;
    common::run_migrate(&run.cfg, &["--create-tables"]);
    run
}

/// `ferry validate --json` started, not waited for.
fn spawn_validate(run: &Run, extra: &[&str]) -> Child {
    common::ferry()
        .args(["validate", "--json", "-c"])
        .arg(&run.cfg)
        .args(extra)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ferry validate")
}

/// Waits until a ferry backend streams the target table out (`COPY … TO STDOUT`).
async fn wait_target_scan(child: &mut Child) {
    let pg = pg_direct().await;
    let started = Instant::now();
    loop {
        let n: i64 = pg
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ferry' \
                 AND state = 'active' AND query ILIKE 'COPY%TO STDOUT%'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if n > 0 {
            return;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("validate ended ({status}) before it read the target");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "validate never read the target"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_rides_through_a_target_restart() {
    let _bed = (BED.lock().await, common::network_lock().await);
    // The target's endpoints capped at 300 KB/s, so the restart lands while the scan reads.
    let run = copied("mx_v_restart", "").await;
    let before = postmaster_started().await;
    let caps = Toxic::on_target("bandwidth", "downstream", r#"{"rate":300}"#);
    let mut child = spawn_validate(&run, &[]);
    wait_target_scan(&mut child).await;
    restart_target(&before, Duration::from_secs(2)).await;
    drop(caps);
    let summary = finished(child);
    assert_eq!(summary["equal"], true, "{summary}");
    assert!(
        summary["faults"]["restarts"].as_u64() > Some(0),
        "the restart was not hit: {}",
        summary["faults"]
    );
    matrix(
        "whole target restart during ferry validate",
        "target",
        "exit 0, equal (the table's validation started over)",
        0.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_rides_through_source_resets() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = copied("mx_v_reset", "").await;
    let mut child = spawn_validate(&run, &[]);
    wait_target_scan(&mut child).await;
    let toxic = Toxic::add("cassandra", "reset_peer", "upstream", r#"{"timeout":0}"#);
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(toxic);
    let summary = finished(child);
    assert_eq!(summary["equal"], true, "{summary}");
    let f = &summary["faults"];
    assert!(
        f["pages_reread"].as_u64() > Some(0) || f["restarts"].as_u64() > Some(0),
        "the resets were not hit: {f}"
    );
    matrix(
        "connection reset during ferry validate",
        "source",
        "exit 0, equal",
        0.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_with_the_target_down_past_the_deadline_stops_in_one_line() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = copied("mx_v_deadline", "ferry.outageDeadlineSecs=3\n").await;
    let caps = Toxic::on_target("bandwidth", "downstream", r#"{"rate":300}"#);
    let mut child = spawn_validate(&run, &[]);
    wait_target_scan(&mut child).await;
    for n in ["1", "2", "3"] {
        common::testbed_cmd(&["node", "down", n]);
    }
    let out = child.wait_with_output().expect("wait");
    for n in ["1", "2", "3"] {
        common::testbed_cmd(&["node", "up", n]);
    }
    drop(caps);
    let line = stopped_line(&out, "the target", "127.0.0.1:543");
    assert!(line.contains("ferry.outageDeadlineSecs=3"), "{line}");
    // Back up: the same command answers equal.
    run.assert_exact();
    matrix(
        "every target endpoint down past the deadline during ferry validate",
        "target",
        "exit 4, one line; the rerun answers equal",
        0.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_drops_a_half_open_target_connection_and_answers_equal() {
    let _bed = (BED.lock().await, common::network_lock().await);
    let run = copied("mx_v_halfopen", "yugabyte.socketTimeout=2\n").await;
    let caps = Toxic::on_target("bandwidth", "downstream", r#"{"rate":300}"#);
    let mut child = spawn_validate(&run, &[]);
    wait_target_scan(&mut child).await;
    // The scan's connections stop forwarding and never close, for 5 s: past the 2 s the
    // validation waits for the next piece of the stream.
    let up = Toxic::on_target("timeout", "upstream", r#"{"timeout":0}"#);
    let down = Toxic::on_target("timeout", "downstream", r#"{"timeout":0}"#);
    tokio::time::sleep(Duration::from_secs(5)).await;
    drop((up, down, caps));
    let summary = finished(child);
    assert_eq!(summary["equal"], true, "{summary}");
    assert!(
        summary["faults"]["restarts"].as_u64() > Some(0),
        "the half-open connections were not hit: {}",
        summary["faults"]
    );
    matrix(
        "half-open target connection during ferry validate",
        "target",
        "exit 0, equal (the table's validation started over)",
        0.0,
    );
}
