//! `ferry migrate` on the real test bed: a generated table with the full type mix and edge
//! values, plus a wide-partition table, land in PostgreSQL with every value equal to the
//! source, compared value by value (not by count) against an oracle written independently of
//! ferry's encoder.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use ferry_migrate::gen::COLUMNS;
use futures::TryStreamExt;
use num_bigint::BigInt;
use scylla::value::{CqlValue, Row};
use serde_json::Value as J;

/// The source table, keyed by (pk, ck).
async fn source_rows(ks: &str, table: &str) -> HashMap<(i64, i32), Vec<Option<CqlValue>>> {
    let session = common::cassandra().await;
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let mut pager = session
        .query_iter(
            format!("SELECT {} FROM {ks}.{table}", names.join(", ")),
            &[],
        )
        .await
        .expect("scan")
        .rows_stream::<Row>()
        .expect("rows");
    let mut out = HashMap::new();
    while let Some(row) = pager.try_next().await.expect("page") {
        let pk = match &row.columns[0] {
            Some(CqlValue::BigInt(v)) => *v,
            o => panic!("pk {o:?}"),
        };
        let ck = match &row.columns[1] {
            Some(CqlValue::Int(v)) => *v,
            o => panic!("ck {o:?}"),
        };
        out.insert((pk, ck), row.columns);
    }
    out
}

/// PostgreSQL's own text for numerics and intervals; everything else through typed FromSql.
fn select_list() -> String {
    COLUMNS
        .iter()
        .map(|(n, t)| match *t {
            "decimal" | "varint" => format!("{n}::text"),
            // An interval's three fields: months, days, microseconds.
            "duration" => format!(
                "(extract(year from {n})*12 + extract(month from {n}))::int, extract(day from {n})::int, \
                 (extract(hour from {n})*3600 + extract(minute from {n})*60)::bigint * 1000000 + extract(microseconds from {n})::bigint"
            ),
            _ => n.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn float_eq64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn float_eq32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn decimal_of(v: &CqlValue) -> BigDecimal {
    match v {
        CqlValue::Decimal(d) => {
            let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
            BigDecimal::new(BigInt::from_signed_bytes_be(bytes), scale.into())
        }
        CqlValue::Varint(v) => {
            BigDecimal::from(BigInt::from_signed_bytes_be(v.as_signed_bytes_be_slice()))
        }
        o => panic!("not a number: {o:?}"),
    }
}

/// The JSON a CQL value must become in a jsonb column (the documented shape), built here
/// independently of the encoder.
fn json_of(v: &CqlValue) -> J {
    match v {
        CqlValue::Int(i) => J::from(*i),
        CqlValue::Text(s) => J::from(s.clone()),
        CqlValue::Double(d) if d.is_nan() => J::from("NaN"),
        CqlValue::Double(d) if d.is_infinite() => {
            J::from(if *d > 0.0 { "Infinity" } else { "-Infinity" })
        }
        CqlValue::Double(d) => J::from(*d),
        CqlValue::List(l) | CqlValue::Set(l) => J::Array(l.iter().map(json_of).collect()),
        CqlValue::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| match k {
                    CqlValue::Text(s) => (s.clone(), json_of(v)),
                    o => panic!("unexpected key {o:?}"),
                })
                .collect(),
        ),
        CqlValue::Tuple(t) => J::Array(
            t.iter()
                .map(|x| x.as_ref().map(json_of).unwrap_or(J::Null))
                .collect(),
        ),
        CqlValue::UserDefinedType { fields, .. } => J::Object(
            fields
                .iter()
                .map(|(n, v)| (n.clone(), v.as_ref().map(json_of).unwrap_or(J::Null)))
                .collect(),
        ),
        o => panic!("no JSON oracle for {o:?}"),
    }
}

fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

const EPOCH_DAY: i64 = 1 << 31;

/// Asserts one target row equals one source row, column by column.
fn assert_row_eq(src: &[Option<CqlValue>], row: &tokio_postgres::Row, key: (i64, i32)) {
    let mut idx = 0usize;
    for (c, (name, ty)) in COLUMNS.iter().enumerate() {
        let want = &src[c];
        let ctx = || format!("row {key:?} column {name} ({ty}): source {want:?}");
        match *ty {
            "bigint" => assert_eq!(
                row.get::<_, Option<i64>>(idx),
                want.as_ref().map(|v| v.as_bigint().unwrap()),
                "{}",
                ctx()
            ),
            "int" => assert_eq!(
                row.get::<_, Option<i32>>(idx),
                want.as_ref().map(|v| v.as_int().unwrap()),
                "{}",
                ctx()
            ),
            "smallint" => assert_eq!(
                row.get::<_, Option<i16>>(idx),
                want.as_ref().map(|v| v.as_smallint().unwrap()),
                "{}",
                ctx()
            ),
            "tinyint" => assert_eq!(
                row.get::<_, Option<i16>>(idx),
                want.as_ref().map(|v| i16::from(v.as_tinyint().unwrap())),
                "{}",
                ctx()
            ),
            "boolean" => assert_eq!(
                row.get::<_, Option<bool>>(idx),
                want.as_ref().map(|v| v.as_boolean().unwrap()),
                "{}",
                ctx()
            ),
            "text" | "varchar" | "ascii" => {
                let w = want.as_ref().map(|v| match v {
                    CqlValue::Text(s) | CqlValue::Ascii(s) => s.clone(),
                    o => panic!("{o:?}"),
                });
                assert_eq!(row.get::<_, Option<String>>(idx), w, "{}", ctx());
            }
            "blob" => assert_eq!(
                row.get::<_, Option<Vec<u8>>>(idx),
                want.as_ref().map(|v| v.as_blob().unwrap().clone()),
                "{}",
                ctx()
            ),
            "double" => {
                let got = row.get::<_, Option<f64>>(idx);
                match (got, want) {
                    (Some(g), Some(CqlValue::Double(w))) => {
                        assert!(float_eq64(g, *w), "{} got {g}", ctx())
                    }
                    (None, None) => {}
                    (g, _) => panic!("{} got {g:?}", ctx()),
                }
            }
            "float" => {
                let got = row.get::<_, Option<f32>>(idx);
                match (got, want) {
                    (Some(g), Some(CqlValue::Float(w))) => {
                        assert!(float_eq32(g, *w), "{} got {g}", ctx())
                    }
                    (None, None) => {}
                    (g, _) => panic!("{} got {g:?}", ctx()),
                }
            }
            "uuid" | "timeuuid" => {
                let w = want.as_ref().map(|v| match v {
                    CqlValue::Uuid(u) => *u,
                    CqlValue::Timeuuid(u) => *u.as_ref(),
                    o => panic!("{o:?}"),
                });
                assert_eq!(row.get::<_, Option<uuid::Uuid>>(idx), w, "{}", ctx());
            }
            "inet" => assert_eq!(
                row.get::<_, Option<IpAddr>>(idx),
                want.as_ref().map(|v| v.as_inet().unwrap()),
                "{}",
                ctx()
            ),
            "timestamp" => {
                let w = want.as_ref().map(|v| match v {
                    CqlValue::Timestamp(t) => t.0,
                    o => panic!("{o:?}"),
                });
                assert_eq!(
                    row.get::<_, Option<DateTime<Utc>>>(idx)
                        .map(|d| d.timestamp_millis()),
                    w,
                    "{}",
                    ctx()
                );
            }
            "date" => {
                let w = want.as_ref().map(|v| match v {
                    CqlValue::Date(d) => i64::from(d.0) - EPOCH_DAY,
                    o => panic!("{o:?}"),
                });
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
                assert_eq!(
                    row.get::<_, Option<NaiveDate>>(idx)
                        .map(|d| (d - epoch).num_days()),
                    w,
                    "{}",
                    ctx()
                );
            }
            "time" => {
                let w = want.as_ref().map(|v| match v {
                    CqlValue::Time(t) => t.0,
                    o => panic!("{o:?}"),
                });
                let got = row.get::<_, Option<NaiveTime>>(idx).map(|t| {
                    i64::from(t.num_seconds_from_midnight()) * 1_000_000_000
                        + i64::from(t.nanosecond())
                });
                assert_eq!(got, w, "{}", ctx());
            }
            "decimal" | "varint" => {
                let got = row
                    .get::<_, Option<String>>(idx)
                    .map(|s| BigDecimal::from_str(&s).unwrap());
                assert_eq!(got, want.as_ref().map(decimal_of), "{}", ctx());
            }
            "duration" => {
                let months: Option<i32> = row.get(idx);
                let days: Option<i32> = row.get(idx + 1);
                let micros: Option<i64> = row.get(idx + 2);
                let w = want.as_ref().map(|v| match v {
                    CqlValue::Duration(d) => (d.months, d.days, d.nanoseconds / 1000),
                    o => panic!("{o:?}"),
                });
                let got = months.map(|m| (m, days.unwrap(), micros.unwrap()));
                assert_eq!(got, w, "{}", ctx());
                idx += 2;
            }
            "list<int>" => {
                let w = want.as_ref().map(|v| {
                    v.as_list()
                        .unwrap()
                        .iter()
                        .map(|x| Some(x.as_int().unwrap()))
                        .collect::<Vec<_>>()
                });
                assert_eq!(row.get::<_, Option<Vec<Option<i32>>>>(idx), w, "{}", ctx());
            }
            "set<text>" => {
                let w = want.as_ref().map(|v| {
                    v.as_set()
                        .unwrap()
                        .iter()
                        .map(|x| Some(x.as_text().unwrap().clone()))
                        .collect::<Vec<_>>()
                });
                assert_eq!(
                    row.get::<_, Option<Vec<Option<String>>>>(idx),
                    w,
                    "{}",
                    ctx()
                );
            }
            "vector<float, 3>" => {
                let got = row.get::<_, Option<Vec<f32>>>(idx);
                let w = want.as_ref().map(|v| match v {
                    CqlValue::Vector(x) => x
                        .iter()
                        .map(|f| match f {
                            CqlValue::Float(f) => *f,
                            o => panic!("{o:?}"),
                        })
                        .collect::<Vec<_>>(),
                    o => panic!("{o:?}"),
                });
                match (got, w) {
                    (Some(g), Some(w)) => assert!(
                        g.len() == w.len() && g.iter().zip(&w).all(|(a, b)| float_eq32(*a, *b)),
                        "{} got {g:?}",
                        ctx()
                    ),
                    (None, None) => {}
                    (g, _) => panic!("{} got {g:?}", ctx()),
                }
            }
            _ => {
                // map, tuple, UDT, nested: jsonb.
                let got = row.get::<_, Option<J>>(idx);
                let w = want.as_ref().map(json_of);
                match (&got, &w) {
                    (Some(g), Some(w)) => assert!(json_eq(g, w), "{} got {g}", ctx()),
                    (None, None) => {}
                    _ => panic!("{} got {got:?}", ctx()),
                }
            }
        }
        idx += 1;
    }
}

async fn assert_tables_equal(ks: &str, table: &str, schema: &str, port: u16) {
    let src = source_rows(ks, table).await;
    let pg = common::pg_connect(port).await;
    let rows = pg
        .query(
            &format!("SELECT {} FROM {schema}.{table}", select_list()),
            &[],
        )
        .await
        .expect("select target");
    assert_eq!(rows.len(), src.len(), "row count of {schema}.{table}");
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let key = (row.get::<_, i64>(0), row.get::<_, i32>(1));
        let want = src
            .get(&key)
            .unwrap_or_else(|| panic!("target row {key:?} is not in the source"));
        assert!(seen.insert(key), "row {key:?} twice");
        assert_row_eq(want, row, key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrates_every_cql_type_value_by_value() {
    common::testbed();
    let ks = common::unique_name("mig");
    common::gen(&ks, "mix", 100_000, 4, 11);
    common::gen(&ks, "wide", 20_000, 10_000, 12);
    let schema = common::unique_name("mig_target");
    let cfg = common::write_config(&ks, &common::testbed_properties(&ks, "mix", &schema));
    let before: Vec<u64> = ["pg1", "pg2", "pg3"]
        .iter()
        .map(|p| common::proxy_upstream_bytes(p))
        .collect();
    let out = common::ferry()
        .args(["migrate", "-c"])
        .arg(&cfg)
        .args([
            "--create-tables",
            "--tables",
            &format!("{ks}.mix,{ks}.wide"),
            "--target-schema",
            &schema,
        ])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("run ferry migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ferry migrate failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("100000"),
        "summary lacks the row count:\n{stdout}"
    );
    assert!(
        !stderr.contains("cassandra\n") && !stdout.contains("password"),
        "a secret leaked"
    );
    // Rows went through all three node endpoints, as toxiproxy (the server side) counted.
    for (i, p) in ["pg1", "pg2", "pg3"].iter().enumerate() {
        let sent = common::proxy_upstream_bytes(p) - before[i];
        assert!(sent > 1_000_000, "only {sent} bytes went through {p}");
        eprintln!("{p}: {sent} bytes from ferry");
    }
    assert_tables_equal(&ks, "mix", &schema, 5434).await;
    assert_tables_equal(&ks, "wide", &schema, 5435).await;
}
