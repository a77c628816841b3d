//! Large partitions: a token-range chunk cannot split one partition, so a partition of half a
//! million rows would be read page after page, one round trip each, by one worker. A partition
//! the sizing sample shows large (it took a quarter of the sample or more) gets its clustering
//! keys read — keys only, in large pages — which counts its rows exactly and yields evenly
//! spaced boundaries; with at least `ferry.largePartitionRows` rows, its token's chunk is cut
//! into the token range before it, one chunk per clustering-key range `(lo, hi]` of the
//! partition, and the token range after it. Each piece is an ordinary chunk of the plan
//! (leased, copied and marked done in one transaction), so exactly-once holds as for any chunk.
//!
//! Boundaries are values of the leading clustering columns that share the first one's order
//! ([`SourceTable::split_columns`]): rows arrive in clustering order, so along those columns
//! they only rise (ASC) or only fall (DESC), and boundaries picked in reading order are sorted
//! by value (reversed for DESC) without comparing CQL values here. CQL compares the tuple
//! bounds value by value, so the ranges tile the partition for either order.

use anyhow::Result;
use scylla::client::session::Session;
use scylla::deserialize::row::ColumnIterator;
use scylla::response::{PagingState, PagingStateResponse};

use crate::plan::{Chunk, ClusteringRange, LargePartition, Plan};
use crate::schema::{cql_ident, SourceTable};
use crate::source::{FailureKind, RangeReader, ReadSettings};

/// Sampling stops after this many rows: a larger partition's last range runs to its end.
pub const MAX_SAMPLED_ROWS: u64 = 20_000_000;

/// Most ranges one partition is cut into.
pub const MAX_RANGES: usize = 1024;

/// Keys kept while sampling: between this and twice this many, evenly spaced.
const KEPT: usize = 4096;

/// Bytes of keys one sampling page may bring (far under the protocol's 16 MiB frame).
const KEY_PAGE_BYTES: u64 = 4 << 20;

/// Most rows one sampling page asks for: with one tombstone a row (a non-frozen collection
/// written), half of Cassandra's default `tombstone_failure_threshold`.
const KEY_PAGE_ROWS: u64 = 50_000;

/// Fewest rows a sampling page is cut down to after failures; a page this small that fails
/// ends the sampling (the partition is read whole).
const MIN_KEY_PAGE_ROWS: i32 = 1000;

/// A partition's clustering keys as sampled: its rows, and every `step`-th key (the split
/// columns' values) with its position, in reading order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeySample {
    pub rows: u64,
    pub counted_all: bool,
    step: u64,
    keys: Vec<(u64, Vec<Vec<u8>>)>,
}

impl KeySample {
    fn new() -> Self {
        KeySample {
            step: 1,
            ..Default::default()
        }
    }

    /// Whether the row at the next position is kept.
    fn wants_next(&self) -> bool {
        self.rows.is_multiple_of(self.step)
    }

    /// Counts one row, keeping `key` when the row's position is on the current step; when
    /// too many are kept, every other one goes and the step doubles.
    fn push(&mut self, key: Option<Vec<Vec<u8>>>) {
        if let Some(k) = key {
            self.keys.push((self.rows, k));
        }
        self.rows += 1;
        if self.keys.len() >= 2 * KEPT {
            self.step *= 2;
            let step = self.step;
            self.keys.retain(|(pos, _)| pos.is_multiple_of(step));
        }
    }
}

/// Boundaries for `ranges` ranges of about equal rows, sorted by value ascending: the sampled
/// key nearest after each `rows · i / ranges` position, repeated values dropped (a prefix
/// shared by many rows cannot be cut), reversed when the columns are DESC.
pub fn boundaries(sample: &KeySample, ranges: usize, descending: bool) -> Vec<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    if sample.keys.is_empty() || ranges < 2 {
        return out;
    }
    let mut k = 0;
    for i in 1..ranges as u64 {
        let at = sample.rows * i / ranges as u64;
        while k < sample.keys.len() && sample.keys[k].0 < at {
            k += 1;
        }
        let Some((_, key)) = sample.keys.get(k) else {
            break;
        };
        if out.last() != Some(key) {
            out.push(key.clone());
        }
    }
    if descending {
        out.reverse();
    }
    out
}

/// The chunks replacing `chunk` (which holds `token`): the token range before the token, one
/// piece per clustering range between `bounds` (sorted ascending), the token range after it.
/// Ids are left for the caller to number.
pub fn pieces(chunk: &Chunk, token: i64, bounds: &[Vec<Vec<u8>>]) -> Vec<Chunk> {
    let mut out = Vec::with_capacity(bounds.len() + 3);
    let width = (chunk.end as i128 - chunk.start as i128).max(1) as f64;
    let share = |lo: i64, hi: i64| (hi as i128 - lo as i128) as f64 / width;
    let mut piece = |start: i64, end: i64, clustering: Option<ClusteringRange>| {
        let f = if clustering.is_some() {
            0.0
        } else {
            share(start, end)
        };
        out.push(Chunk {
            id: 0,
            start,
            end,
            replica_set: chunk.replica_set,
            est_partitions: (chunk.est_partitions as f64 * f).round() as u64,
            est_bytes: (chunk.est_bytes as f64 * f).round() as u64,
            clustering,
        });
    };
    let before = token - 1;
    if before > chunk.start {
        piece(chunk.start, before, None);
    }
    let mut lo: Option<Vec<Vec<u8>>> = None;
    for b in bounds {
        piece(
            before,
            token,
            Some(ClusteringRange {
                lo: lo.take(),
                hi: Some(b.clone()),
            }),
        );
        lo = Some(b.clone());
    }
    piece(before, token, Some(ClusteringRange { lo, hi: None }));
    if chunk.end > token {
        piece(token, chunk.end, None);
    }
    out
}

/// Reads the split columns of partition token `token`'s rows (keys only, pages sized to
/// [`KEY_PAGE_BYTES`]), counting them and keeping an evenly spaced sample. A page that fails
/// is asked again at half its rows (and pages stay that small): a large page can fail where a
/// smaller one does not — Cassandra refuses a read that meets more than
/// `tombstone_failure_threshold` tombstones (100,000 by default; every row written with a
/// non-frozen collection carries one), and a slow one times out.
async fn sample_keys(
    reader: &RangeReader<'_>,
    set: usize,
    token: i64,
    first_page_rows: i32,
) -> Result<KeySample> {
    let mut sample = KeySample::new();
    let mut paging = PagingState::start();
    let mut page_rows = first_page_rows.clamp(MIN_KEY_PAGE_ROWS, KEY_PAGE_ROWS as i32);
    let mut ceiling = KEY_PAGE_ROWS;
    loop {
        let page = match reader
            .page(set, Some(page_rows), (token - 1, token), paging.clone())
            .await
        {
            Ok(p) => p,
            Err(e) if page_rows > MIN_KEY_PAGE_ROWS && e.kind() != FailureKind::Unavailable => {
                page_rows = (page_rows / 2).max(MIN_KEY_PAGE_ROWS);
                ceiling = page_rows as u64;
                tracing::info!(
                    token,
                    page_rows,
                    "a page of a large partition's keys failed; asking again in smaller pages: {e:#}"
                );
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let rows = page.result.into_rows_result()?;
        let mut bytes = 0u64;
        let mut n = 0u64;
        for row in rows.rows::<ColumnIterator>()? {
            let row = row?;
            let keep = sample.wants_next();
            let mut key = Vec::new();
            for col in row {
                let slice = col?.slice.map(|s| s.as_slice()).unwrap_or_default();
                bytes += slice.len() as u64 + 4;
                if keep {
                    key.push(slice.to_vec());
                }
            }
            n += 1;
            sample.push(keep.then_some(key));
        }
        if sample.rows >= MAX_SAMPLED_ROWS {
            return Ok(sample);
        }
        match page.next {
            PagingStateResponse::HasMorePages { state } => paging = state,
            PagingStateResponse::NoMorePages => {
                sample.counted_all = true;
                return Ok(sample);
            }
        }
        if let Some(row_bytes) = bytes.checked_div(n) {
            page_rows =
                (KEY_PAGE_BYTES / row_bytes.max(8)).clamp(MIN_KEY_PAGE_ROWS as u64, ceiling) as i32;
        }
    }
}

/// Splits `plan`'s large partitions (see the module's notes). `ranges_for(rows)` says how many
/// ranges a partition of `rows` rows gets at least (the table's chunk sizing applied to the
/// partition); no range is left with `min_rows` rows or more.
/// A partition whose keys cannot be read is left whole, with a warning.
pub async fn split_large_partitions(
    session: &Session,
    table: &SourceTable,
    plan: &mut Plan,
    read: &ReadSettings,
    min_rows: u64,
    ranges_for: &(dyn Fn(u64) -> usize + Sync),
) -> Result<()> {
    if min_rows == 0 || plan.heavy_tokens.is_empty() {
        return Ok(());
    }
    let Some(cql) = table.split_key_select() else {
        return Ok(());
    };
    let (columns, descending) = table.split_columns();
    let columns: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    // A failed page is asked again at once in smaller pages (see [`sample_keys`]), not the
    // same page after the retry policy's waits: a page that met too many tombstones fails
    // every time.
    let mut read = read.clone();
    read.retry.retries = 0;
    let reader = RangeReader::new(session, cql, table.qualified(), plan, &read).await?;
    for (token, _) in plan.heavy_tokens.clone() {
        let Some(idx) = plan
            .chunks
            .iter()
            .position(|c| c.clustering.is_none() && c.start < token && token <= c.end)
        else {
            continue;
        };
        let t = std::time::Instant::now();
        let sample =
            match sample_keys(&reader, plan.chunks[idx].replica_set, token, read.page_rows).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(
                        token,
                        "sampling a large partition's keys failed; it is read whole: {e:#}"
                    );
                    continue;
                }
            };
        tracing::info!(
            token,
            rows = sample.rows,
            ms = t.elapsed().as_millis() as u64,
            "sampled a partition's clustering keys"
        );
        if sample.rows < min_rows {
            continue;
        }
        // As many ranges as the table sizing gives a table of these rows, and none itself
        // large.
        let ranges = ranges_for(sample.rows)
            .max(sample.rows.div_ceil(min_rows) as usize)
            .clamp(2, MAX_RANGES);
        let bounds = boundaries(&sample, ranges, descending);
        if bounds.is_empty() {
            continue;
        }
        let replaced = pieces(&plan.chunks[idx], token, &bounds);
        plan.chunks.splice(idx..=idx, replaced);
        plan.large_partitions.push(LargePartition {
            token,
            rows: sample.rows,
            counted_all: sample.counted_all,
            ranges: bounds.len() + 1,
            columns: columns.clone(),
        });
    }
    if !plan.large_partitions.is_empty() {
        merge_quiet_runs(session, table, plan, &read).await;
    }
    for (i, c) in plan.chunks.iter_mut().enumerate() {
        c.id = i as u32;
    }
    Ok(())
}

/// Rows a run of token ranges may hold and still be merged into one chunk: one page.
fn quiet_rows(read: &ReadSettings) -> u64 {
    read.page_rows.max(1) as u64
}

/// Runs of token-range chunks between the pieces of split partitions: `(first, last)` indexes
/// into `chunks`, for runs of two chunks or more.
pub fn token_runs(chunks: &[Chunk]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        if chunks[i].clustering.is_some() {
            i += 1;
            continue;
        }
        let first = i;
        while i + 1 < chunks.len() && chunks[i + 1].clustering.is_none() {
            i += 1;
        }
        if i > first {
            out.push((first, i));
        }
        i += 1;
    }
    out
}

/// `chunks[first..=last]` as one chunk: their token range (contiguous in the plan), the first
/// one's replica set, their estimates summed.
pub fn merged(chunks: &[Chunk], first: usize, last: usize) -> Chunk {
    let run = &chunks[first..=last];
    Chunk {
        id: 0,
        start: run[0].start,
        end: run[run.len() - 1].end,
        replica_set: run[0].replica_set,
        est_partitions: run.iter().map(|c| c.est_partitions).sum(),
        est_bytes: run.iter().map(|c| c.est_bytes).sum(),
        clustering: None,
    }
}

/// A table whose rows are mostly in its large partitions keeps its token-range chunks around
/// them (one a vnode range or more, as the ring is cut), nearly all empty. Each chunk costs
/// round trips however few rows it holds (a lease, the COPY, the done mark): across a 100 ms
/// WAN, ~0.8 s of a worker's time for a chunk with nothing in it. So each run of token-range
/// chunks between split partitions is counted (partition tokens only, `LIMIT` one page, all
/// runs at once), and a run found to hold less than a page of rows becomes one chunk. A run
/// that cannot be counted is left as it is.
async fn merge_quiet_runs(
    session: &Session,
    table: &SourceTable,
    plan: &mut Plan,
    read: &ReadSettings,
) {
    let runs = token_runs(&plan.chunks);
    if runs.is_empty() {
        return;
    }
    let limit = quiet_rows(read);
    let tok = table.token_expr();
    let cql = format!(
        "SELECT {tok} FROM {}.{} WHERE {tok} > ? AND {tok} <= ? LIMIT {limit}",
        cql_ident(&table.keyspace),
        cql_ident(&table.table)
    );
    let count = |start: i64, end: i64| {
        let mut st = scylla::statement::Statement::new(cql.clone());
        st.set_page_size(limit.min(i32::MAX as u64) as i32);
        st.set_consistency(read.consistency);
        st.set_request_timeout(Some(read.read_timeout));
        async move {
            let (result, next) = session
                .query_single_page(st, (start, end), PagingState::start())
                .await
                .ok()?;
            let rows = result.into_rows_result().ok()?.rows_num() as u64;
            matches!(next, PagingStateResponse::NoMorePages).then_some(rows)
        }
    };
    let counted = futures::future::join_all(
        runs.iter()
            .map(|&(first, last)| count(plan.chunks[first].start, plan.chunks[last].end)),
    )
    .await;
    // From the end, so earlier indexes stay valid.
    for (&(first, last), rows) in runs.iter().zip(counted).rev() {
        let Some(rows) = rows.filter(|&r| r < limit) else {
            continue;
        };
        tracing::info!(
            chunks = last - first + 1,
            rows,
            start = plan.chunks[first].start,
            end = plan.chunks[last].end,
            "token ranges beside a large partition hold under a page: read as one chunk"
        );
        let one = merged(&plan.chunks, first, last);
        plan.chunks.splice(first..=last, [one]);
    }
}

/// A clustering bound as stored in the progress table: for each value, its length (4 bytes,
/// big-endian) and its bytes.
pub fn encode_bound(values: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.iter().map(|v| v.len() + 4).sum());
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The inverse of [`encode_bound`]; `None` for bytes it did not write.
pub fn decode_bound(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        out.push(bytes.get(4..4 + len)?.to_vec());
        bytes = &bytes[4 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Vec<Vec<u8>> {
        vec![n.to_be_bytes().to_vec()]
    }

    fn sampled(keys: impl IntoIterator<Item = u32>) -> KeySample {
        let mut s = KeySample::new();
        for k in keys {
            let keep = s.wants_next();
            s.push(keep.then(|| key(k)));
        }
        s.counted_all = true;
        s
    }

    #[test]
    fn sampling_keeps_an_evenly_spaced_bounded_sample() {
        let s = sampled(0..100_000);
        assert_eq!(s.rows, 100_000);
        assert!(
            s.keys.len() >= KEPT && s.keys.len() < 2 * KEPT,
            "{}",
            s.keys.len()
        );
        assert!(s.keys.iter().all(|(pos, _)| pos.is_multiple_of(s.step)));
        assert!(s.keys.windows(2).all(|w| w[1].0 - w[0].0 == s.step));
    }

    #[test]
    fn boundaries_split_rows_evenly_and_ascend_by_value() {
        let s = sampled(0..10_000);
        let b = boundaries(&s, 4, false);
        assert_eq!(b, vec![key(2500), key(5000), key(7500)]);
        // DESC: rows arrive falling; boundaries come back rising.
        let s = sampled((0..10_000).rev());
        let b = boundaries(&s, 4, true);
        assert_eq!(b, vec![key(2499), key(4999), key(7499)]);
        // A prefix shared by many rows: repeated values are dropped.
        let s = sampled((0..10_000).map(|i| i / 5000));
        assert_eq!(boundaries(&s, 8, false), vec![key(0), key(1)]);
        assert!(boundaries(&sampled(0..10), 1, false).is_empty());
    }

    #[test]
    fn pieces_tile_the_chunk_around_the_token() {
        let chunk = Chunk {
            id: 7,
            start: -100,
            end: 100,
            replica_set: 2,
            est_partitions: 200,
            est_bytes: 2000,
            clustering: None,
        };
        let p = pieces(&chunk, 10, &[key(1), key(2)]);
        let spans: Vec<(i64, i64)> = p.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(spans, vec![(-100, 9), (9, 10), (9, 10), (9, 10), (10, 100)]);
        assert!(p.iter().all(|c| c.replica_set == 2));
        let ranges: Vec<_> = p.iter().filter_map(|c| c.clustering.clone()).collect();
        assert_eq!(
            ranges,
            vec![
                ClusteringRange {
                    lo: None,
                    hi: Some(key(1))
                },
                ClusteringRange {
                    lo: Some(key(1)),
                    hi: Some(key(2))
                },
                ClusteringRange {
                    lo: Some(key(2)),
                    hi: None
                },
            ]
        );
        // The token at the chunk's end: nothing after it; at its start + 1: nothing before.
        let p = pieces(&chunk, 100, &[key(1)]);
        assert_eq!(p.last().unwrap().end, 100);
        assert_eq!(p.len(), 3);
        let p = pieces(&chunk, -99, &[key(1)]);
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].start, p[0].end), (-100, -99));
    }

    #[test]
    fn runs_of_token_ranges_between_pieces_merge_into_one_chunk() {
        let token = |id, start, end, set| Chunk {
            id,
            start,
            end,
            replica_set: set,
            est_partitions: 10,
            est_bytes: 100,
            clustering: None,
        };
        // Three token ranges, the partition at token 30 split in two, two more ranges, then a
        // lone range after another piece.
        let mut chunks = vec![
            token(0, -100, 0, 0),
            token(1, 0, 20, 1),
            token(2, 20, 29, 2),
        ];
        chunks.extend(pieces(&token(9, 29, 30, 2), 30, &[key(5)]));
        chunks.push(token(3, 30, 60, 0));
        chunks.push(token(4, 60, 99, 1));
        let piece = Chunk {
            clustering: Some(ClusteringRange::default()),
            ..token(5, 99, 100, 1)
        };
        chunks.push(piece);
        chunks.push(token(6, 100, 200, 2));
        let runs = token_runs(&chunks);
        assert_eq!(runs, vec![(0, 2), (5, 6)]);
        let m = merged(&chunks, 0, 2);
        assert_eq!((m.start, m.end, m.replica_set), (-100, 29, 0));
        assert_eq!((m.est_partitions, m.est_bytes), (30, 300));
        assert!(m.clustering.is_none());
        let m = merged(&chunks, 5, 6);
        assert_eq!((m.start, m.end, m.replica_set), (30, 99, 0));
        assert!(token_runs(&chunks[3..5]).is_empty());
    }

    #[test]
    fn bounds_round_trip_through_their_stored_form() {
        let b = vec![vec![1, 2, 3], vec![], vec![0xff; 300]];
        assert_eq!(decode_bound(&encode_bound(&b)), Some(b));
        assert_eq!(decode_bound(&[]), Some(vec![]));
        assert_eq!(decode_bound(&[0, 0, 0, 9, 1]), None);
    }
}
