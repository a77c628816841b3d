//! The test bed's real servers answer at their fixed addresses: a CQL query to Cassandra, a
//! binary COPY through each of the three PostgreSQL node endpoints, a produce and consume on
//! Kafka.

mod common;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

#[tokio::test]
async fn cassandra_answers_cql_through_the_proxy_and_advertises_it() {
    common::testbed();
    let session = common::cassandra().await;
    let rows = session
        .query_unpaged("SELECT release_version, rpc_address FROM system.local", &[])
        .await
        .expect("query system.local")
        .into_rows_result()
        .expect("rows");
    let (version, rpc): (String, std::net::IpAddr) = rows.single_row().expect("one row");
    assert!(version.starts_with("5.0."), "Cassandra version {version}");
    // The node advertises the proxy's address, so the driver never bypasses toxiproxy.
    assert_eq!(rpc.to_string(), "127.0.0.1");
    let state = session.get_cluster_state();
    let addrs: Vec<String> = state
        .get_nodes_info()
        .iter()
        .map(|n| n.address.to_string())
        .collect();
    assert_eq!(addrs, vec!["127.0.0.1:9042".to_string()]);
}

#[tokio::test]
async fn binary_copy_lands_through_each_postgres_node_endpoint() {
    common::testbed();
    let schema = common::unique_name("tb_copy");
    let admin = common::pg_connect(5433).await;
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (node int, id bigint, name text, PRIMARY KEY (node, id))"
        ))
        .await
        .expect("create table");
    for (node, port) in common::PG_PORTS.iter().enumerate() {
        let client = common::pg_connect(*port).await;
        let sink = client
            .copy_in::<_, bytes::Bytes>(&format!(
                "COPY {schema}.t (node, id, name) FROM STDIN (FORMAT binary)"
            ))
            .await
            .expect("copy in");
        let mut sink = std::pin::pin!(sink);
        let mut buf = BytesMut::new();
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0);
        buf.put_i32(0);
        for id in 0..1000i64 {
            let name = format!("row {id} via {port}");
            buf.put_i16(3);
            buf.put_i32(4);
            buf.put_i32(node as i32 + 1);
            buf.put_i32(8);
            buf.put_i64(id);
            buf.put_i32(name.len() as i32);
            buf.put_slice(name.as_bytes());
        }
        buf.put_i16(-1);
        sink.send(buf.freeze()).await.expect("send copy data");
        let n = sink.as_mut().finish().await.expect("finish copy");
        assert_eq!(n, 1000, "rows copied through port {port}");
    }
    for port in common::PG_PORTS {
        // Every node endpoint serves the same data.
        let client = common::pg_connect(port).await;
        let rows = client
            .query(&format!("SELECT node, count(*), min(name), max(id) FROM {schema}.t GROUP BY node ORDER BY node"), &[])
            .await
            .expect("count");
        assert_eq!(rows.len(), 3);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.get::<_, i32>(0), i as i32 + 1);
            assert_eq!(row.get::<_, i64>(1), 1000);
            assert_eq!(row.get::<_, String>(2), format!("row 0 via {}", 5433 + i));
            assert_eq!(row.get::<_, i64>(3), 999);
        }
    }
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop");
}

#[tokio::test]
async fn yb_servers_lists_the_three_node_endpoints() {
    common::testbed();
    let client = common::pg_connect(5434).await;
    let rows = client
        .query(
            "SELECT host, port, node_type, zone FROM yb_servers() ORDER BY port",
            &[],
        )
        .await
        .expect("yb_servers()");
    let got: Vec<(String, i64, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("127.0.0.1".to_string(), 5433, "primary".to_string()),
            ("127.0.0.1".to_string(), 5434, "primary".to_string()),
            ("127.0.0.1".to_string(), 5435, "primary".to_string()),
        ]
    );
}

#[tokio::test]
async fn kafka_produces_and_consumes() {
    common::testbed();
    let topic = common::unique_name("tb_topic");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", common::KAFKA)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let sent: Vec<String> = (0..100)
        .map(|i| format!("message {i} of {topic}"))
        .collect();
    for (i, payload) in sent.iter().enumerate() {
        let key = i.to_string();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", common::KAFKA)
        .set("group.id", format!("{topic}_group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut got = Vec::new();
    let mut stream = consumer.stream();
    while got.len() < sent.len() {
        let msg = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .expect("a message within 60s")
            .expect("stream open")
            .expect("message");
        got.push(String::from_utf8(msg.payload().expect("payload").to_vec()).expect("utf8"));
    }
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want);
}
