//! How many chunks a table is cut into, from what is measured before its first row moves: its
//! rows (one page of partition tokens read in token order: the whole table when it is small, an
//! extrapolation from the share of the ring the page covered when not) and the round trips to
//! both sides. [`chunk_count`] is pure; [`sample_rows`] is the one probe.
//!
//! A chunk has fixed costs — target round trips (its COPY's end, done mark and COMMIT, with the
//! next lease, are one flight now; weighed as three, the cost before they were pipelined, which
//! keeps plans as they were) and a source round trip before its first page — and a table's
//! last chunks are its tail. Small chunks multiply the fixed costs; big ones leave workers idle and lengthen the
//! tail. So a chunk is at least one page, big enough that its fixed costs stay under a quarter of
//! its streaming time, and a table big enough gets at least one chunk per worker the run may use
//! (across a WAN the controller raises the workers; chunks are what they work on).

use std::time::Duration;

use anyhow::{Context, Result};
use scylla::client::session::Session;

use crate::schema::cql_ident;

/// Rows one worker streams per second on loopback (encode + COPY on the test bed's 2 cores,
/// 16 workers sharing ~90K rows/s gives ~6K each; one worker alone reaches ~20K). Used only to
/// weigh a chunk's round trips against its streaming time.
const WORKER_ROWS_PER_SEC: f64 = 20_000.0;

/// A chunk's fixed costs stay under this share of its streaming time.
const OVERHEAD_SHARE: f64 = 0.25;

/// What sizing measured for one table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inputs {
    /// The table's rows (exact when the sample saw the whole table).
    pub rows: u64,
    /// Workers the run may use (the adaptive controller's ceiling, or the fixed count).
    pub workers: usize,
    /// Rows per page (`cassandra.fetchSizeInRows`).
    pub fetch_rows: u64,
    pub source_rtt: Duration,
    pub target_rtt: Duration,
}

/// Chunks for one table: the larger of what keeps each chunk's round trips under a quarter of
/// its time and what gives every worker a chunk (never a chunk under one page), at least one.
pub fn chunk_count(i: &Inputs) -> usize {
    if i.rows == 0 {
        return 1;
    }
    let fetch = i.fetch_rows.max(1) as f64;
    let source = i.source_rtt.as_secs_f64().max(1e-4);
    let target = i.target_rtt.as_secs_f64().max(1e-4);
    // A worker reads at most a page per source round trip (the next page is fetched while the
    // current one is sent).
    let per_worker = WORKER_ROWS_PER_SEC.min(fetch / source);
    let overhead = 3.0 * target + source;
    let rows_per_chunk = fetch.max(per_worker * overhead / OVERHEAD_SHARE);
    let rows = i.rows as f64;
    let by_overhead = (rows / rows_per_chunk).ceil() as usize;
    let by_workers = i.workers.min((rows / fetch).ceil() as usize);
    by_overhead.max(by_workers).max(1)
}

/// What one page of a table's partition tokens says about its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// The page held the whole table.
    Exact(u64),
    /// The page was full: `rows` rows covered the ring from its start up to `last_token`.
    Partial { rows: u64, last_token: i64 },
}

impl Sample {
    /// Rows in the table: exact, or extrapolated from the share of the ring the page covered
    /// (Murmur3 spreads partitions evenly over it).
    pub fn rows(&self) -> u64 {
        match *self {
            Sample::Exact(n) => n,
            Sample::Partial { rows, last_token } => {
                let covered = (last_token as i128 - i64::MIN as i128) as f64;
                let ring = u64::MAX as f64;
                ((rows as f64) * ring / covered.max(1.0)).round() as u64
            }
        }
    }
}

/// Reads up to `limit` rows' partition tokens of `keyspace.table` in token order (tokens only,
/// a few bytes a row), after its partition key columns from `system_schema` (the session's
/// schema metadata is not relied on: it may not be fetched). Also returns the tokens that took
/// a quarter of the page or more ([`heavy_tokens`]): partitions that may be large.
pub async fn sample_rows(
    session: &Session,
    keyspace: &str,
    table: &str,
    limit: u32,
    partition_key: Option<Vec<String>>,
) -> Result<(Sample, Vec<(i64, u64)>)> {
    // The key's names, unless the run read the table's columns already.
    let partition_key = match partition_key {
        Some(k) => k,
        None => crate::schema::partition_key_of(
            &crate::schema::read_columns(session, keyspace, Some(table))
                .await?
                .remove(table)
                .unwrap_or_default(),
        ),
    };
    anyhow::ensure!(
        !partition_key.is_empty(),
        "{keyspace}.{table} has no partition key"
    );
    let key: Vec<String> = partition_key.iter().map(|c| cql_ident(c)).collect();
    let cql = format!(
        "SELECT token({}) FROM {}.{} LIMIT {limit}",
        key.join(", "),
        cql_ident(keyspace),
        cql_ident(table)
    );
    let mut statement = scylla::statement::Statement::new(cql);
    statement.set_page_size(limit.min(i32::MAX as u32) as i32);
    let (result, _) = session
        .query_single_page(statement, (), scylla::response::PagingState::start())
        .await
        .with_context(|| format!("sampling {keyspace}.{table}"))?;
    let rows = result.into_rows_result()?;
    let tokens: Vec<i64> = rows
        .rows::<(i64,)>()?
        .map(|r| r.map(|(t,)| t))
        .collect::<Result<_, _>>()?;
    let n = tokens.len() as u64;
    let sample = match tokens.last() {
        Some(&last) if n >= u64::from(limit) => Sample::Partial {
            rows: n,
            last_token: last,
        },
        _ => Sample::Exact(n),
    };
    Ok((sample, heavy_tokens(&tokens, (u64::from(limit) / 4).max(2))))
}

/// Tokens that repeat at least `at_least` times in a sample read in token order (a partition's
/// rows come together), with their counts.
pub fn heavy_tokens(tokens: &[i64], at_least: u64) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let run = tokens[i..].iter().take_while(|&&t| t == tokens[i]).count();
        if run as u64 >= at_least {
            out.push((tokens[i], run as u64));
        }
        i += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(rows: u64, rtt_ms: u64) -> Inputs {
        Inputs {
            rows,
            workers: 16,
            fetch_rows: 5000,
            source_rtt: Duration::from_millis(rtt_ms),
            target_rtt: Duration::from_millis(rtt_ms),
        }
    }

    #[test]
    fn a_small_table_is_one_chunk_at_any_distance() {
        for rtt in [0, 1, 50, 200] {
            assert_eq!(chunk_count(&inputs(1000, rtt)), 1, "rtt {rtt} ms");
            assert_eq!(chunk_count(&inputs(0, rtt)), 1);
            assert_eq!(chunk_count(&inputs(5000, rtt)), 1);
        }
    }

    #[test]
    fn chunk_count_grows_with_the_table_and_shrinks_with_distance() {
        let mut last = 0;
        for rows in [1_000, 30_000, 300_000, 1_000_000, 10_000_000] {
            let n = chunk_count(&inputs(rows, 0));
            assert!(n >= last, "{rows} rows: {n} chunks < {last}");
            last = n;
        }
        // Loopback: one page per chunk, so a 1M-row table is 200 chunks.
        assert_eq!(chunk_count(&inputs(1_000_000, 0)), 200);
        // 100 ms each way (200 ms round trip): fewer, bigger chunks, but one per worker.
        assert_eq!(chunk_count(&inputs(300_000, 200)), 16);
        assert!(chunk_count(&inputs(10_000_000, 200)) < chunk_count(&inputs(10_000_000, 0)));
        // Never fewer chunks than workers for a table that fills them, never a chunk under a page.
        assert_eq!(chunk_count(&inputs(30_000, 200)), 6);
    }

    #[test]
    fn heavy_tokens_are_runs_of_one_token() {
        let tokens = [1, 2, 2, 2, 3, 4, 4, 4, 4];
        assert_eq!(heavy_tokens(&tokens, 3), vec![(2, 3), (4, 4)]);
        assert_eq!(heavy_tokens(&tokens, 4), vec![(4, 4)]);
        assert!(heavy_tokens(&[], 1).is_empty());
    }

    #[test]
    fn a_full_page_extrapolates_from_the_ring_share_it_covered() {
        assert_eq!(Sample::Exact(1000).rows(), 1000);
        // 5000 rows in the first quarter of the ring → about 20000.
        let quarter = (i64::MIN as i128 + (u64::MAX as i128) / 4) as i64;
        let est = Sample::Partial {
            rows: 5000,
            last_token: quarter,
        }
        .rows();
        assert!((19_990..=20_010).contains(&est), "{est}");
    }
}
