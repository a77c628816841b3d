//! The Cassandra side of a validation: token-range chunk scans, each row reduced to its canonical
//! form with ferry's own encoder (exactly the bytes `ferry migrate` writes), handed to a sink.
//!
//! Pages are fetched on the calling task (page k+1 while page k is reduced) and reduced on the
//! blocking pool, so encoding and hashing use every core while the scans share one session.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use bytes::BytesMut;
use scylla::client::session::Session;
use scylla::deserialize::row::ColumnIterator;
use scylla::response::query_result::QueryResult;
use scylla::response::{PagingState, PagingStateResponse};

use super::canonical::{put_field, put_marked, RowBuf, REJECTED};
use super::{Counters, Shape};
use crate::encode::{self, Reject};
use crate::pipeline::Settings;
use crate::plan::{Chunk, Plan};
use crate::schema::TableMapping;
use crate::source::RangeReader;

/// One source row as a sink sees it.
pub(super) struct SourceRow<'r> {
    /// Canonical fields; a field ferry would reject is kept raw behind [`REJECTED`].
    pub row: &'r RowBuf,
    /// The raw CQL cells, for readable keys and lookup parameters.
    pub cells: &'r [Option<&'r [u8]>],
    /// The first column ferry would reject, and why.
    pub reject: Option<(usize, Reject)>,
}

impl SourceRow<'_> {
    /// The primary key as JSON (`{"pk": 1, "ck": 2}`), built as the reject file builds it.
    pub fn key_json(&self, shape: &Shape) -> serde_json::Value {
        let mut key = serde_json::Map::new();
        for k in 0..shape.key_cols {
            let v = encode::cql_to_json(&shape.types[k], self.cells[k])
                .unwrap_or_else(|r| serde_json::Value::String(r.reason));
            key.insert(shape.names[k].clone(), v);
        }
        serde_json::Value::Object(key)
    }

    /// The key columns as binary parameters for a target lookup (PostgreSQL's send format);
    /// `None` when a key value cannot be written to PostgreSQL at all.
    pub fn key_params(&self, shape: &Shape) -> Option<Vec<Vec<u8>>> {
        (0..shape.key_cols)
            .map(|k| {
                let mut b = BytesMut::new();
                encode::encode_field(&shape.types[k], self.cells[k], &mut b).ok()?;
                (b.len() >= 4 && b[..4] != (-1i32).to_be_bytes()).then(|| b[4..].to_vec())
            })
            .collect()
    }
}

/// Receives reduced rows; called from the blocking pool.
pub(super) trait SourceSink: Send + Sync {
    fn row(&self, shape: &Shape, row: &SourceRow<'_>);
}

/// Scans chunks of one table, through the source module's range reader (the migration's
/// routing and retry policy).
pub(super) struct Scanner<'a> {
    reader: RangeReader<'a>,
    shape: Arc<Shape>,
}

impl<'a> Scanner<'a> {
    /// Prepares the range scan, routed per replica set like the migration's; `page_rows`
    /// overrides the fetch size (sample mode reads small pages).
    pub async fn new(
        session: &'a Session,
        mapping: &TableMapping,
        plan: &Plan,
        settings: &Settings,
        shape: Arc<Shape>,
        page_rows: Option<i32>,
    ) -> Result<Self> {
        let mut read = settings.read_settings();
        if let Some(rows) = page_rows {
            read.page_rows = rows;
        }
        let reader = RangeReader::new(
            session,
            mapping.source.range_select(),
            mapping.source.qualified(),
            plan,
            &read,
        )
        .await?
        .with_slices(&mapping.source);
        Ok(Scanner { reader, shape })
    }

    /// Scans one chunk into `sink`, stopping after `limit` rows; returns the rows reduced.
    /// A failed page is retried (with the same paging state, so no row is seen twice).
    pub async fn chunk(
        &self,
        chunk: &Chunk,
        limit: u64,
        sink: Arc<dyn SourceSink>,
        counters: &Counters,
    ) -> Result<u64> {
        let fetch = |paging: PagingState| async move {
            self.reader
                .chunk_page(
                    chunk.replica_set,
                    None,
                    (chunk.start, chunk.end),
                    chunk.clustering.as_ref(),
                    paging,
                )
                .await
                .map(|p| {
                    counters
                        .pages_reread
                        .fetch_add(u64::from(p.retries), Ordering::Relaxed);
                    (p.result, p.next)
                })
                .map_err(|e| anyhow!(e).context(format!("chunk {}", chunk.id)))
        };
        let mut total = 0u64;
        let mut page = fetch(PagingState::start()).await?;
        loop {
            let (res, next) = page;
            let shape = self.shape.clone();
            let s = sink.clone();
            let remaining = limit - total;
            let reduce =
                tokio::task::spawn_blocking(move || reduce_page(&shape, res, &*s, remaining));
            let (n, more) = match next {
                PagingStateResponse::HasMorePages { state } => {
                    let (n, fetched) = tokio::join!(reduce, fetch(state));
                    (n.context("reducing a page")??, Some(fetched))
                }
                PagingStateResponse::NoMorePages => {
                    (reduce.await.context("reducing a page")??, None)
                }
            };
            total += n;
            counters.source_rows.fetch_add(n, Ordering::Relaxed);
            match more {
                Some(fetched) if total < limit => page = fetched?,
                _ => return Ok(total),
            }
        }
    }
}

/// Reduces the rows of one page (at most `limit`) and hands each to the sink.
fn reduce_page(shape: &Shape, res: QueryResult, sink: &dyn SourceSink, limit: u64) -> Result<u64> {
    let rows = res
        .into_rows_result()
        .context("the scan returned no rows result")?;
    let mut buf = RowBuf::default();
    let mut cells: Vec<Option<&[u8]>> = Vec::with_capacity(shape.types.len());
    let mut n = 0u64;
    for row in rows.rows::<ColumnIterator>()? {
        if n >= limit {
            break;
        }
        let row = row?;
        buf.clear();
        cells.clear();
        let mut reject = None;
        for (i, col) in row.enumerate() {
            let cell = col?.slice.map(|s| s.as_slice());
            cells.push(cell);
            let start = buf.bytes.len();
            match encode::encode_field(&shape.types[i], cell, &mut buf.bytes) {
                Ok(()) => {
                    // The encoder wrote PostgreSQL's binary field; bring it to canonical form.
                    let kind = shape.kinds[i];
                    if kind != super::canonical::FieldKind::Plain {
                        let field = buf.bytes.split_off(start);
                        let len = i32::from_be_bytes(field[..4].try_into().expect("4 bytes"));
                        put_field(kind, (len >= 0).then(|| &field[4..]), &mut buf.bytes);
                    }
                }
                Err(r) => {
                    put_marked(REJECTED, cell.unwrap_or_default(), &mut buf.bytes);
                    if reject.is_none() {
                        reject = Some((i, r));
                    }
                }
            }
            buf.end_field();
        }
        sink.row(
            shape,
            &SourceRow {
                row: &buf,
                cells: &cells,
                reject,
            },
        );
        n += 1;
    }
    Ok(n)
}
