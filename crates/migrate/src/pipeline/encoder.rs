//! A page of Cassandra rows into binary COPY rows: the one encoder every writer of rows uses
//! (the chunks of a migration, the rows `ferry validate --repair` re-reads).

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use bytes::{BufMut, BytesMut};
use scylla::deserialize::row::ColumnIterator;

use crate::config::RowTimeColumns;
use crate::cql::CqlType;
use crate::encode;
use crate::rejects::{Reject, RowShape};
use crate::row_times::TimeColumns;
use crate::schema::{ColumnKind, SourceTable};

/// How many rows of a page were read, and how many were encoded (the others were rejected,
/// older than a catch-up's start, or already expired).
pub struct PageCounts {
    pub read: u64,
    pub written: u64,
}

/// Encodes rows of one table as its target rows: its columns, the row times carried, then
/// the constant columns.
pub struct RowEncoder {
    types: Vec<CqlType>,
    key_columns: Vec<usize>,
    names: Vec<String>,
    table: String,
    constants: Vec<Option<Vec<u8>>>,
    /// The row times each scanned row carries after its columns.
    time_cols: TimeColumns,
    /// Which row time columns the target gets.
    row_times: RowTimeColumns,
    /// A catch-up: rows written before this (µs since the Unix epoch) are left out.
    since_us: Option<i64>,
    /// Encoded bytes per row, as last measured; 0 until the first page.
    pub row_bytes: AtomicU64,
}

impl RowEncoder {
    /// For rows read with `scanned`'s select list ([`SourceTable::select_list`]).
    pub fn new(
        scanned: &SourceTable,
        constants: Vec<Option<Vec<u8>>>,
        row_times: RowTimeColumns,
        since_us: Option<i64>,
    ) -> Self {
        RowEncoder {
            types: scanned.columns.iter().map(|c| c.ty.clone()).collect(),
            key_columns: scanned
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    matches!(
                        c.kind,
                        ColumnKind::PartitionKey | ColumnKind::Clustering { .. }
                    )
                })
                .map(|(i, _)| i)
                .collect(),
            names: scanned.columns.iter().map(|c| c.name.clone()).collect(),
            table: scanned.qualified(),
            constants,
            time_cols: TimeColumns::of(scanned, scanned.times),
            row_times,
            since_us,
            row_bytes: AtomicU64::new(0),
        }
    }

    /// Encodes a page's rows into `buf`; a row that cannot be written as it is goes to `rejected`.
    /// With row times selected, each row's write time and expiry (for a read sent at
    /// `asked_secs`) follow its columns; a catch-up leaves out rows written before its start, and
    /// no row already expired is written.
    pub fn encode_page(
        &self,
        res: scylla::response::query_result::QueryResult,
        asked_secs: i64,
        buf: &mut BytesMut,
        rejected: &mut Vec<Reject>,
    ) -> Result<PageCounts> {
        let rows = res
            .into_rows_result()
            .context("the scan returned no rows result")?;
        let ndata = self.types.len();
        let times = &self.row_times;
        let ncols = (ndata
            + usize::from(times.writetime.is_some())
            + usize::from(times.expires.is_some())
            + self.constants.len()) as i16;
        let now_us = crate::row_times::now_secs().saturating_mul(1_000_000);
        let mut counts = PageCounts {
            read: 0,
            written: 0,
        };
        let mut cells: Vec<Option<&[u8]>> = Vec::with_capacity(self.types.len());
        // Room for the whole page at once, from the row size measured so far: growing by doubling
        // would copy the page several times and leave up to half of the buffer unused.
        let row_bytes = self.row_bytes.load(Ordering::Relaxed) as usize;
        if row_bytes > 0 {
            buf.reserve(rows.rows_num() * (row_bytes + row_bytes / 16) + 64);
        }
        for row in rows.rows::<ColumnIterator>()? {
            let row = row?;
            let row_start = buf.len();
            buf.put_i16(ncols);
            let mut bad = None;
            cells.clear();
            for (i, col) in row.enumerate() {
                let col = col?;
                let cell = col.slice.map(|s| s.as_slice());
                if bad.is_none() && i < ndata {
                    if let Err(r) = encode::encode_field(&self.types[i], cell, buf) {
                        bad = Some((i, r));
                    }
                }
                cells.push(cell);
            }
            counts.read += 1;
            let (data, time_cells) = cells.split_at(ndata.min(cells.len()));
            let time = (!self.time_cols.is_empty()).then(|| self.time_cols.read(data, time_cells));
            let expires = time.and_then(|t| t.expires_us(asked_secs));
            let older = matches!(
                (self.since_us, time.and_then(|t| t.writetime_us)),
                (Some(since), Some(w)) if w < since
            );
            if older || expires.is_some_and(|e| e <= now_us) {
                buf.truncate(row_start);
                continue;
            }
            if let Some((col, reject)) = bad {
                buf.truncate(row_start);
                let shape = RowShape {
                    table: &self.table,
                    types: &self.types,
                    names: &self.names,
                    key_columns: &self.key_columns,
                };
                rejected.push(Reject::of_row(&shape, data, col, &reject.reason));
                continue;
            }
            if times.writetime.is_some() {
                crate::row_times::put_timestamptz(buf, time.and_then(|t| t.writetime_us));
            }
            if times.expires.is_some() {
                crate::row_times::put_timestamptz(buf, expires);
            }
            for c in &self.constants {
                match c {
                    Some(bytes) => {
                        buf.put_i32(bytes.len() as i32);
                        buf.put_slice(bytes);
                    }
                    None => buf.put_i32(-1),
                }
            }
            counts.written += 1;
        }
        Ok(counts)
    }
}
