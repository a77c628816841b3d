//! `ferry gen` writes exactly the rows `ferry_migrate::gen::sample_row` describes: read back from
//! Cassandra, value by value.

mod common;

use std::collections::HashMap;

use ferry_migrate::gen::{sample_row, COLUMNS};
use futures::TryStreamExt;
use scylla::value::{CqlValue, Row};

#[tokio::test]
async fn gen_writes_the_rows_it_describes() {
    common::testbed();
    let ks = common::unique_name("gen");
    let (rows, seed, per_partition) = (3000u64, 42u64, 7u64);
    let out = common::ferry()
        .args([
            "gen",
            "--keyspace",
            &ks,
            "--table",
            "mix",
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
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("wrote {rows} rows")));

    let session = common::cassandra().await;
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let mut pager = session
        .query_iter(format!("SELECT {} FROM {ks}.mix", names.join(", ")), &[])
        .await
        .expect("scan")
        .rows_stream::<Row>()
        .expect("rows");
    let mut got: HashMap<(i64, i32), Vec<Option<CqlValue>>> = HashMap::new();
    while let Some(row) = pager.try_next().await.expect("page") {
        let pk = match &row.columns[0] {
            Some(CqlValue::BigInt(v)) => *v,
            other => panic!("pk {other:?}"),
        };
        let ck = match &row.columns[1] {
            Some(CqlValue::Int(v)) => *v,
            other => panic!("ck {other:?}"),
        };
        got.insert((pk, ck), row.columns);
    }
    assert_eq!(got.len() as u64, rows);
    for i in 0..rows {
        let mut want = sample_row(seed, i, per_partition);
        for v in want.iter_mut().flatten() {
            if let CqlValue::UserDefinedType { keyspace, .. } = v {
                *keyspace = ks.clone();
            }
        }
        let key = ((i / per_partition) as i64, (i % per_partition) as i32);
        let have = got.get(&key).unwrap_or_else(|| panic!("row {i} missing"));
        for (c, (name, _)) in COLUMNS.iter().enumerate() {
            // Debug text, so that NaN compares equal to NaN.
            assert_eq!(
                format!("{:?}", have[c]),
                format!("{:?}", want[c]),
                "row {i} column {name}"
            );
        }
    }
    session
        .query_unpaged(format!("DROP KEYSPACE {ks}"), &[])
        .await
        .expect("drop keyspace");
}
