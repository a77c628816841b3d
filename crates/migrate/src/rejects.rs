//! Rejected rows are data: each one is a row of `<progress schema>.ferry_rejects`, inserted in
//! the transaction of the chunk that read it, so it commits with the chunk's rows and done mark
//! or not at all. A chunk redone after a crash or a failed attempt writes its rejects again in
//! its new transaction; the old attempt's never committed. Several workers (processes) each
//! insert their own chunks' rejects; none writes a shared file while copying.
//!
//! The JSON-lines reject file (`ferry.rejectFile`) is an export of that table: written at the
//! end of a run (and by `ferry status --rejects`) with every reject of the run's tables, from
//! this run and the runs it resumed, each exactly once.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::cql::CqlType;
use crate::encode;

/// One rejected row: which row (its primary key), which column, why, and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Reject {
    /// `ks.table` in Cassandra.
    pub table: String,
    /// The primary key, column name → value (JSON).
    pub primary_key: serde_json::Map<String, serde_json::Value>,
    pub column: String,
    pub reason: String,
    /// The value as JSON: its text form where it has one, else `"0x…"` (hex of its bytes);
    /// `null` for a null cell.
    pub value: serde_json::Value,
}

/// What a table's rows look like, for building [`Reject`]s.
pub struct RowShape<'a> {
    pub table: &'a str,
    pub types: &'a [CqlType],
    pub names: &'a [String],
    /// Indexes of the primary key's columns.
    pub key_columns: &'a [usize],
}

impl Reject {
    /// The reject for a row whose column `col` cannot be written: `cells` are the row's raw
    /// CQL values.
    pub fn of_row(
        shape: &RowShape<'_>,
        cells: &[Option<&[u8]>],
        col: usize,
        reason: &str,
    ) -> Reject {
        let mut key = serde_json::Map::new();
        for &k in shape.key_columns {
            let v = encode::cql_to_json(&shape.types[k], cells[k])
                .unwrap_or_else(|r| serde_json::Value::String(r.reason));
            key.insert(shape.names[k].clone(), v);
        }
        let value = match cells[col] {
            None => serde_json::Value::Null,
            Some(bytes) => encode::cql_to_json(&shape.types[col], Some(bytes))
                .unwrap_or_else(|_| serde_json::Value::String(format!("0x{}", hex(bytes)))),
        };
        Reject {
            table: shape.table.to_string(),
            primary_key: key,
            column: shape.names[col].clone(),
            reason: reason.to_string(),
            value,
        }
    }

    /// The reject file's line for it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "table": self.table,
            "primary_key": self.primary_key,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The reject table's DDL, for [`crate::progress::Progress::ensure`]. Keys and values are kept
/// as JSON text (not jsonb: a text value may hold U+0000, which jsonb refuses).
pub(crate) fn create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
           job text NOT NULL,
           chunk_id integer NOT NULL,
           seq integer NOT NULL,
           source_table text NOT NULL,
           primary_key text NOT NULL,
           column_name text NOT NULL,
           reason text NOT NULL,
           value text NOT NULL,
           PRIMARY KEY (job, chunk_id, seq)
         );"
    )
}

/// The statement a worker prepares to insert one chunk's rejects in the chunk's transaction:
/// `$1` job, `$2` chunk, `$3` source table, then arrays of sequence numbers, keys, columns,
/// reasons and values.
pub(crate) fn insert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} (job, chunk_id, seq, source_table, primary_key, column_name, reason, value) \
         SELECT $1, $2, u.s, $3, u.k, u.c, u.r, u.v \
         FROM unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u(s, k, c, r, v)"
    )
}

/// One chunk's rejects as the insert's array parameters.
pub(crate) struct Columns {
    seq: Vec<i32>,
    keys: Vec<String>,
    columns: Vec<String>,
    reasons: Vec<String>,
    values: Vec<String>,
}

impl Columns {
    pub(crate) fn of(rejects: &[Reject]) -> Columns {
        Columns {
            seq: (0..rejects.len() as i32).collect(),
            keys: rejects
                .iter()
                .map(|r| serde_json::Value::Object(r.primary_key.clone()).to_string())
                .collect(),
            columns: rejects.iter().map(|r| r.column.clone()).collect(),
            reasons: rejects.iter().map(|r| r.reason.clone()).collect(),
            values: rejects.iter().map(|r| r.value.to_string()).collect(),
        }
    }

    /// The insert's parameters after job, chunk and table.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.seq,
            &self.keys,
            &self.columns,
            &self.reasons,
            &self.values,
        ]
    }
}

/// Writes every reject of `jobs` stored in `table` (the progress schema's reject table) to
/// `path` as JSON lines, ordered by job, chunk and row; returns how many. The file is written
/// beside and renamed into place, so workers exporting at once never interleave. With no
/// reject the file is left as it is. One round trip: the read is sent with the look for the
/// table, and its error ignored when the table is not there.
pub async fn export(client: &Client, table: &str, jobs: &[String], path: &Path) -> Result<u64> {
    let read = format!(
        "SELECT source_table, primary_key, column_name, value, reason FROM {table} \
         WHERE job = ANY($1) ORDER BY job, chunk_id, seq"
    );
    let named: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] = [(&table, Type::TEXT)];
    let keys: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] = [(&jobs, Type::TEXT_ARRAY)];
    let (exists, rows) = tokio::join!(
        client.query_typed_one("SELECT to_regclass($1) IS NOT NULL", &named),
        client.query_typed(&read, &keys)
    );
    let exists: bool = exists.context("looking for the reject table")?.get(0);
    if !exists {
        return Ok(0);
    }
    let rows = rows.with_context(|| format!("reading the rejected rows from {table}"))?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut out = Vec::with_capacity(rows.len() * 128);
    for r in &rows {
        let json = |i: usize| -> serde_json::Value {
            let text: String = r.get(i);
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        let line = serde_json::json!({
            "table": r.get::<_, String>(0),
            "primary_key": json(1),
            "column": r.get::<_, String>(2),
            "value": json(3),
            "reason": r.get::<_, String>(4),
        });
        serde_json::to_writer(&mut out, &line)?;
        out.push(b'\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("creating the folder of the reject file {}", path.display())
        })?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing the reject file {}", path.display()))?;
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_without_a_text_form_is_hex() {
        let types = vec![CqlType::Int, CqlType::Text];
        let names = vec!["id".to_string(), "v".to_string()];
        let shape = RowShape {
            table: "ks.t",
            types: &types,
            names: &names,
            key_columns: &[0],
        };
        let id = 7i32.to_be_bytes();
        let bad = [0x66, 0xff, 0x00];
        let r = Reject::of_row(&shape, &[Some(&id), Some(&bad)], 1, "invalid UTF-8");
        assert_eq!(r.primary_key["id"], serde_json::json!(7));
        assert_eq!(r.value, serde_json::json!("0x66ff00"));
        assert_eq!(r.to_json()["column"], "v");
        let cols = Columns::of(&[r.clone(), r]);
        assert_eq!(cols.seq, vec![0, 1]);
        assert_eq!(cols.keys[0], r#"{"id":7}"#);
    }
}
