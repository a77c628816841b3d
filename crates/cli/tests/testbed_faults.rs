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
