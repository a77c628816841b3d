//! The PostgreSQL/YugabyteDB side of a validation: the same columns read in binary form, so each
//! field arrives in the send format ferry's encoder writes, then brought to canonical form.
//!
//! Full scans run as `COPY (SELECT …) TO STDOUT (FORMAT binary)` over a few connections, each
//! on one slice of the table: block ranges of `ctid` on PostgreSQL 14+ (TID range scans read
//! only their blocks), `yb_hash_code` ranges of the partition key on YugabyteDB, one stream
//! otherwise. Sample lookups are `SELECT … WHERE (key) IN (…)` with binary parameters.

use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::Client;

use super::canonical::{put_field, RowBuf};
use super::{Counters, Shape};
use crate::schema::{pg_ident, TargetKind};

/// Receives reduced target rows; `key_json` is the extra key column of a narrowing scan.
pub(super) trait TargetSink: Send + Sync {
    fn row(&self, shape: &Shape, row: &RowBuf, key_json: Option<&[u8]>);
}

/// The `WHERE` clauses that split a full scan into `streams` slices (one empty clause: all).
pub(super) async fn slices(
    client: &Client,
    kind: TargetKind,
    shape: &Shape,
    streams: usize,
) -> Result<Vec<String>> {
    let streams = streams.max(1);
    if streams == 1 {
        return Ok(vec![String::new()]);
    }
    if kind == TargetKind::YugabyteDb {
        let cols = shape.partition_cols.join(", ");
        let step = 65536usize.div_ceil(streams);
        return Ok((0..streams)
            .map(|i| {
                format!(
                    "WHERE yb_hash_code({cols}) >= {} AND yb_hash_code({cols}) < {}",
                    i * step,
                    ((i + 1) * step).min(65536)
                )
            })
            .collect());
    }
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .context("reading the target's version")?
        .get(0);
    if version < 140000 {
        return Ok(vec![String::new()]);
    }
    let blocks: i64 = client
        .query_one(
            "SELECT pg_relation_size($1::text::regclass) / current_setting('block_size')::bigint",
            &[&shape.qualified_target],
        )
        .await
        .with_context(|| format!("reading the size of {}", shape.qualified_target))?
        .get(0);
    let step = (blocks as u64).div_ceil(streams as u64).max(1);
    let mut out = Vec::new();
    let mut start = 0u64;
    for i in 0..streams {
        // The last slice is open-ended: blocks added after the size was read are still read.
        if i + 1 == streams {
            out.push(format!("WHERE ctid >= '({start},0)'::tid"));
        } else {
            out.push(format!(
                "WHERE ctid >= '({start},0)'::tid AND ctid < '({},0)'::tid",
                start + step
            ));
        }
        start += step;
    }
    Ok(out)
}

/// `COPY (SELECT cols[, key json] FROM t <slice>) TO STDOUT (FORMAT binary)`.
pub(super) fn copy_sql(shape: &Shape, slice: &str, with_key_json: bool) -> String {
    let mut cols = shape.target_cols.join(", ");
    if with_key_json {
        cols.push_str(", ");
        cols.push_str(&shape.key_json_sql);
    }
    let filter = match (&shape.live_filter, slice.is_empty()) {
        (None, _) => slice.to_string(),
        (Some(f), true) => format!("WHERE {f}"),
        (Some(f), false) => format!("{slice} AND {f}"),
    };
    format!(
        "COPY (SELECT {cols} FROM {} {filter}) TO STDOUT (FORMAT binary)",
        shape.qualified_target
    )
}

/// Streams one COPY, reducing each row into the sink. Returns the rows read. Each piece of the
/// stream must come within `reply` (a half-open connection sends nothing, and TCP alone never
/// notices; see [`crate::retry::reply_deadline`]); `node` names the connection's node.
#[allow(clippy::too_many_arguments)]
pub(super) async fn scan(
    client: &Client,
    node: &str,
    reply: std::time::Duration,
    sql: &str,
    shape: &Shape,
    sink: &dyn TargetSink,
    with_key_json: bool,
    counters: &Counters,
) -> Result<u64> {
    let doing = format!("reading {} from the target", shape.qualified_target);
    let stream = crate::retry::within(reply, node, &doing, async {
        Ok(client.copy_out(sql).await?)
    })
    .await
    .with_context(|| doing.clone())?;
    let mut stream = std::pin::pin!(stream);
    let mut reader = CopyReader::default();
    let mut row = RowBuf::default();
    let expected = shape.target_cols.len() + usize::from(with_key_json);
    let mut n = 0u64;
    let mut pending = 0u64;
    while let Some(chunk) = tokio::time::timeout(reply, stream.next())
        .await
        .map_err(|_| crate::retry::no_reply(reply, node, &doing))?
    {
        let chunk = chunk.with_context(|| format!("reading {}", shape.qualified_target))?;
        reader.buf.extend_from_slice(&chunk);
        reader.drain(expected, |fields| {
            row.clear();
            for (i, f) in fields[..shape.target_cols.len()].iter().enumerate() {
                put_field(shape.kinds[i], *f, &mut row.bytes);
                row.end_field();
            }
            let key_json = if with_key_json {
                fields[expected - 1]
            } else {
                None
            };
            sink.row(shape, &row, key_json);
            n += 1;
            pending += 1;
        })?;
        if pending >= 4096 {
            counters.target_rows.fetch_add(pending, Ordering::Relaxed);
            pending = 0;
        }
    }
    counters.target_rows.fetch_add(pending, Ordering::Relaxed);
    if !reader.finished {
        bail!(
            "the COPY stream of {} ended without its trailer",
            shape.qualified_target
        );
    }
    Ok(n)
}

/// Splits a binary COPY stream into tuples, whatever the message boundaries.
#[derive(Default)]
struct CopyReader {
    buf: BytesMut,
    header_done: bool,
    finished: bool,
}

impl CopyReader {
    /// Calls `f` with the fields of every complete tuple in the buffer, keeping the rest.
    fn drain(&mut self, expected: usize, mut f: impl FnMut(&[Option<&[u8]>])) -> Result<()> {
        let mut fields: Vec<Option<&[u8]>> = Vec::with_capacity(expected);
        let mut pos = 0usize;
        let data = &self.buf[..];
        if !self.header_done {
            if data.len() < 19 {
                return Ok(());
            }
            if &data[..11] != b"PGCOPY\n\xff\r\n\0" {
                bail!("the target's COPY stream has no binary header");
            }
            let ext = u32::from_be_bytes(data[15..19].try_into().expect("4 bytes")) as usize;
            if data.len() < 19 + ext {
                return Ok(());
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        while let Some(count) = data.get(pos..pos + 2) {
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.finished = true;
                pos = data.len();
                break;
            }
            if count as usize != expected {
                bail!("the target sent {count} fields per row, expected {expected}");
            }
            let mut p = pos + 2;
            fields.clear();
            let mut complete = true;
            for _ in 0..expected {
                let Some(len) = data.get(p..p + 4) else {
                    complete = false;
                    break;
                };
                let len = i32::from_be_bytes(len.try_into().expect("4 bytes"));
                p += 4;
                if len < 0 {
                    fields.push(None);
                    continue;
                }
                let Some(v) = data.get(p..p + len as usize) else {
                    complete = false;
                    break;
                };
                fields.push(Some(v));
                p += len as usize;
            }
            if !complete {
                break;
            }
            f(&fields);
            pos = p;
        }
        self.buf.advance(pos);
        Ok(())
    }
}

/// Looks rows up by primary key (`keys`: each the key columns' binary send form). Each found row
/// goes to `f`, reduced to canonical form.
pub(super) async fn lookup(
    client: &Client,
    shape: &Shape,
    keys: &[Vec<Vec<u8>>],
    mut f: impl FnMut(&RowBuf),
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT {} FROM {} WHERE {}{}",
        shape.target_cols.join(", "),
        shape.qualified_target,
        keys_in(shape, keys.len()),
        shape
            .live_filter
            .as_ref()
            .map_or(String::new(), |f| format!(" AND {f}"))
    );
    let params = raw_params(keys);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
    let rows = client
        .query(&sql, &refs)
        .await
        .with_context(|| format!("looking up sampled rows in {}", shape.qualified_target))?;
    let mut buf = RowBuf::default();
    for r in &rows {
        buf.clear();
        for i in 0..shape.target_cols.len() {
            let RawField(v) = r.try_get(i)?;
            put_field(shape.kinds[i], v, &mut buf.bytes);
            buf.end_field();
        }
        f(&buf);
    }
    Ok(())
}

/// `(k1, k2) IN (($1, $2), ($3, $4), …)` for `n` keys.
fn keys_in(shape: &Shape, n: usize) -> String {
    let k = shape.key_cols;
    let tuples: Vec<String> = (0..n)
        .map(|i| {
            let marks: Vec<String> = (0..k).map(|j| format!("${}", i * k + j + 1)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    format!(
        "({}) IN ({})",
        shape.target_cols[..k].join(", "),
        tuples.join(", ")
    )
}

fn raw_params(keys: &[Vec<Vec<u8>>]) -> Vec<RawParam<'_>> {
    keys.iter()
        .flat_map(|key| key.iter().map(|v| RawParam(v)))
        .collect()
}

/// Deletes the target's rows with these keys (each the key columns' binary send form), in the
/// caller's transaction; returns the rows deleted.
pub(super) async fn delete_keys(
    client: &Client,
    shape: &Shape,
    keys: &[Vec<Vec<u8>>],
) -> Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "DELETE FROM {} WHERE {}",
        shape.qualified_target,
        keys_in(shape, keys.len())
    );
    let params = raw_params(keys);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
    client
        .execute(&sql, &refs)
        .await
        .with_context(|| format!("deleting rows of {}", shape.qualified_target))
}

/// Deletes the target's rows with these keys, each a JSON object by source column name as
/// [`key_json_sql`] renders it (rows found only in the target), in the caller's transaction;
/// returns the rows deleted.
pub(super) async fn delete_json_keys(
    client: &Client,
    shape: &Shape,
    keys: &[serde_json::Value],
) -> Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    // Renamed to the target's column names, then read back as the table's own row type.
    let rows: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            let mut o = serde_json::Map::new();
            for (s, t) in shape
                .names
                .iter()
                .zip(&shape.target_names)
                .take(shape.key_cols)
            {
                o.insert(
                    t.clone(),
                    k.get(s).cloned().unwrap_or(serde_json::Value::Null),
                );
            }
            serde_json::Value::Object(o)
        })
        .collect();
    let cols = &shape.target_cols[..shape.key_cols];
    let on: Vec<String> = cols.iter().map(|c| format!("t.{c} = d.{c}")).collect();
    let sql = format!(
        "DELETE FROM {q} AS t USING json_populate_recordset(NULL::{q}, $1::text::json) AS d WHERE {}",
        on.join(" AND "),
        q = shape.qualified_target,
    );
    let text = serde_json::Value::Array(rows).to_string();
    client
        .execute(&sql, &[&text])
        .await
        .with_context(|| format!("deleting rows only in {}", shape.qualified_target))
}

/// A parameter already in PostgreSQL's binary send form.
#[derive(Debug)]
struct RawParam<'a>(&'a [u8]);

impl ToSql for RawParam<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A result field as its raw binary bytes.
struct RawField<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawField<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawField(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawField(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `json_build_object('<source name>', <target column>, …)::text` over the key columns, so a
/// row found only in the target can still be shown by its key.
pub(super) fn key_json_sql(source_names: &[String], target_names: &[String]) -> String {
    let pairs: Vec<String> = source_names
        .iter()
        .zip(target_names)
        .map(|(s, t)| format!("'{}', {}", s.replace('\'', "''"), pg_ident(t)))
        .collect();
    format!("json_build_object({})::text", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            match f {
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    v.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    v.extend_from_slice(b);
                }
            }
        }
        v
    }

    #[test]
    fn copy_reader_splits_tuples_across_any_message_boundary() {
        let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
        stream.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        stream.extend(tuple(&[Some(b"ab"), None]));
        stream.extend(tuple(&[Some(b""), Some(b"xyz")]));
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        for cut in 1..stream.len() {
            let mut r = CopyReader::default();
            let mut seen: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                r.buf.extend_from_slice(part);
                r.drain(2, |f| {
                    seen.push(f.iter().map(|x| x.map(|b| b.to_vec())).collect())
                })
                .unwrap();
            }
            assert!(r.finished, "cut at {cut}");
            assert_eq!(
                seen,
                vec![
                    vec![Some(b"ab".to_vec()), None],
                    vec![Some(vec![]), Some(b"xyz".to_vec())]
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn key_json_quotes_names_and_identifiers() {
        assert_eq!(
            key_json_sql(
                &["pk".into(), "it's".into()],
                &["pk".into(), "Order".into()]
            ),
            "json_build_object('pk', pk, 'it''s', \"Order\")::text"
        );
    }
}
