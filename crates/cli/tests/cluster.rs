//! The seed's real source: a three-node, two-data-centre Cassandra cluster that requires client
//! encryption (`scripts/testbed up cluster`: dc1 = nodes 1 and 2, dc2 = node 3, each behind its
//! own toxiproxy endpoint). Reads stay in `cassandra.localDC`, survive a node's death, honour the
//! consistency level; the plan sees the whole ring; TLS mistakes are one-line errors.
//!
//! The tests share one cluster and one loaded table and stop nodes, so they take turns (`LOCK`).
//! Rows: `FERRY_CLUSTER_ROWS` (default 30 000; the 300 000 load at a few hundred rows a
//! second on a busy 2-core machine, too slow for every run).

mod common;

use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn rows() -> u64 {
    std::env::var("FERRY_CLUSTER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000)
}

/// The keyspace holding the cluster's test table `t`: NetworkTopologyStrategy {dc1: 2, dc2: 1},
/// loaded once per test binary, memtables flushed (size estimates read sstables only).
fn source() -> &'static str {
    static KS: OnceLock<String> = OnceLock::new();
    KS.get_or_init(|| {
        common::cluster();
        let ks = common::unique_name("cluster");
        let t = Instant::now();
        let out = common::ferry()
            .args([
                "gen",
                "--cassandra",
                &common::testbed_env("FERRY_CASSANDRA_CLUSTER"),
            ])
            .args(["--tls-ca", &common::testbed_env("FERRY_TLS_CA")])
            .args(["--keyspace", &ks, "--table", "t", "--shape", "bench"])
            .args([
                "--rows",
                &rows().to_string(),
                "--replication",
                "dc1:2,dc2:1",
            ])
            .output()
            .expect("ferry gen");
        assert!(
            out.status.success(),
            "ferry gen on the cluster failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "loaded {} rows into the cluster in {:.0?}",
            rows(),
            t.elapsed()
        );
        common::testbed_cmd(&["cassandra-node", "flush"]);
        ks
    })
}

fn config(ks: &str, local_dc: &str, extra: &str) -> (String, std::path::PathBuf) {
    let schema = common::unique_name("cl");
    let body = common::cluster_properties(ks, "t", &schema, local_dc) + extra;
    let cfg = common::write_config(&schema, &body);
    (schema, cfg)
}

fn migrate(cfg: &std::path::Path, args: &[&str]) -> Output {
    common::ferry()
        .args(["migrate", "-c"])
        .arg(cfg)
        .args(["--create-tables", "--json"])
        .args(args)
        .output()
        .expect("ferry migrate")
}

fn summary_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "ferry migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

/// Source and target equal, value by value, with every row there.
fn assert_exact(cfg: &std::path::Path) {
    let out = common::run_ferry(&["validate", "-c", cfg.to_str().unwrap(), "--full", "--json"]);
    assert!(out.status.success(), "validate found differences");
    let v: Value = serde_json::from_slice(&out.stdout).expect("validate --json");
    assert_eq!(v["equal"], Value::Bool(true), "{v}");
    assert_eq!(v["tables"][0]["source_rows"].as_u64(), Some(rows()), "{v}");
    assert_eq!(v["tables"][0]["target_rows"].as_u64(), Some(rows()), "{v}");
}

/// The one stderr line of a failed command, which must exit 2.
fn one_line_error(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    err
}

/// Whether the target has the schema at all (bad input must write nothing).
async fn target_schema_exists(schema: &str) -> bool {
    let pg = common::pg_connect(5433).await;
    pg.query_one(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
        &[&schema],
    )
    .await
    .expect("schema query")
    .get::<_, i64>(0)
        > 0
}

fn node_bytes() -> [u64; 3] {
    [1, 2, 3].map(|n| common::proxy_downstream_bytes(&format!("cassandra-node{n}")))
}

/// Starts node 2 again when dropped, so a failing test leaves the cluster whole.
struct RestartNode2;

impl Drop for RestartNode2 {
    fn drop(&mut self) {
        common::testbed_cmd(&["cassandra-node", "start", "2"]);
    }
}

fn node2_is_down() -> bool {
    let out = std::process::Command::new(common::repo_root().join("scripts/testbed"))
        .arg("status")
        .output()
        .expect("scripts/testbed status");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("cluster2") && l.contains(" down "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_dc1_is_exact_and_no_scan_goes_through_node3() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let (_, cfg) = config(ks, "dc1", "cassandra.consistencyLevel=LOCAL_ONE\n");
    let before = node_bytes();
    let s = summary_of(&migrate(&cfg, &[]));
    // ferry has exited: its connections are closed, so toxiproxy has counted their bytes.
    let after = node_bytes();
    let d: Vec<u64> = (0..3).map(|i| after[i] - before[i]).collect();
    eprintln!("bytes from nodes 1, 2, 3 during the dc1 migration: {d:?}");
    assert_eq!(s["tables"][0]["rows_written"].as_u64(), Some(rows()));
    let copied = s["tables"][0]["bytes"].as_u64().unwrap();
    assert!(
        d[0] + d[1] > copied / 2,
        "the scan's bytes ({copied} written) did not come through nodes 1 and 2: {d:?}"
    );
    // Node 3 (dc2) serves no page: at most the driver's control connection's metadata.
    assert!(
        d[2] < 256 * 1024 && d[2] * 20 < d[0] + d[1],
        "scan traffic went through node 3 (dc2): {d:?}"
    );
    assert_exact(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_dc2_is_exact_and_the_scan_goes_through_node3() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let (_, cfg) = config(ks, "dc2", "cassandra.consistencyLevel=LOCAL_ONE\n");
    let before = node_bytes();
    let s = summary_of(&migrate(&cfg, &[]));
    let after = node_bytes();
    let d: Vec<u64> = (0..3).map(|i| after[i] - before[i]).collect();
    eprintln!("bytes from nodes 1, 2, 3 during the dc2 migration: {d:?}");
    assert_eq!(s["tables"][0]["rows_written"].as_u64(), Some(rows()));
    assert!(
        d[2] > 20 * (d[0] + d[1]) && d[2] > s["tables"][0]["bytes"].as_u64().unwrap() / 2,
        "the dc2 scan did not go through node 3: {d:?}"
    );
    assert_exact(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_quorum_on_dc1_is_exact() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let (_, cfg) = config(ks, "dc1", "cassandra.consistencyLevel=LOCAL_QUORUM\n");
    let s = summary_of(&migrate(&cfg, &[]));
    assert_eq!(s["tables"][0]["rows_written"].as_u64(), Some(rows()));
    assert_exact(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node2_stopped_mid_migration_under_local_one_fails_over_and_is_exact() {
    let ks = source();
    let _turn = LOCK.lock().await;
    // Throttled, in pages of 200 rows, so that the reads last well past the node's death (about
    // ten seconds; with the default pages every chunk is one page, read at once).
    let per_sec = (rows() / 10).max(1000);
    let (schema, cfg) = config(
        ks,
        "dc1",
        &format!("cassandra.consistencyLevel=LOCAL_ONE\ncassandra.readsPerSec={per_sec}\ncassandra.fetchSizeInRows=200\n"),
    );
    let child = common::ferry()
        .args(["migrate", "-c"])
        .arg(&cfg)
        .args(["--create-tables", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ferry migrate");
    // Stop node 2 once a fifth of the table is in the target (its set-up over TLS takes a few
    // seconds). toxiproxy's byte counters move only as connections close, so the target's rows
    // say how far the run is.
    let pg = common::pg_connect(5433).await;
    let count = || async {
        let exists: bool = pg
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{schema}.t")],
            )
            .await
            .expect("to_regclass")
            .get(0);
        if !exists {
            return 0i64;
        }
        pg.query_one(&format!("SELECT count(*) FROM {schema}.t"), &[])
            .await
            .expect("count")
            .get(0)
    };
    let waited = std::time::Instant::now();
    while count().await < (rows() / 5) as i64 {
        assert!(
            waited.elapsed() < Duration::from_secs(90),
            "the run never reached a fifth of the table"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at_stop = count().await;
    let _restart = RestartNode2;
    common::testbed_cmd(&["cassandra-node", "stop", "2"]);
    let out = child.wait_with_output().expect("wait");
    // The fault was real: node 2's process is gone, not just its proxy.
    assert!(node2_is_down(), "node 2 was not down after the run");
    let s = summary_of(&out);
    let failed_over = s["tables"][0]["pages_failed_over"].as_u64().unwrap();
    eprintln!(
        "pages failed over: {failed_over}, read retries: {}; {at_stop} of {} rows in the target \
         as node 2 was stopped",
        s["tables"][0]["read_retries"],
        rows()
    );
    // And it was hit mid-run: the stop came before the whole table was in, and pages in flight
    // on node 2 as it died were read from the other dc1 replica (small pages keep some in
    // flight all the time).
    assert!(
        (at_stop as u64) < rows(),
        "the whole table was in the target before node 2 was stopped: the stop missed the run"
    );
    assert!(
        failed_over > 0,
        "node 2 died mid-run but no page was read from another replica: {s}"
    );
    assert_eq!(s["tables"][0]["rows_written"].as_u64(), Some(rows()));
    assert_exact(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_quorum_with_node2_down_names_the_level_range_and_node_then_resumes_exactly() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let (_, cfg) = config(ks, "dc1", "cassandra.consistencyLevel=LOCAL_QUORUM\n");
    {
        let _restart = RestartNode2;
        common::testbed_cmd(&["cassandra-node", "stop", "2"]);
        let t = Instant::now();
        let out = migrate(&cfg, &[]);
        // Retried pages are logged as warnings before the error, which is the last line. The
        // plan is stored and copying had started: "stopped, resumable" (exit code 4).
        assert_eq!(out.status.code(), Some(4));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let err = stderr.trim().lines().last().unwrap_or("").to_string();
        assert!(err.starts_with("ferry: error: "), "{stderr}");
        eprintln!("failed in {:.1?}: {err}", t.elapsed());
        assert!(
            err.contains("LOCAL_QUORUM")
                && err.contains("token range (")
                && err.contains("127.0.0.12:9042"),
            "the error must name the level, the range and the down node: {err}"
        );
    }
    // Node 2 is back (RestartNode2 waited for it): the same command resumes and ends exact.
    summary_of(&migrate(&cfg, &[]));
    assert_exact(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_estimates_the_whole_ring_within_2x() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let (_, cfg) = config(ks, "dc1", "");
    // Each node records its primary ranges' estimates every 15 s (the test bed's setting).
    let deadline = Instant::now() + Duration::from_secs(60);
    let estimate = loop {
        let out = common::run_ferry(&["plan", "-c", cfg.to_str().unwrap(), "--create-tables"]);
        assert!(out.status.success(), "ferry plan failed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let n = text
            .split("estimated: ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0);
        match n {
            Some(n) => break n,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_secs(5)),
            None => panic!("no size estimate after 60 s:\n{text}"),
        }
    };
    // One row per partition: the true partition count is the row count.
    let truth = rows();
    assert!(
        estimate * 2 >= truth && estimate <= truth * 2,
        "plan estimated {estimate} partitions for {truth}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_local_dc_is_one_line_naming_the_data_centres() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let (schema, cfg) = config(ks, "dc9", "");
    let err = one_line_error(&migrate(&cfg, &[]));
    assert!(
        err.contains("cassandra.localDC=dc9") && err.contains("dc1, dc2"),
        "{err}"
    );
    assert!(
        !target_schema_exists(&schema).await,
        "bad input wrote to the target"
    );
}

/// TLS mistakes on the source: one line naming the key and the fix, exit 2, nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_tls_mistakes_are_one_line_errors() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let tls = |k: &str| common::testbed_env(k);
    let jks = format!(
        "cassandra.connection.ssl.trustStore.path={}",
        tls("FERRY_TLS_TRUSTSTORE_JKS")
    );
    let p12 = format!(
        "cassandra.connection.ssl.keyStore.path={}",
        tls("FERRY_TLS_CLIENT_P12")
    );
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "untrusted server certificate",
            vec!["cassandra.connection.ssl.trustStore.path=/etc/ssl/certs/ca-certificates.crt"],
            "does not trust",
        ),
        (
            "TLS on against the clear-text single node",
            vec![
                "cassandra.host=127.0.0.1:9042",
                "cassandra.localDC=datacenter1",
            ],
            "cassandra.connection.ssl.enabled=false",
        ),
        (
            "TLS off against the cluster",
            vec!["cassandra.connection.ssl.enabled=false"],
            "requires TLS: set cassandra.connection.ssl.enabled=true",
        ),
        (
            "missing trust store",
            vec!["cassandra.connection.ssl.trustStore.path=/nonexistent/ca.pem"],
            "cassandra.connection.ssl.trustStore.path",
        ),
        (
            "JKS trust store",
            vec![jks.as_str()],
            "keytool -importkeystore",
        ),
        (
            "wrong key store password",
            vec![
                p12.as_str(),
                "cassandra.connection.ssl.keyStore.password=not-the-password-42",
            ],
            "cassandra.connection.ssl.keyStore.password",
        ),
    ];
    for (what, sets, expect) in cases {
        let (schema, cfg) = config(ks, "dc1", "");
        let args: Vec<&str> = sets.iter().flat_map(|kv| ["--set", kv]).collect();
        let err = one_line_error(&migrate(&cfg, &args));
        eprintln!("{what}: {err}");
        assert!(err.contains(expect), "{what}: {err}");
        assert!(
            !err.contains("not-the-password-42"),
            "{what}: a password was printed"
        );
        assert!(
            !target_schema_exists(&schema).await,
            "{what}: bad input wrote to the target"
        );
    }
}

/// The full type-mix table over TLS, with the trust store as PEM and as PKCS#12 (with the
/// client's PKCS#12 key store loaded too), exact value by value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_type_mix_table_migrates_exactly_over_tls_with_pem_and_pkcs12() {
    common::cluster();
    let _turn = LOCK.lock().await;
    let ks = common::unique_name("cltls");
    let out = common::ferry()
        .args([
            "gen",
            "--cassandra",
            &common::testbed_env("FERRY_CASSANDRA_CLUSTER"),
        ])
        .args(["--tls-ca", &common::testbed_env("FERRY_TLS_CA")])
        .args(["--keyspace", &ks, "--table", "mix", "--shape", "full"])
        .args([
            "--rows",
            "2000",
            "--partition-rows",
            "4",
            "--replication",
            "dc1:2,dc2:1",
        ])
        .output()
        .expect("ferry gen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p12 = format!(
        "cassandra.connection.ssl.trustStore.path={}\n\
         cassandra.connection.ssl.trustStore.password=changeit\n\
         cassandra.connection.ssl.keyStore.path={}\n\
         cassandra.connection.ssl.keyStore.password=changeit\n",
        common::testbed_env("FERRY_TLS_TRUSTSTORE_P12"),
        common::testbed_env("FERRY_TLS_CLIENT_P12")
    );
    for extra in [String::new(), p12] {
        let schema = common::unique_name("cltls");
        let body = common::cluster_properties(&ks, "mix", &schema, "dc1") + &extra;
        let cfg = common::write_config(&schema, &body);
        let s = summary_of(&migrate(&cfg, &[]));
        assert_eq!(s["tables"][0]["rows_written"].as_u64(), Some(2000));
        let out = common::run_ferry(&["validate", "-c", cfg.to_str().unwrap(), "--full", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("validate --json");
        assert_eq!(v["equal"], Value::Bool(true), "{v}");
        assert_eq!(v["tables"][0]["source_rows"].as_u64(), Some(2000), "{v}");
    }
}

/// `ferry diagnose` shows the ring: every node with its data centre and round trip, and which
/// nodes the migration reads (dc1's, not node 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_shows_the_ring_and_which_nodes_the_migration_reads() {
    let ks = source();
    let _turn = LOCK.lock().await;
    let (_, cfg) = config(ks, "dc1", "cassandra.consistencyLevel=LOCAL_ONE\n");
    let out = common::ferry()
        .args(["diagnose", "-c"])
        .arg(&cfg)
        .args(["--samples", "5", "--json"])
        .output()
        .expect("ferry diagnose");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let ring = report["source_facts"]["ring"].as_str().unwrap_or("");
    assert!(
        ring.contains("dc1: ") && ring.contains("dc2: 127.0.0.13:9042"),
        "{report:#}"
    );
    let eps = report["endpoints"].as_array().expect("endpoints");
    for (addr, dc, reads) in [
        ("127.0.0.11:9042", "dc1", "yes"),
        ("127.0.0.12:9042", "dc1", "yes"),
        ("127.0.0.13:9042", "dc2", "no"),
    ] {
        let e = eps
            .iter()
            .find(|e| e["address"] == addr)
            .unwrap_or_else(|| panic!("{addr} missing: {report:#}"));
        assert_eq!(e["facts"]["data_center"], dc, "{e}");
        assert!(
            e["facts"]["migration reads here"]
                .as_str()
                .unwrap_or("")
                .starts_with(reads),
            "{e}"
        );
        assert!(e["rtt_ms"]["p50"].as_f64().unwrap_or(0.0) > 0.0, "{e}");
    }
    // The sample scan read through the source module (dc1's replicas).
    assert!(
        eps.iter().any(|e| e["role"] == "source"
            && e["throughput"]["mb_per_sec"].as_f64().unwrap_or(0.0) > 0.0),
        "{report:#}"
    );
}
