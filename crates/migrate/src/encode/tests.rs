//! Table-driven edge cases and property tests for the encoder. Values are serialized to CQL wire
//! bytes by a small test-only serializer ([`wire`]) and the PostgreSQL payloads are decoded by
//! `postgres-types`' `FromSql` (an independent implementation of the binary formats) or, for
//! `numeric` and `interval` which it lacks, by the decoders below.

use std::net::IpAddr;

use bigdecimal::BigDecimal;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use num_bigint::BigInt;
use postgres_types::{FromSql, Type};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::cql::{CqlType as T, PgScalar, PgType};

// ---------------------------------------------------------------------------------------------
// Test-only CQL serializer (protocol v4 value encodings).

/// A CQL value of the test model; `Null` is a null cell.
#[derive(Clone, Debug)]
enum V {
    Null,
    Bool(bool),
    Tiny(i8),
    Small(i16),
    Int(i32),
    Big(i64),
    Float(f32),
    Double(f64),
    Text(String),
    Blob(Vec<u8>),
    Uuid(uuid::Uuid),
    Inet(IpAddr),
    Timestamp(i64),
    Date(u32),
    Time(i64),
    Duration(i32, i32, i64),
    Varint(BigInt),
    Decimal(BigInt, i32),
    /// list, set, tuple and UDT bodies: count-prefixed for collections, not for tuples/UDTs.
    List(Vec<V>),
    Map(Vec<(V, V)>),
    Tuple(Vec<V>),
    /// A vector: elements concatenated, with vint lengths unless `fixed`.
    Vector(Vec<V>, bool),
}

fn vint_unsigned(v: u64, out: &mut Vec<u8>) {
    // Cassandra's VIntCoding: n extra bytes announced by n leading ones in the first byte.
    // With n < 8 extra bytes there are 7 * (n + 1) value bits; n = 8 carries a full u64.
    let bits = 64 - v.leading_zeros() as usize;
    let extra = (0..8).find(|&n| bits <= 7 * (n + 1)).unwrap_or(8);
    if extra == 8 {
        out.push(0xff);
        out.extend_from_slice(&v.to_be_bytes());
        return;
    }
    let mut bytes = v.to_be_bytes()[7 - extra..].to_vec();
    bytes[0] |= !(0xffu8 >> extra);
    out.extend_from_slice(&bytes);
}

fn vint_signed(v: i64, out: &mut Vec<u8>) {
    vint_unsigned(((v >> 63) ^ (v << 1)) as u64, out);
}

/// The CQL wire bytes of a value; `None` for null.
fn wire(v: &V) -> Option<Vec<u8>> {
    let cell = |v: &V, out: &mut Vec<u8>| match wire(v) {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(&b);
        }
    };
    Some(match v {
        V::Null => return None,
        V::Bool(b) => vec![u8::from(*b)],
        V::Tiny(x) => x.to_be_bytes().to_vec(),
        V::Small(x) => x.to_be_bytes().to_vec(),
        V::Int(x) => x.to_be_bytes().to_vec(),
        V::Big(x) | V::Timestamp(x) | V::Time(x) => x.to_be_bytes().to_vec(),
        V::Float(x) => x.to_be_bytes().to_vec(),
        V::Double(x) => x.to_be_bytes().to_vec(),
        V::Text(s) => s.as_bytes().to_vec(),
        V::Blob(b) => b.clone(),
        V::Uuid(u) => u.as_bytes().to_vec(),
        V::Inet(IpAddr::V4(a)) => a.octets().to_vec(),
        V::Inet(IpAddr::V6(a)) => a.octets().to_vec(),
        V::Date(d) => d.to_be_bytes().to_vec(),
        V::Duration(m, d, n) => {
            let mut out = Vec::new();
            vint_signed(i64::from(*m), &mut out);
            vint_signed(i64::from(*d), &mut out);
            vint_signed(*n, &mut out);
            out
        }
        V::Varint(i) => i.to_signed_bytes_be(),
        V::Decimal(i, scale) => {
            let mut out = scale.to_be_bytes().to_vec();
            out.extend_from_slice(&i.to_signed_bytes_be());
            out
        }
        V::List(items) => {
            let mut out = (items.len() as i32).to_be_bytes().to_vec();
            items.iter().for_each(|i| cell(i, &mut out));
            out
        }
        V::Map(pairs) => {
            let mut out = (pairs.len() as i32).to_be_bytes().to_vec();
            for (k, v) in pairs {
                cell(k, &mut out);
                cell(v, &mut out);
            }
            out
        }
        V::Tuple(items) => {
            let mut out = Vec::new();
            items.iter().for_each(|i| cell(i, &mut out));
            out
        }
        V::Vector(items, fixed) => {
            let mut out = Vec::new();
            for i in items {
                let b = wire(i).expect("vector elements are never null");
                if !fixed {
                    vint_unsigned(b.len() as u64, &mut out);
                }
                out.extend_from_slice(&b);
            }
            out
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Running the encoder and reading its output.

/// Encodes a value and returns the payload (`None` for a NULL field), checking the framing.
fn encode(ty: &CqlType, v: &V) -> Result<Option<Vec<u8>>, Reject> {
    let cell = wire(v);
    let mut out = BytesMut::from(&b"prefix"[..]);
    let result = encode_field(ty, cell.as_deref(), &mut out);
    if result.is_err() {
        assert_eq!(
            &out[..],
            b"prefix",
            "a reject must leave the buffer untouched"
        );
    }
    result?;
    assert!(out.starts_with(b"prefix"));
    let field = &out[6..];
    let len = i32::from_be_bytes(field[..4].try_into().unwrap());
    if len == -1 {
        assert_eq!(field.len(), 4);
        return Ok(None);
    }
    assert_eq!(
        len as usize,
        field.len() - 4,
        "field length must frame the payload"
    );
    Ok(Some(field[4..].to_vec()))
}

fn payload(ty: &CqlType, v: &V) -> Vec<u8> {
    encode(ty, v)
        .unwrap_or_else(|r| panic!("{ty} {v:?} rejected: {}", r.reason))
        .expect("not null")
}

fn decode<'a, X: FromSql<'a>>(pg: &Type, raw: &'a [u8]) -> X {
    X::from_sql(pg, raw).unwrap_or_else(|e| panic!("{pg} payload does not decode: {e}"))
}

fn reject(ty: &CqlType, v: &V) -> String {
    match encode(ty, v) {
        Ok(p) => panic!("{ty} {v:?} was accepted as {p:?}"),
        Err(r) => r.reason,
    }
}

fn reject_bytes(ty: &CqlType, bytes: &[u8]) -> String {
    let mut out = BytesMut::from(&b"xy"[..]);
    let r = encode_field(ty, Some(bytes), &mut out).expect_err("accepted malformed bytes");
    assert_eq!(&out[..], b"xy");
    r.reason
}

/// PostgreSQL `numeric` binary → (value, display scale), decoded independently of the encoder.
fn decode_numeric(raw: &[u8]) -> (BigDecimal, u16) {
    let u16_at = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
    let ndigits = usize::from(u16_at(0));
    let weight = i64::from(u16_at(2) as i16);
    let sign = u16_at(4);
    let dscale = u16_at(6);
    assert_eq!(raw.len(), 8 + 2 * ndigits);
    let mut n = BigInt::from(0u8);
    for i in 0..ndigits {
        let d = u16_at(8 + 2 * i);
        assert!(d < 10_000, "base-10000 digit out of range");
        n = n * 10_000u32 + d;
    }
    if sign == 0x4000 {
        n = -n;
    } else {
        assert_eq!(sign, 0);
    }
    // The last digit sits at base-10000 position weight - (ndigits - 1).
    let exponent = 4 * (weight - (ndigits as i64 - 1));
    let value = if ndigits == 0 {
        BigDecimal::from(0)
    } else {
        BigDecimal::new(n, -exponent)
    };
    (value, dscale)
}

/// PostgreSQL `interval` binary → (µs, days, months).
fn decode_interval(raw: &[u8]) -> (i64, i32, i32) {
    assert_eq!(raw.len(), 16);
    (
        i64::from_be_bytes(raw[..8].try_into().unwrap()),
        i32::from_be_bytes(raw[8..12].try_into().unwrap()),
        i32::from_be_bytes(raw[12..].try_into().unwrap()),
    )
}

fn jsonb(ty: &CqlType, v: &V) -> Value {
    decode(&Type::JSONB, &payload(ty, v))
}

/// The jsonb text (after the version byte), to check exact numbers.
fn jsonb_text(ty: &CqlType, v: &V) -> String {
    let p = payload(ty, v);
    assert_eq!(p[0], 1, "jsonb version byte");
    String::from_utf8(p[1..].to_vec()).unwrap()
}

fn list(t: CqlType) -> CqlType {
    T::List(Box::new(t))
}
fn set(t: CqlType) -> CqlType {
    T::Set(Box::new(t))
}
fn map(k: CqlType, v: CqlType) -> CqlType {
    T::Map(Box::new(k), Box::new(v))
}
fn vector(t: CqlType, n: u16) -> CqlType {
    T::Vector {
        element: Box::new(t),
        dimensions: n,
    }
}
fn udt(fields: &[(&str, CqlType)]) -> CqlType {
    T::Udt {
        keyspace: "ks".into(),
        name: "address".into(),
        fields: fields
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect(),
    }
}
fn text(s: &str) -> V {
    V::Text(s.into())
}
fn big(s: &str) -> BigInt {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Table-driven edge cases.

#[test]
fn copy_header_and_trailer_are_postgres_signature() {
    let mut out = BytesMut::new();
    copy_header(&mut out);
    copy_trailer(&mut out);
    assert_eq!(&out[..], b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0\xff\xff");
}

#[test]
fn integers_keep_their_extremes() {
    for (ty, v, pg) in [
        (T::TinyInt, V::Tiny(i8::MIN), i64::from(i8::MIN)),
        (T::TinyInt, V::Tiny(i8::MAX), i64::from(i8::MAX)),
        (T::SmallInt, V::Small(i16::MIN), i64::from(i16::MIN)),
        (T::SmallInt, V::Small(i16::MAX), i64::from(i16::MAX)),
        (T::Int, V::Int(i32::MIN), i64::from(i32::MIN)),
        (T::Int, V::Int(i32::MAX), i64::from(i32::MAX)),
        (T::BigInt, V::Big(i64::MIN), i64::MIN),
        (T::BigInt, V::Big(i64::MAX), i64::MAX),
        (T::Counter, V::Big(i64::MIN), i64::MIN),
        (T::Counter, V::Big(-1), -1),
    ] {
        let p = payload(&ty, &v);
        let got = match ty.pg_scalar().unwrap() {
            PgScalar::Int2 => i64::from(decode::<i16>(&Type::INT2, &p)),
            PgScalar::Int4 => i64::from(decode::<i32>(&Type::INT4, &p)),
            PgScalar::Int8 => decode::<i64>(&Type::INT8, &p),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got, pg, "{ty}");
    }
}

#[test]
fn floats_are_bit_exact() {
    for f in [
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::MAX,
    ] {
        let got: f32 = decode(&Type::FLOAT4, &payload(&T::Float, &V::Float(f)));
        assert_eq!(got.to_bits(), f.to_bits());
    }
    for f in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::from_bits(1),
    ] {
        let got: f64 = decode(&Type::FLOAT8, &payload(&T::Double, &V::Double(f)));
        assert_eq!(got.to_bits(), f.to_bits());
    }
}

#[test]
fn empty_text_and_blob_are_values_not_null() {
    assert_eq!(encode(&T::Text, &text("")), Ok(Some(vec![])));
    assert_eq!(encode(&T::Blob, &V::Blob(vec![])), Ok(Some(vec![])));
    assert_eq!(encode(&T::Text, &V::Null), Ok(None));
    assert_eq!(encode(&list(T::Int), &V::Null), Ok(None));
    assert_eq!(encode(&map(T::Int, T::Int), &V::Null), Ok(None));
    let s = "zażółć gęślą jaźń — 日本語 🚀";
    let got: String = decode(&Type::TEXT, &payload(&T::Text, &text(s)));
    assert_eq!(got, s);
}

#[test]
fn text_rejects_nul_and_invalid_utf8() {
    let r = reject(&T::Text, &text("a\0b"));
    assert!(r.contains("U+0000") && r.contains("text"), "{r}");
    let r = reject_bytes(&T::Ascii, &[b'a', 0xff]);
    assert!(r.contains("ascii") && r.contains("UTF-8"), "{r}");
    let r = reject(
        &map(T::Text, T::Text),
        &V::Map(vec![(text("k"), text("\0"))]),
    );
    assert!(r.contains("U+0000") && r.contains("jsonb"), "{r}");
    let r = reject(
        &map(T::Text, T::Int),
        &V::Map(vec![(text("\0"), V::Int(1))]),
    );
    assert!(r.contains("U+0000"), "{r}");
    let r = reject(&list(T::Text), &V::List(vec![text("ok"), text("\0")]));
    assert!(r.starts_with("list<text> element 1:"), "{r}");
}

#[test]
fn legacy_empty_values_of_fixed_types_are_rejected() {
    for ty in [
        T::Int,
        T::BigInt,
        T::SmallInt,
        T::TinyInt,
        T::Boolean,
        T::Float,
        T::Double,
        T::Uuid,
        T::Timestamp,
        T::Date,
        T::Time,
        T::Inet,
        T::Varint,
        T::Decimal,
        T::Duration,
    ] {
        let r = reject_bytes(&ty, &[]);
        assert!(r.contains("empty") && r.contains(&ty.to_string()), "{r}");
    }
}

#[test]
fn malformed_values_name_their_type() {
    for (ty, bytes) in [
        (T::Int, &[1u8, 2, 3][..]),
        (T::BigInt, &[0; 9][..]),
        (T::Inet, &[1, 2, 3, 4, 5][..]),
        (T::Decimal, &[0, 0, 0][..]),
        (T::Duration, &[0x80][..]),
        (T::Time, &i64::MAX.to_be_bytes()[..]),
        (list(T::Int), &[0, 0, 0, 1, 0, 0, 0, 4, 1][..]),
        (list(T::Int), &[0x7f, 0, 0, 0][..]),
        (map(T::Int, T::Int), &[0, 0, 0, 0, 9][..]),
        (vector(T::Float, 2), &[0; 7][..]),
        (vector(T::Text, 1), &[0x05, b'a'][..]),
    ] {
        let r = reject_bytes(&ty, bytes);
        assert!(r.contains(&ty.to_string()), "{ty}: {r}");
    }
}

#[test]
fn booleans_inets_uuids() {
    assert_eq!(payload(&T::Boolean, &V::Bool(true)), [1]);
    assert_eq!(payload(&T::Boolean, &V::Bool(false)), [0]);
    // Any non-zero byte is true, as in Cassandra.
    let mut out = BytesMut::new();
    encode_field(&T::Boolean, Some(&[2]), &mut out).unwrap();
    assert_eq!(&out[..], [0, 0, 0, 1, 1]);
    let v4: IpAddr = "192.168.1.20".parse().unwrap();
    assert_eq!(
        payload(&T::Inet, &V::Inet(v4)),
        [2, 32, 0, 4, 192, 168, 1, 20]
    );
    let v6: IpAddr = "2001:db8::ff00:42:8329".parse().unwrap();
    let got: IpAddr = decode(&Type::INET, &payload(&T::Inet, &V::Inet(v6)));
    assert_eq!(got, v6);
    let u = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let got: uuid::Uuid = decode(&Type::UUID, &payload(&T::Timeuuid, &V::Uuid(u)));
    assert_eq!(got, u);
}

#[test]
fn timestamps_before_1970_and_out_of_range() {
    let at = |ms: i64| -> DateTime<Utc> {
        decode(
            &Type::TIMESTAMPTZ,
            &payload(&T::Timestamp, &V::Timestamp(ms)),
        )
    };
    assert_eq!(at(-1).to_rfc3339(), "1969-12-31T23:59:59.999+00:00");
    assert_eq!(
        at(-86_400_000 * 365).to_rfc3339(),
        "1969-01-01T00:00:00+00:00"
    );
    assert_eq!(at(0).timestamp_millis(), 0);
    // PostgreSQL's first instant is 4714-11-24 00:00 BC (year -4713 in ISO numbering).
    let pg_min = NaiveDate::from_ymd_opt(-4713, 11, 24)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    assert_eq!(at(pg_min).timestamp_millis(), pg_min);
    let r = reject(&T::Timestamp, &V::Timestamp(pg_min - 1));
    assert!(r.contains("outside PostgreSQL's timestamptz range"), "{r}");
    assert!(r.contains("-4713-11-23T23:59:59.999Z"), "{r}");
    // The last instant is 294276-12-31 23:59:59.999999; chrono cannot go there, so compute it.
    let pg_end_ms = 9_223_371_331_200_000_000 / 1000 + 946_684_800_000;
    assert!(encode(&T::Timestamp, &V::Timestamp(pg_end_ms - 1)).is_ok());
    reject(&T::Timestamp, &V::Timestamp(pg_end_ms));
    reject(&T::Timestamp, &V::Timestamp(i64::MAX));
    reject(&T::Timestamp, &V::Timestamp(i64::MIN));
}

#[test]
fn dates_in_and_out_of_range() {
    let cql = |d: NaiveDate| {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        ((1i64 << 31) + (d - epoch).num_days()) as u32
    };
    for d in [
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(1969, 12, 31).unwrap(),
        NaiveDate::from_ymd_opt(2000, 2, 29).unwrap(),
        NaiveDate::from_ymd_opt(-4713, 11, 24).unwrap(),
        NaiveDate::from_ymd_opt(262_142, 12, 31).unwrap(),
    ] {
        let got: NaiveDate = decode(&Type::DATE, &payload(&T::Date, &V::Date(cql(d))));
        assert_eq!(got, d);
    }
    let r = reject(
        &T::Date,
        &V::Date(cql(NaiveDate::from_ymd_opt(-4713, 11, 23).unwrap())),
    );
    assert!(r.contains("-4713-11-23") && r.contains("date range"), "{r}");
    reject(&T::Date, &V::Date(0));
    reject(&T::Date, &V::Date(u32::MAX));
}

#[test]
fn time_and_duration_refuse_to_lose_nanoseconds() {
    let t: NaiveTime = decode(
        &Type::TIME,
        &payload(&T::Time, &V::Time(13 * 3_600_000_000_000 + 123_456_000)),
    );
    assert_eq!(t, NaiveTime::from_hms_micro_opt(13, 0, 0, 123_456).unwrap());
    let r = reject(&T::Time, &V::Time(1));
    assert!(
        r.contains("00:00:00.000000001") && r.contains("sub-microsecond"),
        "{r}"
    );
    assert_eq!(
        decode_interval(&payload(&T::Duration, &V::Duration(-14, -3, -5_000))),
        (-5, -3, -14)
    );
    let r = reject(&T::Duration, &V::Duration(1, 2, 3_000_000_001));
    assert!(r.contains("1 mon 2 days 00:00:03.000000001"), "{r}");
    // Inside JSON the digits are kept, as text.
    let ty = list(list(T::Time));
    let v = V::List(vec![V::List(vec![V::Time(1), V::Time(86_399_999_999_999)])]);
    assert_eq!(
        jsonb(&ty, &v),
        json!([["00:00:00.000000001", "23:59:59.999999999"]])
    );
}

#[test]
fn varints_and_decimals_are_exact() {
    for (ty, v, expect, dscale) in [
        (
            T::Varint,
            V::Varint(big("18446744073709551616")),
            "18446744073709551616",
            0,
        ),
        (
            T::Varint,
            V::Varint(big("-18446744073709551617")),
            "-18446744073709551617",
            0,
        ),
        (T::Varint, V::Varint(big("0")), "0", 0),
        (
            T::Varint,
            V::Varint(big("-340282366920938463463374607431768211457")),
            "-340282366920938463463374607431768211457",
            0,
        ),
        (
            T::Decimal,
            V::Decimal(big("1234567890123456789012345678901234567890123"), 21),
            "1234567890123456789012.345678901234567890123",
            21,
        ),
        (T::Decimal, V::Decimal(big("-5"), -40), "-5E+40", 0),
        (T::Decimal, V::Decimal(big("150"), 2), "1.50", 2),
        (T::Decimal, V::Decimal(big("0"), 7), "0", 7),
        (T::Decimal, V::Decimal(big("-1"), 30), "-1E-30", 30),
    ] {
        let (got, got_dscale) = decode_numeric(&payload(&ty, &v));
        assert_eq!(got, expect.parse::<BigDecimal>().unwrap(), "{v:?}");
        assert_eq!(got_dscale, dscale, "{v:?}");
    }
    let r = reject(&T::Decimal, &V::Decimal(big("1"), 20_000));
    assert!(r.contains("decimal") && r.contains("16383"), "{r}");
    reject(&T::Decimal, &V::Decimal(big("1"), -200_000));
    reject(&T::Varint, &V::Varint(BigInt::from(1u8) << 500_000u32));
}

#[test]
fn lists_and_sets_become_arrays() {
    let ints = V::List(vec![V::Int(1), V::Null, V::Int(i32::MIN)]);
    let got: Vec<Option<i32>> = decode(&Type::INT4_ARRAY, &payload(&list(T::Int), &ints));
    assert_eq!(got, [Some(1), None, Some(i32::MIN)]);
    let tiny = V::List(vec![V::Tiny(-128), V::Tiny(5)]);
    let got: Vec<i16> = decode(&Type::INT2_ARRAY, &payload(&set(T::TinyInt), &tiny));
    assert_eq!(got, [-128, 5]);
    let empty = payload(&set(T::Text), &V::List(vec![]));
    assert_eq!(empty, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25]);
    let got: Vec<String> = decode(&Type::TEXT_ARRAY, &empty);
    assert!(got.is_empty());
    let got: Vec<f32> = decode(
        &Type::FLOAT4_ARRAY,
        &payload(
            &vector(T::Float, 3),
            &V::Vector(
                vec![V::Float(1.5), V::Float(-0.0), V::Float(f32::NAN)],
                true,
            ),
        ),
    );
    assert_eq!(got[..2], [1.5, -0.0]);
    assert!(got[2].is_nan());
    let got: Vec<String> = decode(
        &Type::TEXT_ARRAY,
        &payload(
            &vector(T::Text, 2),
            &V::Vector(vec![text("a"), text(&"é".repeat(100))], false),
        ),
    );
    assert_eq!(got, ["a".to_string(), "é".repeat(100)]);
}

#[test]
fn composites_become_documented_json() {
    // Nested frozen collections.
    let ty = list(set(T::Int));
    let v = V::List(vec![V::List(vec![V::Int(1), V::Int(2)]), V::List(vec![])]);
    assert_eq!(jsonb(&ty, &v), json!([[1, 2], []]));
    assert_eq!(jsonb_text(&ty, &v), "[[1,2],[]]");
    let ty = map(T::Text, list(T::Double));
    let v = V::Map(vec![(
        text("a\"b"),
        V::List(vec![
            V::Double(0.1),
            V::Double(f64::NAN),
            V::Double(f64::NEG_INFINITY),
        ]),
    )]);
    assert_eq!(jsonb(&ty, &v), json!({"a\"b": [0.1, "NaN", "-Infinity"]}));
    // Keys of every kind become strings.
    let ty = map(T::Int, T::Boolean);
    let v = V::Map(vec![(V::Int(-3), V::Bool(true)), (V::Int(7), V::Null)]);
    assert_eq!(jsonb(&ty, &v), json!({"-3": true, "7": null}));
    let ty = map(list(T::Int), T::Text);
    let v = V::Map(vec![(V::List(vec![V::Int(1), V::Int(2)]), text("x"))]);
    assert_eq!(jsonb(&ty, &v), json!({"[1,2]": "x"}));
    let ty = map(T::Float, T::Int);
    let v = V::Map(vec![
        (V::Float(f32::NAN), V::Int(1)),
        (V::Float(0.1), V::Int(2)),
    ]);
    assert_eq!(jsonb(&ty, &v), json!({"NaN": 1, "0.1": 2}));
    let ty = map(T::Timestamp, T::Blob);
    let v = V::Map(vec![(V::Timestamp(-1), V::Blob(vec![0, 0xab]))]);
    assert_eq!(
        jsonb(&ty, &v),
        json!({"1969-12-31T23:59:59.999Z": "\\x00ab"})
    );
    // Tuples: an array, null for null or missing components.
    let ty = T::Tuple(vec![T::Int, T::Text, T::Uuid]);
    let v = V::Tuple(vec![V::Int(1), V::Null]);
    assert_eq!(jsonb(&ty, &v), json!([1, null, null]));
    // A UDT with a null field and a field missing at the end.
    let ty = udt(&[
        ("street", T::Text),
        ("zip", T::Int),
        ("since", T::Date),
        ("tags", set(T::Text)),
    ]);
    let v = V::Tuple(vec![text("Main St"), V::Null, V::Date(1 << 31)]);
    assert_eq!(
        jsonb(&ty, &v),
        json!({"street": "Main St", "zip": null, "since": "1970-01-01", "tags": null})
    );
    // Scalars in JSON use PostgreSQL's text forms.
    let ty = T::Tuple(vec![T::Inet, T::Duration, T::Time, T::Timeuuid, T::TinyInt]);
    let v = V::Tuple(vec![
        V::Inet("::ffff:1.2.3.4".parse().unwrap()),
        V::Duration(14, 3, 14_706_789_000_000),
        V::Time(45_000_000_000_000),
        V::Uuid(uuid::Uuid::from_u128(0xabcd)),
        V::Tiny(-1),
    ]);
    assert_eq!(
        jsonb(&ty, &v),
        json!([
            "::ffff:1.2.3.4",
            "1 year 2 mons 3 days 04:05:06.789",
            "12:30:00",
            "00000000-0000-0000-0000-00000000abcd",
            -1
        ])
    );
    // vector of a non-scalar.
    let ty = vector(list(T::Int), 2);
    let v = V::Vector(vec![V::List(vec![V::Int(1)]), V::List(vec![])], false);
    assert_eq!(jsonb(&ty, &v), json!([[1], []]));
}

#[test]
fn json_numbers_are_exact_in_jsonb_and_strings_only_where_value_would_round() {
    let ty = map(T::Varint, T::Decimal);
    let v = V::Map(vec![(
        V::Varint(big("-123456789012345678901234567890")),
        V::Decimal(big("123456789012345678901234567890123456789012345"), 40),
    )]);
    assert_eq!(
        jsonb_text(&ty, &v),
        r#"{"-123456789012345678901234567890":12345.6789012345678901234567890123456789012345}"#
    );
    let ty = T::Tuple(vec![T::Decimal, T::Decimal, T::Float]);
    let v = V::Tuple(vec![
        V::Decimal(big("150"), 2),
        V::Decimal(big("12"), -3),
        V::Float(1e30),
    ]);
    assert_eq!(jsonb_text(&ty, &v), "[1.50,12000,1e30]");
    // serde_json::Value cannot hold 2^64 or 40 significant digits: strings, exact.
    let cases = [
        (
            T::Varint,
            V::Varint(big("18446744073709551615")),
            json!(18446744073709551615u64),
        ),
        (
            T::Varint,
            V::Varint(big("18446744073709551616")),
            json!("18446744073709551616"),
        ),
        (
            T::Varint,
            V::Varint(big("-9223372036854775808")),
            json!(i64::MIN),
        ),
        (T::Decimal, V::Decimal(big("15"), 1), json!(1.5)),
        (
            T::Decimal,
            V::Decimal(big("1234567890123456789012345678901234567890"), 2),
            json!("12345678901234567890123456789012345678.90"),
        ),
        (T::Double, V::Double(f64::INFINITY), json!("Infinity")),
        (T::Float, V::Float(0.1), json!(0.1)),
        (T::Blob, V::Blob(vec![1, 0xfe]), json!("\\x01fe")),
        (T::Text, text(""), json!("")),
        (T::Int, V::Null, Value::Null),
    ];
    for (ty, v, expect) in cases {
        assert_eq!(cql_to_json(&ty, wire(&v).as_deref()), Ok(expect), "{v:?}");
    }
    assert!(cql_to_json(&T::Text, Some(b"\0")).is_err());
}

// ---------------------------------------------------------------------------------------------
// Property tests: every encoder against an independent decoder.

fn framed_ok(ty: &CqlType, bytes: &[u8]) -> Result<(), Reject> {
    let mut out = BytesMut::from(&b"keep"[..]);
    let r = encode_field(ty, Some(bytes), &mut out);
    match &r {
        Err(_) => assert_eq!(&out[..], b"keep"),
        Ok(()) => {
            let len = i32::from_be_bytes(out[4..8].try_into().unwrap());
            assert_eq!(len as usize, out.len() - 8);
        }
    }
    r
}

fn arb_scalar_type() -> impl Strategy<Value = CqlType> {
    prop_oneof![
        Just(T::Ascii),
        Just(T::BigInt),
        Just(T::Blob),
        Just(T::Boolean),
        Just(T::Date),
        Just(T::Decimal),
        Just(T::Double),
        Just(T::Duration),
        Just(T::Float),
        Just(T::Inet),
        Just(T::Int),
        Just(T::SmallInt),
        Just(T::Text),
        Just(T::Time),
        Just(T::Timestamp),
        Just(T::TinyInt),
        Just(T::Uuid),
        Just(T::Varint),
    ]
}

/// Types CQL allows as map keys (everything but duration; frozen collections too).
fn arb_key_type() -> impl Strategy<Value = CqlType> {
    prop_oneof![
        4 => arb_scalar_type().prop_filter("duration is no key", |t| *t != T::Duration),
        1 => prop_oneof![Just(T::Int), Just(T::Float), Just(T::Decimal), Just(T::Text)]
            .prop_map(list),
    ]
}

fn arb_type() -> impl Strategy<Value = CqlType> {
    arb_scalar_type().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(list),
            inner.clone().prop_map(set),
            (arb_key_type(), inner.clone()).prop_map(|(k, v)| map(k, v)),
            prop::collection::vec(inner.clone(), 1..4).prop_map(T::Tuple),
            (inner.clone(), 1..4u16).prop_map(|(e, n)| vector(e, n)),
            prop::collection::vec(inner, 1..3).prop_map(|ts| {
                let fields: Vec<(String, CqlType)> = ts
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (format!("f{i}"), t))
                    .collect();
                T::Udt {
                    keyspace: "ks".into(),
                    name: "u".into(),
                    fields,
                }
            }),
        ]
    })
}

/// A valid value of a scalar type (within PostgreSQL's ranges).
fn arb_value_of(ty: &CqlType) -> BoxedStrategy<V> {
    match ty {
        T::Ascii | T::Text => "[^\0]{0,12}".prop_map(V::Text).boxed(),
        T::Blob => prop::collection::vec(any::<u8>(), 0..8)
            .prop_map(V::Blob)
            .boxed(),
        T::Boolean => any::<bool>().prop_map(V::Bool).boxed(),
        T::TinyInt => any::<i8>().prop_map(V::Tiny).boxed(),
        T::SmallInt => any::<i16>().prop_map(V::Small).boxed(),
        T::Int => any::<i32>().prop_map(V::Int).boxed(),
        T::BigInt | T::Counter => any::<i64>().prop_map(V::Big).boxed(),
        T::Float => any::<u32>()
            .prop_map(|b| V::Float(f32::from_bits(b)))
            .boxed(),
        T::Double => any::<u64>()
            .prop_map(|b| V::Double(f64::from_bits(b)))
            .boxed(),
        T::Uuid | T::Timeuuid => any::<u128>()
            .prop_map(|u| V::Uuid(uuid::Uuid::from_u128(u)))
            .boxed(),
        T::Inet => any::<IpAddr>().prop_map(V::Inet).boxed(),
        T::Timestamp => (-200_000_000_000_000i64..8_000_000_000_000_000)
            .prop_map(V::Timestamp)
            .boxed(),
        // From PostgreSQL's first date to chrono's last year.
        T::Date => (2_145_043_060u32..2_237_483_648).prop_map(V::Date).boxed(),
        T::Time => (0..86_400_000_000i64)
            .prop_map(|us| V::Time(us * 1000))
            .boxed(),
        T::Duration => (
            any::<i32>(),
            any::<i32>(),
            -(i64::MAX / 1000)..i64::MAX / 1000,
        )
            .prop_map(|(m, d, us)| V::Duration(m, d, us * 1000))
            .boxed(),
        T::Varint => prop::collection::vec(any::<u8>(), 1..24)
            .prop_map(|b| V::Varint(BigInt::from_signed_bytes_be(&b)))
            .boxed(),
        T::Decimal => (prop::collection::vec(any::<u8>(), 1..24), -60..60i32)
            .prop_map(|(b, s)| V::Decimal(BigInt::from_signed_bytes_be(&b), s))
            .boxed(),
        other => panic!("not a scalar: {other}"),
    }
}

/// A valid value of any type, nulls included where CQL allows them.
fn arb_value(ty: &CqlType) -> BoxedStrategy<V> {
    let nullable = |s: BoxedStrategy<V>| prop_oneof![1 => Just(V::Null), 4 => s].boxed();
    match ty {
        T::List(e) | T::Set(e) => prop::collection::vec(nullable(arb_value(e)), 0..4)
            .prop_map(V::List)
            .boxed(),
        T::Map(k, v) => prop::collection::vec((arb_value(k), nullable(arb_value(v))), 0..4)
            .prop_map(|mut pairs| {
                // CQL map keys are unique.
                let mut seen = std::collections::HashSet::new();
                pairs.retain(|(k, _)| seen.insert(wire(k)));
                V::Map(pairs)
            })
            .boxed(),
        T::Tuple(ts) => ts
            .iter()
            .map(|t| nullable(arb_value(t)))
            .collect::<Vec<_>>()
            .prop_map(V::Tuple)
            .boxed(),
        T::Udt { fields, .. } => fields
            .iter()
            .map(|(_, t)| nullable(arb_value(t)))
            .collect::<Vec<_>>()
            .prop_map(V::Tuple)
            .boxed(),
        T::Vector {
            element,
            dimensions,
        } => {
            let fixed = vector_fixed_size(element).is_some();
            prop::collection::vec(arb_value(element), usize::from(*dimensions))
                .prop_map(move |items| V::Vector(items, fixed))
                .boxed()
        }
        scalar => arb_value_of(scalar),
    }
}

/// The JSON the module docs promise for a model value, built without the encoder.
fn expected_json(ty: &CqlType, v: &V) -> Value {
    // Scalar keys by their exact text; composite keys as compact JSON (compared leniently).
    let key = |t: &CqlType, k: &V| match (k, expected_json(t, k)) {
        (V::Varint(i), _) => i.to_string(),
        (V::Decimal(i, s), _) => BigDecimal::new(i.clone(), i64::from(*s)).to_plain_string(),
        (V::Float(f), Value::Number(_)) => format!("{f:?}"),
        (V::Double(f), Value::Number(_)) => format!("{f:?}"),
        (_, Value::String(s)) => s,
        (_, other) => other.to_string(),
    };
    let float = |f: f64, shortest: String| {
        if f.is_nan() {
            json!("NaN")
        } else if f.is_infinite() {
            json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            serde_json::from_str(&shortest).unwrap()
        }
    };
    match (ty, v) {
        (_, V::Null) => Value::Null,
        (_, V::Bool(b)) => json!(b),
        (_, V::Tiny(x)) => json!(x),
        (_, V::Small(x)) => json!(x),
        (_, V::Int(x)) => json!(x),
        (_, V::Big(x)) => json!(x),
        (_, V::Float(f)) => float(f64::from(*f), format!("{f:?}")),
        (_, V::Double(f)) => float(*f, format!("{f:?}")),
        (_, V::Text(s)) => json!(s),
        (_, V::Blob(b)) => json!(format!(
            "\\x{}",
            b.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )),
        (_, V::Uuid(u)) => json!(u.to_string()),
        (_, V::Inet(a)) => json!(a.to_string()),
        (_, V::Timestamp(ms)) => json!(DateTime::<Utc>::from_timestamp_millis(*ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()),
        (_, V::Date(d)) => json!((NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + TimeDelta::days(i64::from(*d) - (1 << 31)))
        .format("%Y-%m-%d")
        .to_string()),
        (_, V::Time(ns)) => {
            // chrono prints 0, 3, 6 or 9 digits; PostgreSQL drops trailing zeros.
            let t = NaiveTime::from_num_seconds_from_midnight_opt(
                (ns / 1_000_000_000) as u32,
                (ns % 1_000_000_000) as u32,
            )
            .unwrap()
            .format("%H:%M:%S%.f")
            .to_string();
            let t = if t.contains('.') {
                t.trim_end_matches('0').trim_end_matches('.')
            } else {
                &t
            };
            json!(t)
        }
        // The interval text itself is checked by table tests; here only its presence.
        (_, V::Duration(..)) => Value::String(String::new()),
        (_, V::Varint(i)) => serde_json::from_str(&i.to_string()).unwrap(),
        (_, V::Decimal(i, s)) => {
            let d = BigDecimal::new(i.clone(), i64::from(*s));
            serde_json::from_str(&d.to_plain_string()).unwrap()
        }
        (T::List(e) | T::Set(e), V::List(items)) => {
            Value::Array(items.iter().map(|i| expected_json(e, i)).collect())
        }
        (T::Vector { element, .. }, V::Vector(items, _)) => {
            Value::Array(items.iter().map(|i| expected_json(element, i)).collect())
        }
        (T::Map(kt, vt), V::Map(pairs)) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (key(kt, k), expected_json(vt, v)))
                .collect(),
        ),
        (T::Tuple(ts), V::Tuple(items)) => Value::Array(
            ts.iter()
                .zip(items)
                .map(|(t, i)| expected_json(t, i))
                .collect(),
        ),
        (T::Udt { fields, .. }, V::Tuple(items)) => Value::Object(
            fields
                .iter()
                .zip(items)
                .map(|((n, t), i)| (n.clone(), expected_json(t, i)))
                .collect(),
        ),
        (t, v) => panic!("model mismatch: {t} {v:?}"),
    }
}

/// Compares JSON, treating the expected empty string as "any string" (durations) and numbers by
/// value (serde_json parses big numbers as f64 on both sides, which is fine for a comparison of
/// shape; exact digits are covered by the table tests).
fn json_matches(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::String(_), Value::String(w)) if w.is_empty() => true,
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(g, w)| json_matches(g, w))
        }
        (Value::Object(g), Value::Object(w)) => {
            g.len() == w.len()
                && w.iter().all(|(wk, w)| {
                    g.iter()
                        .any(|(gk, g)| keys_match(gk, wk) && json_matches(g, w))
                })
        }
        (Value::Number(g), Value::Number(w)) => g.as_f64() == w.as_f64(),
        // cql_to_json's exact-digit strings for numbers a Value cannot hold.
        (Value::String(g), Value::Number(w)) => g.parse::<f64>().ok() == w.as_f64(),
        (g, w) => g == w,
    }
}

/// Keys match exactly, or as JSON texts that match (composite keys, numbers the model renders
/// through f64).
fn keys_match(got: &str, want: &str) -> bool {
    got == want
        || match (
            serde_json::from_str::<Value>(got),
            serde_json::from_str::<Value>(want),
        ) {
            (Ok(g), Ok(w)) => json_matches(&g, &w),
            _ => false,
        }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_integers_round_trip(a: i8, b: i16, c: i32, d: i64) {
        prop_assert_eq!(decode::<i16>(&Type::INT2, &payload(&T::TinyInt, &V::Tiny(a))), i16::from(a));
        prop_assert_eq!(decode::<i16>(&Type::INT2, &payload(&T::SmallInt, &V::Small(b))), b);
        prop_assert_eq!(decode::<i32>(&Type::INT4, &payload(&T::Int, &V::Int(c))), c);
        prop_assert_eq!(decode::<i64>(&Type::INT8, &payload(&T::BigInt, &V::Big(d))), d);
        prop_assert_eq!(decode::<i64>(&Type::INT8, &payload(&T::Counter, &V::Big(d))), d);
    }

    #[test]
    fn prop_floats_round_trip_bit_exact(a: u32, b: u64) {
        let f = f32::from_bits(a);
        let d = f64::from_bits(b);
        prop_assert_eq!(decode::<f32>(&Type::FLOAT4, &payload(&T::Float, &V::Float(f))).to_bits(), a);
        prop_assert_eq!(decode::<f64>(&Type::FLOAT8, &payload(&T::Double, &V::Double(d))).to_bits(), b);
    }

    #[test]
    fn prop_text_blob_bool_uuid_inet_round_trip(
        s in any::<String>(), blob: Vec<u8>, byte: u8, u: u128, ip: IpAddr,
    ) {
        if s.contains('\0') {
            let r = reject(&T::Text, &V::Text(s));
            prop_assert!(r.contains("U+0000"));
        } else {
            prop_assert_eq!(decode::<String>(&Type::TEXT, &payload(&T::Text, &V::Text(s.clone()))), s);
        }
        prop_assert_eq!(decode::<Vec<u8>>(&Type::BYTEA, &payload(&T::Blob, &V::Blob(blob.clone()))), blob);
        let mut out = BytesMut::new();
        encode_field(&T::Boolean, Some(&[byte]), &mut out).unwrap();
        prop_assert_eq!(decode::<bool>(&Type::BOOL, &out[4..]), byte != 0);
        let u = uuid::Uuid::from_u128(u);
        prop_assert_eq!(decode::<uuid::Uuid>(&Type::UUID, &payload(&T::Uuid, &V::Uuid(u))), u);
        prop_assert_eq!(decode::<IpAddr>(&Type::INET, &payload(&T::Inet, &V::Inet(ip))), ip);
    }

    #[test]
    fn prop_timestamps_round_trip_or_reject(ms in any::<i64>(), near in -8_210_266_876_800_000i64..8_210_266_876_800_000) {
        // `near` spans chrono's whole range (years -262143..262142), inside PostgreSQL's.
        for ms in [ms, near] {
            match DateTime::<Utc>::from_timestamp_millis(ms) {
                Some(expect) if expect.naive_utc() >= NaiveDate::from_ymd_opt(-4713, 11, 24).unwrap().and_hms_opt(0, 0, 0).unwrap() => {
                    let got: DateTime<Utc> = decode(&Type::TIMESTAMPTZ, &payload(&T::Timestamp, &V::Timestamp(ms)));
                    prop_assert_eq!(got, expect);
                }
                Some(_) => { reject(&T::Timestamp, &V::Timestamp(ms)); }
                // Beyond chrono: PostgreSQL's range ends at 294276 AD, chrono's at 262142.
                None => {
                    let in_pg = (-210_866_803_200_000i64..9_224_318_016_000_000).contains(&ms);
                    prop_assert_eq!(encode(&T::Timestamp, &V::Timestamp(ms)).is_ok(), in_pg);
                }
            }
        }
    }

    #[test]
    fn prop_dates_round_trip_or_reject(d: u32) {
        let days = i64::from(d) - (1 << 31);
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let pg_min = NaiveDate::from_ymd_opt(-4713, 11, 24).unwrap();
        match epoch.checked_add_signed(TimeDelta::days(days)) {
            Some(expect) if expect >= pg_min => {
                prop_assert_eq!(decode::<NaiveDate>(&Type::DATE, &payload(&T::Date, &V::Date(d))), expect);
            }
            Some(_) => { reject(&T::Date, &V::Date(d)); }
            None => {
                // Beyond chrono's years; PostgreSQL's dates end at 5874897-12-31.
                let days_to_end = 2_147_483_494i64 - 2_440_588;
                prop_assert_eq!(encode(&T::Date, &V::Date(d)).is_ok(), days > 0 && days < days_to_end);
            }
        }
    }

    #[test]
    fn prop_times_round_trip_or_reject(ns in 0..86_400_000_000_000i64) {
        if ns % 1000 == 0 {
            let expect = NaiveTime::from_num_seconds_from_midnight_opt(
                (ns / 1_000_000_000) as u32, (ns % 1_000_000_000) as u32).unwrap();
            prop_assert_eq!(decode::<NaiveTime>(&Type::TIME, &payload(&T::Time, &V::Time(ns))), expect);
        } else {
            prop_assert!(reject(&T::Time, &V::Time(ns)).contains("sub-microsecond"));
        }
    }

    #[test]
    fn prop_durations_round_trip_or_reject(m: i32, d: i32, ns: i64) {
        let v = V::Duration(m, d, ns);
        if ns % 1000 == 0 {
            prop_assert_eq!(decode_interval(&payload(&T::Duration, &v)), (ns / 1000, d, m));
        } else {
            prop_assert!(reject(&T::Duration, &v).contains("sub-microsecond"));
        }
    }

    #[test]
    fn prop_varints_are_exact(bytes in prop::collection::vec(any::<u8>(), 1..80)) {
        let i = BigInt::from_signed_bytes_be(&bytes);
        // Also feed the raw (possibly non-minimal) bytes, as a driver could.
        let mut out = BytesMut::new();
        encode_field(&T::Varint, Some(&bytes), &mut out).unwrap();
        let (got, dscale) = decode_numeric(&out[4..]);
        prop_assert_eq!(got, BigDecimal::from(i));
        prop_assert_eq!(dscale, 0);
    }

    #[test]
    fn prop_decimals_are_exact(bytes in prop::collection::vec(any::<u8>(), 1..40), scale in -5000..5000i32) {
        let i = BigInt::from_signed_bytes_be(&bytes);
        let (got, dscale) = decode_numeric(&payload(&T::Decimal, &V::Decimal(i.clone(), scale)));
        let want = BigDecimal::new(i, i64::from(scale));
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(i64::from(dscale), i64::from(scale.max(0)));
        // dscale shows every digit: PostgreSQL would silently round digits beyond it.
        prop_assert_eq!(got.with_scale(i64::from(dscale)), want);
    }

    #[test]
    fn prop_arrays_round_trip(
        ints in prop::collection::vec(prop::option::of(any::<i32>()), 0..20),
        texts in prop::collection::vec("[^\0]{0,8}", 0..10),
        floats in prop::collection::vec(any::<u32>(), 1..40),
        stamps in prop::collection::vec(-9_000_000_000_000i64..9_000_000_000_000, 0..6),
    ) {
        let v = V::List(ints.iter().map(|i| i.map_or(V::Null, V::Int)).collect());
        prop_assert_eq!(decode::<Vec<Option<i32>>>(&Type::INT4_ARRAY, &payload(&list(T::Int), &v)), ints);
        let v = V::List(texts.iter().cloned().map(V::Text).collect());
        prop_assert_eq!(decode::<Vec<String>>(&Type::TEXT_ARRAY, &payload(&set(T::Text), &v)), texts);
        let v = V::Vector(floats.iter().map(|&b| V::Float(f32::from_bits(b))).collect(), true);
        let ty = vector(T::Float, floats.len() as u16);
        let got: Vec<f32> = decode(&Type::FLOAT4_ARRAY, &payload(&ty, &v));
        prop_assert_eq!(got.iter().map(|f| f.to_bits()).collect::<Vec<_>>(), floats);
        let v = V::List(stamps.iter().map(|&ms| V::Timestamp(ms)).collect());
        let got: Vec<DateTime<Utc>> = decode(&Type::TIMESTAMPTZ_ARRAY, &payload(&list(T::Timestamp), &v));
        prop_assert_eq!(got.iter().map(|t| t.timestamp_millis()).collect::<Vec<_>>(), stamps);
    }

    #[test]
    fn prop_composites_match_the_documented_json((ty, v) in arb_type().prop_flat_map(|t| {
        let v = arb_value(&t);
        (Just(t), v)
    })) {
        let cell = wire(&v);
        let mut out = BytesMut::new();
        let result = encode_field(&ty, cell.as_deref(), &mut out);
        match ty.pg_type() {
            PgType::Jsonb => {
                result.unwrap();
                let got: Value = decode(&Type::JSONB, &out[4..]);
                let want = expected_json(&ty, &v);
                prop_assert!(json_matches(&got, &want), "{ty}: got {got}, want {want}");
                let value = cql_to_json(&ty, cell.as_deref()).unwrap();
                prop_assert!(json_matches(&value, &want), "{ty}: cql_to_json {value}, want {want}");
            }
            // Arrays and scalars: framing and acceptance are what matters here.
            _ => {
                result.unwrap();
                let len = i32::from_be_bytes(out[..4].try_into().unwrap());
                prop_assert_eq!(len as usize, out.len() - 4);
            }
        }
    }

    #[test]
    fn prop_garbage_never_panics_and_rejects_cleanly(ty in arb_type(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = framed_ok(&ty, &bytes);
        let _ = cql_to_json(&ty, Some(&bytes));
    }
}

// ---------------------------------------------------------------------------------------------
// Against a real server: PostgreSQL itself must accept the bytes and read them back as intended,
// and must refuse the first values beyond the ranges this module enforces.

const TEST_PG: &str = "host=127.0.0.1 port=5433 user=postgres dbname=ferry";

async fn test_bed_client() -> tokio_postgres::Client {
    let conn = std::env::var("FERRY_TEST_PG").unwrap_or_else(|_| TEST_PG.to_string());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("test bed PostgreSQL at {conn:?} (scripts/testbed up): {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'",
        )
        .await
        .unwrap();
    client
}

/// COPYs one row of already-encoded fields into a fresh temp table with `columns`.
async fn copy_row(
    client: &tokio_postgres::Client,
    columns: &[&str],
    fields: &[u8],
) -> Result<(), tokio_postgres::Error> {
    use futures::SinkExt;
    let ddl: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("c{i} {c}"))
        .collect();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS pg_temp.enc; CREATE TEMP TABLE enc ({})",
            ddl.join(", ")
        ))
        .await?;
    let mut data = BytesMut::new();
    copy_header(&mut data);
    data.extend_from_slice(&(columns.len() as i16).to_be_bytes());
    data.extend_from_slice(fields);
    copy_trailer(&mut data);
    let sink = client
        .copy_in("COPY enc FROM STDIN (FORMAT binary)")
        .await?;
    let mut sink = std::pin::pin!(sink);
    sink.send(data.freeze()).await?;
    sink.as_mut().finish().await.map(|_| ())
}

#[tokio::test]
async fn postgres_reads_back_what_was_encoded() {
    let client = test_bed_client().await;
    let pg_min_ms = -210_866_803_200_000i64;
    let cql_date = |pg_days: i64| (pg_days + 10_957 + (1 << 31)) as u32;
    let cases: Vec<(CqlType, V, &str, &str)> = vec![
        (T::Text, text("zażółć 🚀 \"q\""), "text", "zażółć 🚀 \"q\""),
        (T::Text, text(""), "text", ""),
        (T::TinyInt, V::Tiny(-128), "smallint", "-128"),
        (
            T::BigInt,
            V::Big(i64::MIN),
            "bigint",
            "-9223372036854775808",
        ),
        (T::Float, V::Float(f32::NAN), "real", "NaN"),
        (T::Double, V::Double(-0.0), "double precision", "-0"),
        (T::Boolean, V::Bool(true), "boolean", "true"),
        (T::Blob, V::Blob(vec![0, 255]), "bytea", "\\x00ff"),
        (
            T::Inet,
            V::Inet("2001:db8::1".parse().unwrap()),
            "inet",
            "2001:db8::1/128",
        ),
        (
            T::Inet,
            V::Inet("10.1.2.3".parse().unwrap()),
            "inet",
            "10.1.2.3/32",
        ),
        (
            T::Uuid,
            V::Uuid(uuid::Uuid::from_u128(0xabcd)),
            "uuid",
            "00000000-0000-0000-0000-00000000abcd",
        ),
        (
            T::Timestamp,
            V::Timestamp(-1),
            "timestamptz",
            "1969-12-31 23:59:59.999+00",
        ),
        (
            T::Timestamp,
            V::Timestamp(pg_min_ms),
            "timestamptz",
            "4714-11-24 00:00:00+00 BC",
        ),
        (
            T::Timestamp,
            V::Timestamp(9_224_318_015_999_999),
            "timestamptz",
            "294276-12-31 23:59:59.999+00",
        ),
        (
            T::Date,
            V::Date(cql_date(-2_451_545)),
            "date",
            "4714-11-24 BC",
        ),
        (
            T::Date,
            V::Date(cql_date(2_145_031_948)),
            "date",
            "5874897-12-31",
        ),
        (
            T::Time,
            V::Time(86_399_999_999_000),
            "time",
            "23:59:59.999999",
        ),
        (
            T::Duration,
            V::Duration(14, 3, 14_706_789_000_000),
            "interval",
            "1 year 2 mons 3 days 04:05:06.789",
        ),
        (
            T::Varint,
            V::Varint(big("-340282366920938463463374607431768211457")),
            "numeric",
            "-340282366920938463463374607431768211457",
        ),
        (
            T::Decimal,
            V::Decimal(big("123456789012345678901234567890123456789012345"), 40),
            "numeric",
            "12345.6789012345678901234567890123456789012345",
        ),
        (T::Decimal, V::Decimal(big("150"), 2), "numeric", "1.50"),
        (T::Decimal, V::Decimal(big("0"), 7), "numeric", "0.0000000"),
        (
            T::Decimal,
            V::Decimal(big("-5"), -40),
            "numeric",
            "-50000000000000000000000000000000000000000",
        ),
        (
            list(T::Int),
            V::List(vec![V::Int(1), V::Null, V::Int(i32::MIN)]),
            "integer[]",
            "{1,NULL,-2147483648}",
        ),
        (set(T::Text), V::List(vec![]), "text[]", "{}"),
        (
            vector(T::Float, 3),
            V::Vector(
                vec![V::Float(1.5), V::Float(-0.0), V::Float(f32::NAN)],
                true,
            ),
            "real[]",
            "{1.5,-0,NaN}",
        ),
        (
            vector(T::Text, 2),
            V::Vector(vec![text("a b"), text("")], false),
            "text[]",
            "{\"a b\",\"\"}",
        ),
        (
            map(T::Text, list(T::Double)),
            V::Map(vec![(
                text("k\"1"),
                V::List(vec![V::Double(0.1), V::Double(f64::NAN)]),
            )]),
            "jsonb",
            r#"{"k\"1": [0.1, "NaN"]}"#,
        ),
        (
            T::Tuple(vec![T::Decimal, T::Varint, T::Timestamp]),
            V::Tuple(vec![
                V::Decimal(big("150"), 2),
                V::Varint(big("18446744073709551616")),
            ]),
            "jsonb",
            "[1.50, 18446744073709551616, null]",
        ),
        (
            udt(&[("street", T::Text), ("zip", T::Int)]),
            V::Tuple(vec![text("Main St"), V::Null]),
            "jsonb",
            r#"{"zip": null, "street": "Main St"}"#,
        ),
    ];
    let mut fields = BytesMut::new();
    for (ty, v, _, _) in &cases {
        encode_field(ty, wire(v).as_deref(), &mut fields)
            .unwrap_or_else(|r| panic!("{ty} {v:?}: {}", r.reason));
    }
    let columns: Vec<&str> = cases.iter().map(|c| c.2).collect();
    copy_row(&client, &columns, &fields)
        .await
        .expect("COPY accepted");
    let select: Vec<String> = (0..cases.len()).map(|i| format!("c{i}::text")).collect();
    let row = client
        .query_one(&format!("SELECT {} FROM enc", select.join(", ")), &[])
        .await
        .unwrap();
    let mismatches: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, (ty, v, _, expect))| {
            let got: String = row.get(i);
            (got != *expect).then(|| format!("{ty} {v:?}: got {got:?}, want {expect:?}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[tokio::test]
async fn postgres_refuses_what_is_rejected_here() {
    // The first value past each limit, hand-encoded (the encoder would refuse to write it):
    // PostgreSQL must refuse it too, so the limits here are PostgreSQL's, not stricter.
    let client = test_bed_client().await;
    let field = |payload: &[u8]| {
        let mut f = (payload.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    };
    let numeric = |ndigits: u16, weight: i16, dscale: u16| {
        let mut p = Vec::new();
        for x in [ndigits, weight as u16, 0, dscale] {
            p.extend_from_slice(&x.to_be_bytes());
        }
        p.extend(std::iter::repeat_n([0u8, 1], usize::from(ndigits)).flatten());
        p
    };
    for (column, payload) in [
        (
            "timestamptz",
            field(&(-211_813_488_000_000_001i64).to_be_bytes()),
        ),
        (
            "timestamptz",
            field(&9_223_371_331_200_000_000i64.to_be_bytes()),
        ),
        ("date", field(&(-2_451_546i32).to_be_bytes())),
        ("date", field(&2_145_031_949i32.to_be_bytes())),
        ("text", field(b"a\0b")),
        ("jsonb", field(b"\x01\"a\\u0000b\"")),
        ("numeric", field(&numeric(1, 0, 16384))),
    ] {
        let r = copy_row(&client, &[column], &payload).await;
        assert!(
            r.is_err(),
            "PostgreSQL accepted a {column} this module rejects"
        );
    }
    // And the last values inside the limits are accepted.
    for (column, payload) in [
        (
            "timestamptz",
            field(&(-211_813_488_000_000_000i64).to_be_bytes()),
        ),
        (
            "timestamptz",
            field(&9_223_371_331_199_999_999i64.to_be_bytes()),
        ),
        ("date", field(&(-2_451_545i32).to_be_bytes())),
        ("date", field(&2_145_031_948i32.to_be_bytes())),
        ("numeric", field(&numeric(1, 0, 16383))),
        ("numeric", field(&numeric(1, 32767, 0))),
    ] {
        copy_row(&client, &[column], &payload)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL refused a {column} inside the limits: {e}"));
    }
}
