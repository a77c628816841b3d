//! Sample data: a table with the full CQL type mix, written to Cassandra with many requests in
//! flight. Every value is a pure function of `(seed, row index)`, so a test can recompute what the
//! source holds without reading it back.
//!
//! Layout: row `i` lives in partition `pk = i / partition_rows` at clustering key
//! `ck = i % partition_rows`. The first [`EDGE_ROWS`] rows carry edge values (each integer type's
//! min and max, NaN/±Inf/-0.0, empty string vs null, empty blob, non-ASCII text, varint beyond
//! 2^64, a 40+ digit decimal, pre-1970 timestamps and dates, nested frozen collections, a UDT with
//! null fields); the rest are random. Every value is representable in PostgreSQL, so a correct
//! migration rejects nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scylla::client::session::Session;

use crate::schema::cql_ident;
use scylla::value::{
    Counter, CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue,
    CqlVarint,
};

/// How many leading rows hold hand-picked edge values.
pub const EDGE_ROWS: u64 = 5;

/// Column names and CQL types of the sample table, in insert order (partition key, clustering
/// key, static column, then regular columns).
pub const COLUMNS: &[(&str, &str)] = &[
    ("pk", "bigint"),
    ("ck", "int"),
    ("s_static", "text"),
    ("c_ascii", "ascii"),
    ("c_bigint", "bigint"),
    ("c_blob", "blob"),
    ("c_boolean", "boolean"),
    ("c_date", "date"),
    ("c_decimal", "decimal"),
    ("c_double", "double"),
    ("c_duration", "duration"),
    ("c_float", "float"),
    ("c_inet", "inet"),
    ("c_int", "int"),
    ("c_smallint", "smallint"),
    ("c_text", "text"),
    ("c_time", "time"),
    ("c_timestamp", "timestamp"),
    ("c_timeuuid", "timeuuid"),
    ("c_tinyint", "tinyint"),
    ("c_uuid", "uuid"),
    ("c_varchar", "varchar"),
    ("c_varint", "varint"),
    ("c_list", "list<int>"),
    ("c_set", "set<text>"),
    ("c_map", "map<text, int>"),
    ("c_tuple", "tuple<int, text, double>"),
    ("c_udt", "frozen<address>"),
    (
        "c_nested",
        "frozen<map<text, frozen<list<frozen<set<int>>>>>>",
    ),
    ("c_vector", "vector<float, 3>"),
];

/// Which columns a generated table has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    /// Every column of [`COLUMNS`] (about 540 bytes a row as COPY-encoded).
    #[default]
    Full,
    /// The benchmark's row: the [`BENCH_COLUMNS`] subset, about 200 bytes a row as
    /// COPY-encoded, with the same values as the full shape's columns of the same name.
    Bench,
}

/// The columns of [`Shape::Bench`], a subset of [`COLUMNS`] in the same order.
pub const BENCH_COLUMNS: &[&str] = &[
    "pk",
    "ck",
    "c_bigint",
    "c_boolean",
    "c_date",
    "c_decimal",
    "c_double",
    "c_inet",
    "c_int",
    "c_text",
    "c_timestamp",
    "c_uuid",
    "c_list",
    "c_map",
];

impl Shape {
    /// Indexes into [`COLUMNS`] of this shape's columns.
    pub fn column_indexes(self) -> Vec<usize> {
        (0..COLUMNS.len())
            .filter(|&i| self == Shape::Full || BENCH_COLUMNS.contains(&COLUMNS[i].0))
            .collect()
    }

    /// Column names and CQL types of this shape, in insert order.
    pub fn columns(self) -> Vec<(&'static str, &'static str)> {
        self.column_indexes()
            .into_iter()
            .map(|i| COLUMNS[i])
            .collect()
    }
}

/// [`sample_row`] restricted to the columns of `shape`.
pub fn sample_row_shaped(
    seed: u64,
    i: u64,
    partition_rows: u64,
    shape: Shape,
) -> Vec<Option<CqlValue>> {
    let mut full = sample_row(seed, i, partition_rows);
    if shape == Shape::Full {
        return full;
    }
    shape
        .column_indexes()
        .into_iter()
        .map(|c| full[c].take())
        .collect()
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenSpec {
    pub keyspace: String,
    pub table: String,
    pub rows: u64,
    pub seed: u64,
    /// Rows per partition: 1 gives a plain table, 10 000 a wide-partition one.
    pub partition_rows: u64,
    /// Insert requests in flight.
    pub concurrency: usize,
    /// Drop and recreate the table first.
    pub recreate: bool,
    /// Which columns the table has.
    pub shape: Shape,
    /// Replicas per data centre of a keyspace this creates (NetworkTopologyStrategy); empty:
    /// SimpleStrategy with one replica.
    pub replication: Vec<(String, u32)>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct GenReport {
    pub rows: u64,
    pub counter_rows: u64,
    pub elapsed: Duration,
}

impl GenReport {
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Keyspace, UDT and tables (the sample table and a small counter table `<table>_counters`).
pub fn ddl(keyspace: &str, table: &str) -> Vec<String> {
    ddl_shaped(keyspace, table, Shape::Full)
}

/// [`ddl`] for a table of the given shape.
pub fn ddl_shaped(keyspace: &str, table: &str, shape: Shape) -> Vec<String> {
    let cols: Vec<String> = shape
        .columns()
        .iter()
        .map(|(n, t)| {
            if *n == "s_static" {
                format!("{n} {t} static")
            } else {
                format!("{n} {t}")
            }
        })
        .collect();
    // The names come from the user (`--keyspace`, `--table`): quoted where CQL needs it.
    let counters = cql_ident(&format!("{table}_counters"));
    let (keyspace, table) = (cql_ident(keyspace), cql_ident(table));
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        format!(
            "CREATE TYPE IF NOT EXISTS {keyspace}.address \
             (street text, zip int, tags frozen<set<text>>)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.{table} ({}, PRIMARY KEY ((pk), ck)) \
             WITH CLUSTERING ORDER BY (ck DESC)",
            cols.join(", ")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.{counters} (pk bigint PRIMARY KEY, hits counter)"
        ),
    ]
}

#[cfg(test)]
fn insert_cql(keyspace: &str, table: &str) -> String {
    insert_cql_shaped(keyspace, table, Shape::Full)
}

fn insert_cql_shaped(keyspace: &str, table: &str, shape: Shape) -> String {
    let names: Vec<&str> = shape.columns().iter().map(|(n, _)| *n).collect();
    let marks = vec!["?"; names.len()].join(", ");
    format!(
        "INSERT INTO {}.{} ({}) VALUES ({marks})",
        cql_ident(keyspace),
        cql_ident(table),
        names.join(", ")
    )
}

/// The counter table gets one row per partition for the first partitions, up to this many.
pub const COUNTER_PARTITIONS: u64 = 1000;

/// Value of the counter for partition `pk`.
pub fn counter_value(seed: u64, pk: i64) -> i64 {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0xC0FF_EE00 ^ (pk as u64).wrapping_mul(31));
    r.random_range(-1_000_000..1_000_000)
}

/// Creates the schema and writes `spec.rows` rows, `spec.concurrency` requests in flight.
/// `progress` is called with the number of rows just written (for a progress bar).
pub async fn generate(
    session: &Session,
    spec: &GenSpec,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<GenReport> {
    if spec.partition_rows == 0 {
        anyhow::bail!("partition rows must be at least 1");
    }
    if spec.recreate {
        for t in [spec.table.clone(), format!("{}_counters", spec.table)] {
            session
                .query_unpaged(
                    format!(
                        "DROP TABLE IF EXISTS {}.{}",
                        cql_ident(&spec.keyspace),
                        cql_ident(&t)
                    ),
                    &[],
                )
                .await
                .with_context(|| format!("dropping {}.{t}", spec.keyspace))?;
        }
    }
    if !spec.replication.is_empty() {
        let dcs: Vec<String> = spec
            .replication
            .iter()
            .map(|(dc, n)| format!("'{}': {n}", dc.replace('\'', "''")))
            .collect();
        let cql = format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = \
             {{'class': 'NetworkTopologyStrategy', {}}}",
            cql_ident(&spec.keyspace),
            dcs.join(", ")
        );
        session
            .query_unpaged(cql.as_str(), &[])
            .await
            .with_context(|| format!("creating the keyspace: {cql}"))?;
    }
    for stmt in ddl_shaped(&spec.keyspace, &spec.table, spec.shape) {
        session
            .query_unpaged(stmt.as_str(), &[])
            .await
            .with_context(|| format!("creating the sample schema: {stmt}"))?;
    }
    session
        .await_schema_agreement()
        .await
        .context("waiting for schema agreement")?;

    let mut insert = session
        .prepare(insert_cql_shaped(&spec.keyspace, &spec.table, spec.shape))
        .await
        .context("preparing the sample insert")?;
    insert.set_is_idempotent(true);
    let counter = session
        .prepare(format!(
            "UPDATE {}.{} SET hits = hits + ? WHERE pk = ?",
            cql_ident(&spec.keyspace),
            cql_ident(&format!("{}_counters", spec.table))
        ))
        .await
        .context("preparing the counter update")?;

    let start = Instant::now();
    let written = Arc::new(AtomicU64::new(0));
    let insert = &insert;
    let written_ref = &written;
    stream::iter(0..spec.rows)
        .map(|i| async move {
            let mut values = sample_row_shaped(spec.seed, i, spec.partition_rows, spec.shape);
            set_udt_keyspace(&mut values, &spec.keyspace);
            session
                .execute_unpaged(insert, values)
                .await
                .with_context(|| format!("inserting sample row {i}"))?;
            written_ref.fetch_add(1, Ordering::Relaxed);
            progress(1);
            Ok::<_, anyhow::Error>(())
        })
        .buffer_unordered(spec.concurrency.max(1))
        .try_collect::<()>()
        .await?;

    let partitions = spec
        .rows
        .div_ceil(spec.partition_rows)
        .min(COUNTER_PARTITIONS);
    stream::iter(0..partitions)
        .map(|pk| {
            let counter = &counter;
            async move {
                let pk = pk as i64;
                session
                    .execute_unpaged(counter, (Counter(counter_value(spec.seed, pk)), pk))
                    .await
                    .with_context(|| format!("updating counter row {pk}"))
            }
        })
        .buffer_unordered(spec.concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await?;

    Ok(GenReport {
        rows: written.load(Ordering::Relaxed),
        counter_rows: partitions,
        elapsed: start.elapsed(),
    })
}

/// The driver checks a UDT value's keyspace against the column's; rows are generated without one.
fn set_udt_keyspace(values: &mut [Option<CqlValue>], ks: &str) {
    for v in values.iter_mut().flatten() {
        if let CqlValue::UserDefinedType { keyspace, .. } = v {
            *keyspace = ks.to_string();
        }
    }
}

/// The values of row `i`, in [`COLUMNS`] order.
pub fn sample_row(seed: u64, i: u64, partition_rows: u64) -> Vec<Option<CqlValue>> {
    let pk = (i / partition_rows) as i64;
    let ck = (i % partition_rows) as i32;
    let mut v = vec![
        Some(CqlValue::BigInt(pk)),
        Some(CqlValue::Int(ck)),
        Some(CqlValue::Text(format!("static-{pk}"))),
    ];
    if i < EDGE_ROWS {
        v.extend(edge_values(i));
    } else {
        v.extend(random_values(seed, i));
    }
    debug_assert_eq!(v.len(), COLUMNS.len());
    v
}

const MS_PER_DAY: i64 = 86_400_000;
const EPOCH_DAY: u32 = 1 << 31;

fn varint(v: i128) -> CqlValue {
    CqlValue::Varint(CqlVarint::from_signed_bytes_be(minimal_be(v)))
}

fn decimal(unscaled: i128, scale: i32) -> CqlValue {
    CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(
        minimal_be(unscaled),
        scale,
    ))
}

/// A decimal of any size, from its unscaled digits.
fn big_decimal(unscaled: &str, scale: i32) -> CqlValue {
    let n = num_bigint::BigInt::parse_bytes(unscaled.as_bytes(), 10).expect("literal digits");
    CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(
        n.to_signed_bytes_be(),
        scale,
    ))
}

/// Two's-complement big-endian bytes without redundant sign bytes.
fn minimal_be(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn text_set(items: &[&str]) -> CqlValue {
    CqlValue::Set(
        items
            .iter()
            .map(|s| CqlValue::Text(s.to_string()))
            .collect(),
    )
}

fn address(street: Option<&str>, zip: Option<i32>, tags: Option<&[&str]>) -> CqlValue {
    CqlValue::UserDefinedType {
        keyspace: String::new(),
        name: "address".to_string(),
        fields: vec![
            (
                "street".to_string(),
                street.map(|s| CqlValue::Text(s.into())),
            ),
            ("zip".to_string(), zip.map(CqlValue::Int)),
            ("tags".to_string(), tags.map(text_set)),
        ],
    }
}

fn nested(entries: &[(&str, &[&[i32]])]) -> CqlValue {
    CqlValue::Map(
        entries
            .iter()
            .map(|(k, lists)| {
                let l = lists
                    .iter()
                    .map(|s| CqlValue::Set(s.iter().map(|x| CqlValue::Int(*x)).collect()))
                    .collect();
                (CqlValue::Text(k.to_string()), CqlValue::List(l))
            })
            .collect(),
    )
}

/// Hand-picked rows: 0 = minimums, 1 = maximums, 2 = all nulls, 3 = float specials and empty
/// values, 4 = non-ASCII text and deep nesting.
fn edge_values(i: u64) -> Vec<Option<CqlValue>> {
    use CqlValue as V;
    match i {
        0 => vec![
            Some(V::Ascii(String::new())),
            Some(V::BigInt(i64::MIN)),
            Some(V::Blob(vec![])),
            Some(V::Boolean(false)),
            // 4713-11-24 BC would be PostgreSQL's first day; 1000-01-01 is safely inside.
            Some(V::Date(CqlDate(EPOCH_DAY - 354_285))),
            Some(big_decimal(
                "-1234567890123456789012345678901234567890123",
                40,
            )),
            Some(V::Double(f64::MIN)),
            Some(V::Duration(CqlDuration {
                months: i32::MIN + 1,
                days: i32::MIN + 1,
                nanoseconds: -9_000_000_000_000,
            })),
            Some(V::Float(f32::MIN)),
            Some(V::Inet(IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)))),
            Some(V::Int(i32::MIN)),
            Some(V::SmallInt(i16::MIN)),
            Some(V::Text(String::new())),
            Some(V::Time(CqlTime(0))),
            // 1900-01-01T00:00:00.001Z: pre-1970, millisecond precision.
            Some(V::Timestamp(CqlTimestamp(-2_208_988_799_999))),
            Some(V::Timeuuid(CqlTimeuuid::from(uuid::Uuid::from_u128(
                0x0000_0000_0000_1000_8000_0000_0000_0000,
            )))),
            Some(V::TinyInt(i8::MIN)),
            Some(V::Uuid(uuid::Uuid::nil())),
            Some(V::Text(String::new())),
            Some(varint(-(1i128 << 100))),
            Some(V::List(vec![V::Int(i32::MIN)])),
            Some(text_set(&[""])),
            Some(V::Map(vec![(V::Text(String::new()), V::Int(i32::MIN))])),
            Some(V::Tuple(vec![
                Some(V::Int(i32::MIN)),
                Some(V::Text(String::new())),
                Some(V::Double(f64::MIN)),
            ])),
            Some(address(Some(""), Some(i32::MIN), Some(&[""]))),
            Some(nested(&[("", &[&[i32::MIN]])])),
            Some(V::Vector(vec![
                V::Float(f32::MIN),
                V::Float(0.0),
                V::Float(f32::MIN_POSITIVE),
            ])),
        ],
        1 => vec![
            Some(V::Ascii("~".repeat(100))),
            Some(V::BigInt(i64::MAX)),
            Some(V::Blob(vec![0xFF; 1000])),
            Some(V::Boolean(true)),
            Some(V::Date(CqlDate(EPOCH_DAY + 2_932_896))), // 9999-12-31
            Some(big_decimal(
                "98765432109876543210987654321098765432109876543210",
                -5,
            )),
            Some(V::Double(f64::MAX)),
            Some(V::Duration(CqlDuration {
                months: i32::MAX,
                days: i32::MAX,
                nanoseconds: 9_000_000_000_000,
            })),
            Some(V::Float(f32::MAX)),
            Some(V::Inet(IpAddr::V6(Ipv6Addr::new(
                0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
            )))),
            Some(V::Int(i32::MAX)),
            Some(V::SmallInt(i16::MAX)),
            Some(V::Text("z".repeat(3000))),
            Some(V::Time(CqlTime(86_399_999_999_000))),
            Some(V::Timestamp(CqlTimestamp(253_402_300_799_999))), // 9999-12-31T23:59:59.999Z
            Some(V::Timeuuid(CqlTimeuuid::from(uuid::Uuid::from_u128(
                0xffff_ffff_ffff_1fff_bfff_ffff_ffff_ffff,
            )))),
            Some(V::TinyInt(i8::MAX)),
            Some(V::Uuid(uuid::Uuid::max())),
            Some(V::Text("varchar max".into())),
            Some(varint((1i128 << 100) + 12345)),
            Some(V::List(vec![V::Int(i32::MAX), V::Int(0), V::Int(i32::MAX)])),
            Some(text_set(&["a", "b", "c"])),
            Some(V::Map(vec![(V::Text("max".into()), V::Int(i32::MAX))])),
            Some(V::Tuple(vec![
                Some(V::Int(i32::MAX)),
                Some(V::Text("t".into())),
                Some(V::Double(f64::MAX)),
            ])),
            Some(address(
                Some("max street"),
                Some(i32::MAX),
                Some(&["x", "y"]),
            )),
            Some(nested(&[("k", &[&[0, i32::MAX], &[]])])),
            Some(V::Vector(vec![
                V::Float(f32::MAX),
                V::Float(-0.0),
                V::Float(1.5),
            ])),
        ],
        2 => vec![None; COLUMNS.len() - 3],
        3 => vec![
            Some(V::Ascii(" ".into())),
            Some(V::BigInt(0)),
            Some(V::Blob(vec![0])),
            None,
            Some(V::Date(CqlDate(EPOCH_DAY - 1))), // 1969-12-31
            Some(decimal(0, 0)),
            Some(V::Double(f64::NAN)),
            Some(V::Duration(CqlDuration {
                months: 0,
                days: 0,
                nanoseconds: 0,
            })),
            Some(V::Float(f32::NAN)),
            Some(V::Inet(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            Some(V::Int(0)),
            Some(V::SmallInt(0)),
            Some(V::Text("\t\"quoted\"\\ \n newline".into())),
            Some(V::Time(CqlTime(1000))),
            Some(V::Timestamp(CqlTimestamp(-1))),
            None,
            Some(V::TinyInt(0)),
            None,
            None,
            Some(varint(0)),
            None,
            None,
            None,
            Some(V::Tuple(vec![
                None,
                Some(V::Text("only text".into())),
                None,
            ])),
            Some(address(None, None, None)),
            Some(nested(&[])),
            Some(V::Vector(vec![
                V::Float(f32::NAN),
                V::Float(f32::INFINITY),
                V::Float(f32::NEG_INFINITY),
            ])),
        ],
        _ => vec![
            Some(V::Ascii("plain ascii".into())),
            Some(V::BigInt(-1)),
            Some(V::Blob((0u8..=255).collect())),
            Some(V::Boolean(true)),
            Some(V::Date(CqlDate(EPOCH_DAY))),
            Some(decimal(-1, 3)),
            Some(V::Double(-0.0)),
            Some(V::Duration(CqlDuration {
                months: -1,
                days: -2,
                nanoseconds: -3000,
            })),
            Some(V::Float(f32::INFINITY)),
            Some(V::Inet(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 254)))),
            Some(V::Int(-1)),
            Some(V::SmallInt(-1)),
            Some(V::Text("ünïcødé ✓ 日本語 🚀 ελληνικά".into())),
            Some(V::Time(CqlTime(45_296_789_012_000))),
            Some(V::Timestamp(CqlTimestamp(-MS_PER_DAY * 365 * 50 - 7))),
            Some(V::Timeuuid(CqlTimeuuid::from(uuid::Uuid::from_u128(
                0x1c8e_4b2a_0d5e_11ef_9f6c_0242_ac12_0002,
            )))),
            Some(V::TinyInt(-1)),
            Some(V::Uuid(uuid::Uuid::from_u128(
                0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
            ))),
            Some(V::Text("日本".into())),
            Some(varint(i128::from(u64::MAX) + 1)),
            Some(V::List(vec![V::Int(3), V::Int(1), V::Int(2)])),
            Some(text_set(&["ü", "日本", "🚀"])),
            Some(V::Map(vec![
                (V::Text("z".into()), V::Int(7)),
                (V::Text("ключ".into()), V::Int(-5)),
            ])),
            Some(V::Tuple(vec![
                Some(V::Int(-1)),
                Some(V::Text("ü".into())),
                Some(V::Double(f64::NEG_INFINITY)),
            ])),
            Some(address(Some("Straße 1"), None, Some(&["日本"]))),
            Some(nested(&[("a", &[&[1, 2, 3], &[4]]), ("b", &[&[]])])),
            Some(V::Vector(vec![
                V::Float(-0.0),
                V::Float(1e-30),
                V::Float(-1e30),
            ])),
        ],
    }
}

const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's',
    't', 'u', 'v', 'w', 'x', 'y', 'z', 'A', 'B', 'C', 'D', 'E', ' ', ' ', '0', '1', '2', '9', 'é',
    'ü', 'ß', '日', '✓',
];

fn rand_text(r: &mut ChaCha8Rng, min: usize, max: usize) -> String {
    let n = r.random_range(min..=max);
    (0..n)
        .map(|_| ALPHABET[r.random_range(0..ALPHABET.len())])
        .collect()
}

fn rand_ascii(r: &mut ChaCha8Rng, min: usize, max: usize) -> String {
    let n = r.random_range(min..=max);
    (0..n)
        .map(|_| r.random_range(b' '..=b'~') as char)
        .collect()
}

/// A null about one time in `n`.
fn maybe<T>(r: &mut ChaCha8Rng, n: u32, value: impl FnOnce(&mut ChaCha8Rng) -> T) -> Option<T> {
    let v = value(r);
    if r.random_range(0..n) == 0 {
        None
    } else {
        Some(v)
    }
}

fn random_values(seed: u64, i: u64) -> Vec<Option<CqlValue>> {
    use CqlValue as V;
    let mut r = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
    let r = &mut r;
    // 1900-01-01 .. 2100-01-01 in ms, and the same span in days.
    let ts = r.random_range(-2_208_988_800_000i64..4_102_444_800_000);
    let date = EPOCH_DAY as i64 + r.random_range(-25_567i64..47_482);
    let list: Vec<CqlValue> = (0..r.random_range(0..4))
        .map(|_| V::Int(r.random()))
        .collect();
    let set: Vec<CqlValue> = (0..r.random_range(0..3))
        .map(|_| V::Text(rand_text(r, 1, 6)))
        .collect();
    let map: Vec<(CqlValue, CqlValue)> = (0..r.random_range(0..3))
        .map(|k| (V::Text(format!("k{k}")), V::Int(r.random())))
        .collect();
    let v = vec![
        maybe(r, 20, |r| V::Ascii(rand_ascii(r, 0, 12))),
        maybe(r, 20, |r| V::BigInt(r.random())),
        maybe(r, 20, |r| {
            V::Blob((0..r.random_range(0..16)).map(|_| r.random()).collect())
        }),
        maybe(r, 20, |r| V::Boolean(r.random())),
        maybe(r, 20, |_| V::Date(CqlDate(date as u32))),
        maybe(r, 20, |r| {
            decimal(
                r.random_range(-10i128.pow(20)..10i128.pow(20)),
                r.random_range(-3..12),
            )
        }),
        maybe(r, 20, |r| V::Double(r.random_range(-1e12..1e12))),
        maybe(r, 20, |r| {
            // Cassandra requires months, days and nanoseconds to share one sign.
            let sign = if r.random() { 1 } else { -1 };
            V::Duration(CqlDuration {
                months: sign * r.random_range(0..100),
                days: sign * r.random_range(0..1000),
                nanoseconds: i64::from(sign) * r.random_range(0..86_400_000_000i64) * 1000,
            })
        }),
        maybe(r, 20, |r| V::Float(r.random_range(-1e6f32..1e6))),
        maybe(r, 20, |r| {
            if r.random() {
                V::Inet(IpAddr::V4(Ipv4Addr::from(r.random::<u32>())))
            } else {
                V::Inet(IpAddr::V6(Ipv6Addr::from(r.random::<u128>())))
            }
        }),
        maybe(r, 20, |r| V::Int(r.random())),
        maybe(r, 20, |r| V::SmallInt(r.random())),
        maybe(r, 20, |r| V::Text(rand_text(r, 0, 40))),
        maybe(r, 20, |r| {
            V::Time(CqlTime(r.random_range(0..86_400_000_000i64) * 1000))
        }),
        maybe(r, 20, |_| V::Timestamp(CqlTimestamp(ts))),
        maybe(r, 20, |r| {
            V::Timeuuid(CqlTimeuuid::from(uuid::Uuid::from_u128(
                (r.random::<u128>() & !(0xF << 76) & !(0x3 << 62)) | (0x1 << 76) | (0x2 << 62),
            )))
        }),
        maybe(r, 20, |r| V::TinyInt(r.random())),
        maybe(r, 20, |r| V::Uuid(uuid::Uuid::from_u128(r.random()))),
        maybe(r, 20, |r| V::Text(rand_text(r, 0, 20))),
        maybe(r, 20, |r| {
            varint(r.random::<i64>() as i128 * r.random_range(1i128..1_000_000))
        }),
        if list.is_empty() {
            None
        } else {
            Some(V::List(list))
        },
        if set.is_empty() {
            None
        } else {
            Some(V::Set(dedup_sorted(set)))
        },
        if map.is_empty() {
            None
        } else {
            Some(V::Map(map))
        },
        maybe(r, 10, |r| {
            V::Tuple(vec![
                Some(V::Int(r.random())),
                maybe(r, 3, |r| V::Text(rand_text(r, 0, 8))),
                Some(V::Double(r.random())),
            ])
        }),
        maybe(r, 10, |r| {
            address(
                Some(&rand_text(r, 3, 20)),
                maybe(r, 4, |r| r.random_range(10_000..99_999)),
                Some(&["home", "work"][..r.random_range(0..3)]),
            )
        }),
        maybe(r, 5, |r| {
            nested(&[("n", &[&[r.random_range(0..100)], &[]])])
        }),
        maybe(r, 10, |r| {
            V::Vector(vec![
                V::Float(r.random()),
                V::Float(r.random()),
                V::Float(r.random()),
            ])
        }),
    ];
    v
}

/// A CQL set comes back sorted and without duplicates; generate it that way so that what we
/// wrote is what a read returns.
fn dedup_sorted(mut v: Vec<CqlValue>) -> Vec<CqlValue> {
    v.sort_by(|a, b| match (a, b) {
        (CqlValue::Text(x), CqlValue::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => std::cmp::Ordering::Equal,
    });
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_complete() {
        for i in 0..50 {
            let a = sample_row(7, i, 4);
            let b = sample_row(7, i, 4);
            assert_eq!(a.len(), COLUMNS.len(), "row {i}");
            // NaN != NaN, so compare the debug text.
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        assert_ne!(
            format!("{:?}", sample_row(7, 100, 4)),
            format!("{:?}", sample_row(8, 100, 4))
        );
    }

    #[test]
    fn layout_follows_partition_rows() {
        let r = sample_row(1, 10_005, 10_000);
        assert_eq!(r[0], Some(CqlValue::BigInt(1)));
        assert_eq!(r[1], Some(CqlValue::Int(5)));
    }

    #[test]
    fn minimal_be_is_minimal_twos_complement() {
        assert_eq!(minimal_be(0), vec![0]);
        assert_eq!(minimal_be(127), vec![0x7f]);
        assert_eq!(minimal_be(128), vec![0x00, 0x80]);
        assert_eq!(minimal_be(-1), vec![0xff]);
        assert_eq!(minimal_be(-128), vec![0x80]);
        assert_eq!(minimal_be(-129), vec![0xff, 0x7f]);
    }

    #[test]
    fn bench_shape_is_a_subset_with_the_same_values() {
        let idx = Shape::Bench.column_indexes();
        assert_eq!(idx.len(), BENCH_COLUMNS.len());
        for i in [0, 3, 17, 1234] {
            let full = sample_row(7, i, 10);
            let bench = sample_row_shaped(7, i, 10, Shape::Bench);
            let want: Vec<_> = idx.iter().map(|&c| full[c].clone()).collect();
            // Debug text, not ==: edge rows hold NaN.
            assert_eq!(format!("{bench:?}"), format!("{want:?}"), "row {i}");
        }
        let q = insert_cql_shaped("ks", "t", Shape::Bench);
        assert_eq!(q.matches('?').count(), BENCH_COLUMNS.len());
        assert!(!ddl_shaped("ks", "t", Shape::Bench)[2].contains("s_static"));
    }

    #[test]
    fn insert_names_every_column() {
        let q = insert_cql("ks", "t");
        assert_eq!(q.matches('?').count(), COLUMNS.len());
    }

    #[test]
    fn user_given_names_are_quoted() {
        let stmts = ddl("Shop", "select");
        assert!(stmts[0].contains("EXISTS \"Shop\" WITH"), "{}", stmts[0]);
        assert!(stmts[2].contains("\"Shop\".\"select\" ("), "{}", stmts[2]);
        assert!(
            stmts[3].contains("\"Shop\".select_counters ("),
            "{}",
            stmts[3]
        );
        assert!(insert_cql("ks", "token").starts_with("INSERT INTO ks.\"token\" ("));
    }
}
