//! Test bed controls that change the network for everyone: added WAN latency and a cut node
//! endpoint. They live in their own test binary, serialized by a lock, so no other test sees them.

mod common;

use std::time::{Duration, Instant};

static NETWORK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn cql_round_trip(session: &scylla::client::session::Session) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        session
            .query_unpaged("SELECT key FROM system.local", &[])
            .await
            .expect("query");
        best = best.min(t.elapsed());
    }
    best
}

#[tokio::test]
async fn wan_25_adds_at_least_50ms_to_a_cql_round_trip() {
    common::testbed();
    let _net = NETWORK.lock().await;
    let session = common::cassandra().await;
    let base = cql_round_trip(&session).await;
    common::testbed_cmd(&["wan", "25"]);
    let slow = cql_round_trip(&session).await;
    common::testbed_cmd(&["wan", "0"]);
    let after = cql_round_trip(&session).await;
    eprintln!("CQL round trip: {base:?} loopback, {slow:?} with wan 25, {after:?} after wan 0");
    assert!(
        slow >= base + Duration::from_millis(50),
        "wan 25 added only {:?}",
        slow - base
    );
    assert!(after < Duration::from_millis(25), "wan 0 left {after:?}");
}

#[tokio::test]
async fn node_down_cuts_one_endpoint_and_node_up_restores_it() {
    common::testbed();
    let _net = NETWORK.lock().await;
    common::testbed_cmd(&["node", "down", "2"]);
    let cut = tokio_postgres::connect(&common::pg_conn_string(5434), tokio_postgres::NoTls).await;
    let other = tokio_postgres::connect(&common::pg_conn_string(5433), tokio_postgres::NoTls).await;
    common::testbed_cmd(&["node", "up", "2"]);
    assert!(
        cut.is_err(),
        "node 2 (127.0.0.1:5434) still accepted a connection while down"
    );
    assert!(other.is_ok(), "node 1 should stay up while node 2 is down");
    let back = tokio_postgres::connect(&common::pg_conn_string(5434), tokio_postgres::NoTls).await;
    assert!(back.is_ok(), "node 2 did not come back: {:?}", back.err());
}

/// A small source for the fault tests of this binary.
async fn fault_source() -> String {
    static KS: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    KS.get_or_init(|| async {
        common::testbed();
        let ks = common::unique_name("faults");
        common::gen(&ks, "t", 200_000, 2, 31);
        ks
    })
    .await
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_node_cut_mid_run_and_the_run_completes_exactly() {
    let ks = fault_source().await;
    let _net = NETWORK.lock().await;
    let schema = common::unique_name("fault_node");
    let body = common::testbed_properties(&ks, "t", &schema) + "ferry.maxParallelChunks=6\n";
    let cfg = common::write_config(&schema, &body);
    let child = common::spawn_migrate(&cfg, &["--create-tables", "--json"]);
    std::thread::sleep(Duration::from_millis(1200));
    common::testbed_cmd(&["node", "down", "2"]);
    let out = child.wait_with_output().expect("wait");
    common::testbed_cmd(&["node", "up", "2"]);
    assert!(
        out.status.success(),
        "the run failed with node 2 down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    eprintln!("write retries: {}", summary["tables"][0]["write_retries"]);
    let (n, _) = common::table_digest(&schema, "t").await;
    assert_eq!(n, 200_000);
    let pg = common::pg_connect(5433).await;
    let distinct: i64 = pg
        .query_one(
            &format!("SELECT count(*) FROM (SELECT DISTINCT pk, ck FROM {schema}.t) x"),
            &[],
        )
        .await
        .expect("distinct")
        .get(0);
    assert_eq!(distinct, 200_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_stopped_past_the_deadline_stops_clearly_and_a_rerun_completes() {
    let ks = fault_source().await;
    let _net = NETWORK.lock().await;
    let schema = common::unique_name("fault_cass");
    let body = common::testbed_properties(&ks, "t", &schema)
        + "ferry.maxParallelChunks=4\nferry.outageDeadlineSecs=5\nferry.leaseSecs=3\ncassandra.fetchSizeInRows=500\n";
    let cfg = common::write_config(&schema, &body);
    let child = common::spawn_migrate(&cfg, &["--create-tables"]);
    std::thread::sleep(Duration::from_millis(1200));
    common::testbed_cmd(&["stop", "cassandra"]);
    let started = Instant::now();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    common::testbed_cmd(&["up", "cassandra"]);
    assert!(
        !out.status.success(),
        "the run should stop while Cassandra is down"
    );
    assert!(
        stderr.contains("Cassandra has been failing"),
        "unclear error:\n{stderr}"
    );
    assert!(
        stderr.contains("rerun the same command"),
        "no resume hint:\n{stderr}"
    );
    eprintln!(
        "stopped {:.1}s after Cassandra went down",
        started.elapsed().as_secs_f64()
    );
    let (partial, _) = common::table_digest(&schema, "t").await;
    assert!(
        partial < 200_000,
        "nothing was left to resume ({partial} rows)"
    );
    // Cassandra is back: the same command finishes the job, exactly.
    let out = common::run_migrate(&cfg, &["--create-tables"]);
    assert!(out.contains("resuming"), "{out}");
    let (n, _) = common::table_digest(&schema, "t").await;
    assert_eq!(n, 200_000);
}
