//! Shared by the integration tests: the real test bed (started once per test run by
//! `scripts/testbed up`, which is idempotent), fixed addresses, and per-test names so tests can
//! run in parallel. When the test bed cannot be started the tests fail loudly; they never skip.
#![allow(dead_code)]

pub mod writer;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub const CASSANDRA: &str = "127.0.0.1:9042";
pub const PG_PORTS: [u16; 3] = [5433, 5434, 5435];
pub const KAFKA: &str = "127.0.0.1:9092";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Brings the test bed up (once per test binary; a no-op when it already runs).
pub fn testbed() {
    static UP: OnceLock<()> = OnceLock::new();
    UP.get_or_init(|| {
        let status = Command::new(repo_root().join("scripts/testbed"))
            .arg("up")
            .status()
            .expect("running scripts/testbed up");
        assert!(
            status.success(),
            "scripts/testbed up failed: the integration tests need the real servers"
        );
    });
}

/// Runs `scripts/testbed ARGS` and panics with its output on failure.
pub fn testbed_cmd(args: &[&str]) {
    let out = Command::new(repo_root().join("scripts/testbed"))
        .args(args)
        .output()
        .expect("scripts/testbed");
    assert!(
        out.status.success(),
        "scripts/testbed {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A name unique to this test process and call, usable as a keyspace or schema name.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn pg_conn_string(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=ferry connect_timeout=10")
}

pub async fn pg_connect(port: u16) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&pg_conn_string(port), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to PostgreSQL at 127.0.0.1:{port}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

pub async fn cassandra() -> scylla::client::session::Session {
    scylla::client::session_builder::SessionBuilder::new()
        .known_node(CASSANDRA)
        .user("cassandra", "cassandra")
        .build()
        .await
        .expect("connecting to Cassandra at 127.0.0.1:9042")
}

/// The `ferry` binary built for this test run.
pub fn ferry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
}

/// Bytes clients sent through a toxiproxy endpoint so far (toxiproxy's own metrics).
pub fn proxy_upstream_bytes(proxy: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-fsS", "http://127.0.0.1:8474/metrics"])
        .output()
        .expect("curl toxiproxy metrics");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| {
            l.starts_with("toxiproxy_proxy_received_bytes_total")
                && l.contains("direction=\"upstream\"")
                && l.contains(&format!("proxy=\"{proxy}\""))
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

/// One call to toxiproxy's API (`body` empty: none); whether it succeeded.
pub fn toxiproxy(method: &str, path: &str, body: &str) -> bool {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-fsS",
        "-X",
        method,
        &format!("http://127.0.0.1:8474{path}"),
    ]);
    if !body.is_empty() {
        cmd.args(["-H", "Content-Type: application/json", "-d", body]);
    }
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

/// Writes a properties file for a test and returns its path.
pub fn write_config(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("ferry-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.properties"));
    std::fs::write(&path, body).expect("write config");
    path
}

/// Runs `ferry gen` for a table.
pub fn gen(ks: &str, table: &str, rows: u64, per_partition: u64, seed: u64) {
    gen_shaped(ks, table, rows, per_partition, seed, "full")
}

/// Runs `ferry gen --shape SHAPE` (`full` or `bench`) for a table.
pub fn gen_shaped(ks: &str, table: &str, rows: u64, per_partition: u64, seed: u64, shape: &str) {
    let out = ferry()
        .args([
            "gen",
            "--shape",
            shape,
            "--keyspace",
            ks,
            "--table",
            table,
            "--rows",
            &rows.to_string(),
        ])
        .args([
            "--seed",
            &seed.to_string(),
            "--partition-rows",
            &per_partition.to_string(),
        ])
        .output()
        .expect("run ferry gen");
    assert!(
        out.status.success(),
        "ferry gen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A properties file for the test bed, migrating `ks.table` into `schema.table`.
pub fn testbed_properties(ks: &str, table: &str, schema: &str) -> String {
    format!(
        "cassandra.host=127.0.0.1\ncassandra.port=9042\ncassandra.localDC=datacenter1\n\
         cassandra.username=cassandra\ncassandra.fetchSizeInRows=5000\n\
         yugabyte.host=127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435\nyugabyte.database=ferry\n\
         yugabyte.username=postgres\nyugabyte.loadBalanceHosts=true\nyugabyte.copyFlushEvery=20000\n\
         table.source.keyspace={ks}\ntable.source.table={table}\n\
         table.target.schema={schema}\ntable.target.table={table}\n\
         ferry.runsDir={runs}\n",
        runs = std::env::temp_dir().join("ferry-tests/runs").display()
    )
}

/// An order-independent digest of a target table's content, and its row count.
pub async fn table_digest(schema: &str, table: &str) -> (i64, String) {
    let pg = pg_connect(5433).await;
    let row = pg
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') \
                 FROM (SELECT md5(t::text) AS h FROM {schema}.{table} t) x"
            ),
            &[],
        )
        .await
        .expect("digest");
    (row.get(0), row.get(1))
}

/// Starts `ferry migrate -c cfg ARGS` without waiting.
pub fn spawn_migrate(cfg: &Path, args: &[&str]) -> std::process::Child {
    ferry()
        .args(["migrate", "-c"])
        .arg(cfg)
        .args(args)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ferry migrate")
}

/// Runs `ferry migrate -c cfg ARGS` to the end; panics with its output on failure.
pub fn run_migrate(cfg: &Path, args: &[&str]) -> String {
    let out = spawn_migrate(cfg, args).wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ferry migrate failed:\n{text}");
    text
}

/// A fresh temporary folder for one test's records and reports.
pub fn bench_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique_name(prefix));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs `ferry ARGS`, echoing its output (shown when the test fails).
pub fn run_ferry(args: &[&str]) -> Output {
    run_ferry_env(args, &[])
}

/// Runs `ferry ARGS` with these environment variables, echoing its output.
pub fn run_ferry_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = ferry()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running ferry");
    eprintln!(
        "ferry {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ferry ARGS`, which must succeed; its stdout.
pub fn ferry_ok(args: &[&str]) -> String {
    let out = run_ferry(args);
    assert!(out.status.success(), "ferry {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a run record and checks what every record holds: the schema version, a time span,
/// and the host's facts.
pub fn read_record(path: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("record file")).expect("record is JSON");
    assert_eq!(v["schema_version"], 1);
    assert!(v["started_at"].as_f64().unwrap() <= v["ended_at"].as_f64().unwrap());
    assert!(v["host"]["cpus"].as_u64().unwrap() >= 1);
    assert!(!v["host"]["cpu_model"].as_str().unwrap().is_empty());
    assert!(v["host"]["memory_mb"].as_u64().unwrap() > 0);
    v
}

/// `scripts/testbed env`: the test bed's fixed addresses and files, by name.
pub fn testbed_env(name: &str) -> String {
    let out = Command::new(repo_root().join("scripts/testbed"))
        .arg("env")
        .output()
        .expect("scripts/testbed env");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("scripts/testbed env prints no {name}"))
}

/// Brings the three-node, two-DC Cassandra cluster up beside the rest of the test bed (once per
/// test binary; a no-op when it runs already).
pub fn cluster() {
    static UP: OnceLock<()> = OnceLock::new();
    testbed();
    UP.get_or_init(|| testbed_cmd(&["up", "cluster"]));
}

/// The cluster's connection properties (all three contact points, client encryption verified
/// against the test bed's CA, its superuser) and the test bed's target, migrating `ks.table`
/// into `schema.table` and reading in `local_dc`. The one place tests spell them.
pub fn cluster_properties(ks: &str, table: &str, schema: &str, local_dc: &str) -> String {
    format!(
        "cassandra.host={hosts}\ncassandra.localDC={local_dc}\n\
         cassandra.username=cassandra\ncassandra.password=cassandra\n\
         cassandra.connection.ssl.enabled=true\ncassandra.connection.ssl.trustStore.path={ca}\n\
         yugabyte.host=127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435\nyugabyte.database=ferry\n\
         yugabyte.username=postgres\nyugabyte.loadBalanceHosts=true\n\
         table.source.keyspace={ks}\ntable.source.table={table}\n\
         table.target.schema={schema}\ntable.target.table={table}\n\
         ferry.runsDir={runs}\n",
        hosts = testbed_env("FERRY_CASSANDRA_CLUSTER"),
        ca = testbed_env("FERRY_TLS_CA"),
        runs = std::env::temp_dir().join("ferry-tests/runs").display()
    )
}

/// Bytes a toxiproxy endpoint passed from its server to clients so far. Toxiproxy adds a
/// connection's bytes when it closes, so read this after the client has exited.
pub fn proxy_downstream_bytes(proxy: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-fsS", "http://127.0.0.1:8474/metrics"])
        .output()
        .expect("curl toxiproxy metrics");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| {
            l.starts_with("toxiproxy_proxy_sent_bytes_total")
                && l.contains("direction=\"downstream\"")
                && l.contains(&format!("proxy=\"{proxy}\""))
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

/// The lock benchmarks and network-changing tests share (`/tmp/ferry-wan.lock`, which
/// bench/migration takes for its whole run): a test that adds latency or toxics, or restarts a
/// server, holds it, so a benchmark on the shared test bed never measures a fault, and a fault
/// test never lands in a benchmark's WAN settings. util-linux's `flock` holds it until the
/// returned guard is dropped.
pub struct NetworkLock(std::process::Child);

impl Drop for NetworkLock {
    fn drop(&mut self) {
        // Closing its stdin ends `cat`, and `flock` lets go.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

pub async fn network_lock() -> NetworkLock {
    tokio::task::spawn_blocking(network_lock_blocking)
        .await
        .expect("the lock task")
}

/// [`network_lock`], for a test that is not async.
pub fn network_lock_blocking() -> NetworkLock {
    use std::io::BufRead;
    let mut child = Command::new("flock")
        .args([
            "-x",
            "/tmp/ferry-wan.lock",
            "sh",
            "-c",
            "echo locked; cat >/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("flock (util-linux)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("flock's stdout"))
        .read_line(&mut line)
        .expect("flock's first line");
    assert_eq!(
        line.trim(),
        "locked",
        "flock did not take /tmp/ferry-wan.lock"
    );
    NetworkLock(child)
}
