//! The plan: the Murmur3 token ring split into chunks that never straddle replica ownership,
//! sized from `system.size_estimates` and the configured split size. The wraparound range is
//! covered exactly once, as `(last, i64::MAX]` plus `(i64::MIN, first]` (Murmur3 never yields
//! `i64::MIN`).

use std::sync::Arc;

use anyhow::{Context, Result};
use scylla::client::session::Session;
use scylla::cluster::metadata::Strategy;
use scylla::cluster::Node;
use scylla::frame::response::result::TableSpec;
use scylla::routing::Token;

use crate::sizing;

/// One unit of work: the rows whose partition token lies in `(start, end]`, or, for a piece of
/// a large partition, the rows of partition token `end` (`start` is `end - 1`) whose clustering
/// key lies in `clustering` (see [`crate::partition_split`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the plan; stable for the same ring and sizes.
    pub id: u32,
    pub start: i64,
    pub end: i64,
    /// Index into [`Plan::replica_sets`].
    pub replica_set: usize,
    pub est_partitions: u64,
    pub est_bytes: u64,
    /// Set on a piece of a large partition: its clustering-key range.
    pub clustering: Option<ClusteringRange>,
}

/// A range of clustering keys, `(lo, hi]`, compared as CQL compares tuples: value by value,
/// whatever the clustering order. Each bound holds the serialized values of the leading
/// clustering columns the split uses; `None` is unbounded on that side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusteringRange {
    pub lo: Option<Vec<Vec<u8>>>,
    pub hi: Option<Vec<Vec<u8>>>,
}

/// A partition found large and how it was split (`ferry plan` and the summary show it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargePartition {
    pub token: i64,
    /// Rows counted while sampling its clustering keys (a lower bound when `counted_all` is
    /// false: sampling stops at [`crate::partition_split::MAX_SAMPLED_ROWS`]).
    pub rows: u64,
    pub counted_all: bool,
    /// Clustering-key ranges it was cut into (its chunks).
    pub ranges: usize,
    /// The clustering columns the ranges bound.
    pub columns: Vec<String>,
}

impl LargePartition {
    /// One line for `ferry plan` and `ferry migrate`.
    pub fn describe(&self) -> String {
        format!(
            "large partition, token {}: {}{} rows, read as {} clustering-key ranges of ({}) at once",
            self.token,
            if self.counted_all { "" } else { "at least " },
            self.rows,
            self.ranges,
            self.columns.join(", ")
        )
    }
}

/// A vnode range of the ring and the nodes that own it.
#[derive(Clone, Debug)]
pub struct OwnedRange<R> {
    pub start: i64,
    pub end: i64,
    pub replicas: R,
}

/// The chunks of one table.
#[derive(Clone, Debug)]
pub struct Plan {
    pub chunks: Vec<Chunk>,
    /// The distinct replica sets, each a list of nodes (first preferred).
    pub replica_sets: Vec<Vec<Arc<Node>>>,
    pub est_partitions: u64,
    pub est_bytes: u64,
    /// False when `system.size_estimates` had nothing for the table yet (it is refreshed every
    /// few minutes): chunk counts then come from the minimum alone.
    pub estimated: bool,
    /// Rows the sizing sample counted (exactly for a small table) or extrapolated.
    pub sampled_rows: Option<u64>,
    /// Partition tokens that took many rows of the sizing sample, with those rows: candidates
    /// for [`crate::partition_split`].
    pub heavy_tokens: Vec<(i64, u64)>,
    /// Partitions split into clustering-key ranges.
    pub large_partitions: Vec<LargePartition>,
}

impl Plan {
    /// A plan of these chunks and nothing measured: no replica sets (reads go where the
    /// session's policy sends them), no estimates.
    pub fn unmeasured(chunks: Vec<Chunk>) -> Self {
        Plan {
            chunks,
            replica_sets: Vec::new(),
            est_partitions: 0,
            est_bytes: 0,
            estimated: false,
            sampled_rows: None,
            heavy_tokens: Vec::new(),
            large_partitions: Vec::new(),
        }
    }
}

/// How many chunks a table gets at least.
#[derive(Clone, Copy, Debug)]
pub enum ChunkSizing {
    /// A fixed minimum (a fixed split size, or where nothing is measured).
    AtLeast(usize),
    /// From the table's sampled rows and the measured round trips ([`sizing::chunk_count`]);
    /// `fallback` when the sample cannot be read.
    Measured {
        /// The most workers the run may use (see [`sizing::Inputs::workers`]).
        workers: usize,
        fetch_rows: u64,
        source_rtt: std::time::Duration,
        target_rtt: std::time::Duration,
        fallback: usize,
    },
}

/// Joins neighbouring ranges owned by the same replicas, so a small table on one replica set
/// can be one chunk; ranges of different owners stay apart.
pub fn merge_owned<R: Clone + PartialEq>(ranges: &[OwnedRange<R>]) -> Vec<OwnedRange<R>> {
    let mut out: Vec<OwnedRange<R>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start && last.replicas == r.replicas => last.end = r.end,
            _ => out.push(r.clone()),
        }
    }
    out
}

/// Size of the whole token space, (i64::MIN, i64::MAX].
const RING: f64 = 18_446_744_073_709_551_615.0;

fn width(start: i64, end: i64) -> u128 {
    (end as i128 - start as i128) as u128
}

/// Ranges `(start, end]` covering the whole ring once, from sorted distinct vnode tokens, each
/// owned by the replicas of its end token (the wraparound pieces by the first token's).
pub fn ring_ranges(tokens: &[i64]) -> Vec<(i64, i64, i64)> {
    // (start, end, owner token)
    let mut out = Vec::with_capacity(tokens.len() + 1);
    if tokens.is_empty() {
        out.push((i64::MIN, i64::MAX, i64::MAX));
        return out;
    }
    let first = tokens[0];
    let last = tokens[tokens.len() - 1];
    if first > i64::MIN {
        out.push((i64::MIN, first, first));
    }
    for w in tokens.windows(2) {
        out.push((w[0], w[1], w[1]));
    }
    if last < i64::MAX {
        out.push((last, i64::MAX, first));
    }
    out
}

/// Splits owned ranges into chunks: about `total_bytes / split_bytes` chunks and never fewer
/// than `min_chunks`, each range getting a share proportional to its width (at least one).
pub fn split<R: Clone>(
    ranges: &[OwnedRange<R>],
    total_partitions: u64,
    total_bytes: u64,
    split_bytes: u64,
    min_chunks: usize,
) -> Vec<(Chunk, R)> {
    let by_size = total_bytes.div_ceil(split_bytes.max(1)) as usize;
    let target = by_size.max(min_chunks).max(ranges.len());
    let mut out = Vec::new();
    for r in ranges {
        let w = width(r.start, r.end);
        if w == 0 {
            continue;
        }
        let share = w as f64 / RING;
        let k = ((target as f64 * share).ceil() as u128).clamp(1, w);
        for j in 0..k {
            let lo = r.start as i128 + (w * j / k) as i128;
            let hi = r.start as i128 + (w * (j + 1) / k) as i128;
            let sub = (hi - lo) as f64 / RING;
            out.push((
                Chunk {
                    id: out.len() as u32,
                    start: lo as i64,
                    end: hi as i64,
                    replica_set: 0,
                    est_partitions: (total_partitions as f64 * sub).round() as u64,
                    est_bytes: (total_bytes as f64 * sub).round() as u64,
                    clustering: None,
                },
                r.replicas.clone(),
            ));
        }
    }
    out
}

/// Reads the ring, replica ownership and size estimates, and splits the table's token space.
pub async fn plan_table(
    session: &Session,
    keyspace: &str,
    table: &str,
    split_size_mb: u64,
    sizing: ChunkSizing,
) -> Result<Plan> {
    let ((), strategy) = tokio::try_join!(
        async {
            session
                .refresh_metadata()
                .await
                .context("refreshing cluster metadata")
        },
        crate::source::replication(session, keyspace)
    )?;
    plan_table_refreshed(
        session,
        keyspace,
        table,
        strategy.as_ref(),
        split_size_mb,
        sizing,
        None,
    )
    .await
}

/// [`plan_table`] on the ring as the session last read it and the keyspace's replication
/// ([`crate::source::replication`]) read once for all its tables: a run of many tables reads
/// the cluster's metadata once, not once per table (the driver refreshes one request at a
/// time, several round trips each: across a WAN that serialised a keyspace's planning). A
/// keyspace that is not there (`None`) is planned as the driver would route it, on each
/// token's owner alone; the schema check reports it. `partition_key`: the key's column names,
/// when the run read the table's columns already (the sizing sample then needs no read of its
/// own first).
pub async fn plan_table_refreshed(
    session: &Session,
    keyspace: &str,
    table: &str,
    strategy: Option<&Strategy>,
    split_size_mb: u64,
    sizing: ChunkSizing,
    partition_key: Option<Vec<String>>,
) -> Result<Plan> {
    let state = session.get_cluster_state();
    let strategy = strategy.unwrap_or(&Strategy::LocalStrategy);
    let spec = TableSpec::borrowed(keyspace, table);
    let mut tokens: Vec<i64> = state
        .replica_locator()
        .ring()
        .iter()
        .map(|(t, _)| t.value())
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    let mut sets: Vec<Vec<Arc<Node>>> = Vec::new();
    let mut ranges = Vec::new();
    for (start, end, owner) in ring_ranges(&tokens) {
        let replicas: Vec<Arc<Node>> = state
            .replica_locator()
            .replicas_for_token(Token::new(owner), strategy, None, &spec)
            .into_iter()
            .map(|(n, _)| n.clone())
            .collect();
        let ids: Vec<_> = replicas.iter().map(|n| n.host_id).collect();
        let idx = match sets
            .iter()
            .position(|s| s.iter().map(|n| n.host_id).collect::<Vec<_>>() == ids)
        {
            Some(i) => i,
            None => {
                sets.push(replicas);
                sets.len() - 1
            }
        };
        ranges.push(OwnedRange {
            start,
            end,
            replicas: idx,
        });
    }
    let sample = async {
        match sizing {
            ChunkSizing::Measured { fetch_rows, .. } => {
                let limit = fetch_rows.clamp(1, 100_000) as u32;
                sizing::sample_rows(session, keyspace, table, limit, partition_key)
                    .await
                    .map_err(|e| tracing::warn!(error = %format!("{e:#}"), "sizing sample"))
                    .ok()
            }
            _ => None,
        }
    };
    let ((partitions, bytes), sample) =
        tokio::try_join!(size_estimate(session, keyspace, table), async {
            Ok(sample.await)
        })?;
    let sampled_rows = sample.as_ref().map(|(s, _)| s.rows());
    let heavy_tokens = sample.map(|(_, heavy)| heavy).unwrap_or_default();
    let min_chunks = match (sizing, sampled_rows) {
        (ChunkSizing::AtLeast(n), _) => n,
        (
            ChunkSizing::Measured {
                workers,
                fetch_rows,
                source_rtt,
                target_rtt,
                ..
            },
            Some(rows),
        ) => sizing::chunk_count(&sizing::Inputs {
            rows,
            workers,
            fetch_rows,
            source_rtt,
            target_rtt,
        }),
        (ChunkSizing::Measured { fallback, .. }, None) => fallback,
    };
    let ranges = match sizing {
        ChunkSizing::Measured { .. } => merge_owned(&ranges),
        ChunkSizing::AtLeast(_) => ranges,
    };
    let chunks = split(
        &ranges,
        partitions,
        bytes,
        split_size_mb.max(1) * 1024 * 1024,
        min_chunks,
    )
    .into_iter()
    .map(|(mut c, set)| {
        c.replica_set = set;
        c
    })
    .collect();
    Ok(Plan {
        chunks,
        replica_sets: sets,
        est_partitions: partitions,
        est_bytes: bytes,
        estimated: bytes > 0,
        sampled_rows,
        heavy_tokens,
        large_partitions: Vec::new(),
    })
}

/// One node's estimate for one of its ranges, from `system.size_estimates`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeEstimate {
    pub start: i64,
    pub end: i64,
    pub partitions: u64,
    pub mean_partition_bytes: u64,
}

/// `system.size_estimates` is per node: each node records its own primary ranges only, so one
/// coordinator sees a third of a three-node ring. Every node is asked (pinned, all at once);
/// the ranges are merged, a range two nodes report counted once, and when a node does not
/// answer the total is scaled up from the share of the ring the answers cover.
async fn size_estimate(session: &Session, keyspace: &str, table: &str) -> Result<(u64, u64)> {
    // Names in the text: no prepare round trip ([`crate::schema::cql_text`]).
    let mut stmt = scylla::statement::unprepared::Statement::new(format!(
        "SELECT range_start, range_end, partitions_count, mean_partition_size \
         FROM system.size_estimates WHERE keyspace_name = {} AND table_name = {}",
        crate::schema::cql_text(keyspace),
        crate::schema::cql_text(table)
    ));
    stmt.set_request_timeout(Some(std::time::Duration::from_secs(10)));
    let nodes: Vec<Arc<Node>> = session
        .get_cluster_state()
        .get_nodes_info()
        .iter()
        .filter(|n| n.is_enabled())
        .cloned()
        .collect();
    let ask = |node: Option<Arc<Node>>| {
        let mut stmt = stmt.clone();
        if let Some(node) = node {
            stmt.set_load_balancing_policy(Some(Arc::new(crate::source::ReplicaList {
                replicas: vec![node],
            })));
        }
        async move {
            let rows = session
                .query_unpaged(stmt, &[])
                .await
                .context("reading system.size_estimates")?
                .into_rows_result()?;
            let mut out = Vec::new();
            for r in rows.rows::<(String, String, Option<i64>, Option<i64>)>()? {
                let (start, end, count, mean) = r?;
                let (Ok(start), Ok(end)) = (start.parse::<i64>(), end.parse::<i64>()) else {
                    continue;
                };
                out.push(RangeEstimate {
                    start,
                    end,
                    partitions: count.unwrap_or(0).max(0) as u64,
                    mean_partition_bytes: mean.unwrap_or(0).max(0) as u64,
                });
            }
            anyhow::Ok(out)
        }
    };
    let answers = if nodes.is_empty() {
        vec![ask(None).await]
    } else {
        futures::future::join_all(nodes.into_iter().map(|n| ask(Some(n)))).await
    };
    let mut ranges = Vec::new();
    let mut first_err = None;
    for a in answers {
        match a {
            Ok(r) => ranges.extend(r),
            Err(e) => {
                tracing::debug!("a node's size estimates could not be read: {e:#}");
                first_err.get_or_insert(e);
            }
        }
    }
    if ranges.is_empty() {
        if let Some(e) = first_err {
            return Err(e.context("reading system.size_estimates"));
        }
    }
    Ok(merge_estimates(&ranges))
}

/// Total partitions and bytes from per-range estimates of several nodes: each distinct range
/// once (the largest report wins), scaled up by the share of the ring they cover when some
/// node's ranges are missing.
pub fn merge_estimates(ranges: &[RangeEstimate]) -> (u64, u64) {
    let mut distinct: std::collections::BTreeMap<(i64, i64), RangeEstimate> =
        std::collections::BTreeMap::new();
    for r in ranges {
        let e = distinct.entry((r.start, r.end)).or_insert(*r);
        if r.partitions > e.partitions {
            *e = *r;
        }
    }
    let mut partitions = 0u64;
    let mut bytes = 0u64;
    let mut covered = 0f64;
    for r in distinct.values() {
        partitions += r.partitions;
        bytes += r.partitions * r.mean_partition_bytes;
        // (start, end] wraps past i64::MAX when end <= start.
        let w = if r.end > r.start {
            width(r.start, r.end) as f64
        } else {
            RING - width(r.end, r.start) as f64
        };
        covered += w;
    }
    let share = (covered / RING).clamp(0.0, 1.0);
    if share > 0.0 && share < 0.999 {
        return (
            (partitions as f64 / share).round() as u64,
            (bytes as f64 / share).round() as u64,
        );
    }
    (partitions, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn covered(chunks: &[(Chunk, usize)]) -> u128 {
        chunks.iter().map(|(c, _)| width(c.start, c.end)).sum()
    }

    fn owned(tokens: &[i64]) -> Vec<OwnedRange<usize>> {
        ring_ranges(tokens)
            .into_iter()
            .enumerate()
            .map(|(i, (start, end, _))| OwnedRange {
                start,
                end,
                replicas: i,
            })
            .collect()
    }

    #[test]
    fn wraparound_is_covered_once() {
        let r = ring_ranges(&[-100, 0, 100]);
        assert_eq!(
            r,
            vec![
                (i64::MIN, -100, -100),
                (-100, 0, 0),
                (0, 100, 100),
                (100, i64::MAX, -100)
            ]
        );
        assert_eq!(ring_ranges(&[]), vec![(i64::MIN, i64::MAX, i64::MAX)]);
    }

    #[test]
    fn estimates_merge_per_range_and_scale_to_the_ring() {
        let half = |start: i64, end: i64, partitions: u64| RangeEstimate {
            start,
            end,
            partitions,
            mean_partition_bytes: 100,
        };
        // Two nodes, each primary for half of the ring (one range wraps round).
        let both = [
            half(i64::MIN / 2, i64::MAX / 2, 50),
            half(i64::MAX / 2, i64::MIN / 2, 50),
        ];
        assert_eq!(merge_estimates(&both), (100, 10_000));
        // The same range reported twice counts once.
        let twice = [both[0], both[0], both[1]];
        assert_eq!(merge_estimates(&twice), (100, 10_000));
        // One node missing: its half is extrapolated from the other's.
        assert_eq!(merge_estimates(&both[..1]), (100, 10_000));
        assert_eq!(merge_estimates(&[]), (0, 0));
    }

    #[test]
    fn split_count_follows_size_and_minimum() {
        let ranges = owned(&[0]);
        // 10 GiB at 256 MiB per split → 40 chunks.
        let c = split(&ranges, 1000, 10 << 30, 256 << 20, 1);
        assert_eq!(c.len(), 40);
        let c = split(&ranges, 0, 0, 256 << 20, 64);
        assert_eq!(c.len(), 64);
        assert_eq!(covered(&c), u64::MAX as u128);
    }

    #[test]
    fn neighbours_of_one_owner_merge_others_stay_apart() {
        let r = |start, end, replicas| OwnedRange {
            start,
            end,
            replicas,
        };
        let one = merge_owned(&[r(i64::MIN, 0, 0), r(0, 10, 0), r(10, i64::MAX, 0)]);
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].start, one[0].end), (i64::MIN, i64::MAX));
        // A 1K-row table on one node: one chunk.
        assert_eq!(split(&one, 10, 1000, 64 << 20, 1).len(), 1);
        let two = merge_owned(&[r(i64::MIN, 0, 0), r(0, 10, 1), r(10, i64::MAX, 0)]);
        assert_eq!(two.len(), 3);
    }

    proptest! {
        /// Chunks tile (i64::MIN, i64::MAX] exactly: contiguous, no overlap, no gap, and each
        /// lies inside one owned range.
        #[test]
        fn chunks_tile_the_ring(mut tokens in prop::collection::vec(any::<i64>(), 0..40),
                                min_chunks in 1usize..300,
                                bytes in 0u64..(1 << 40)) {
            tokens.retain(|t| *t != i64::MIN);
            tokens.sort_unstable();
            tokens.dedup();
            let ranges = owned(&tokens);
            let chunks = split(&ranges, bytes / 100, bytes, 64 << 20, min_chunks);
            prop_assert!(chunks.len() >= min_chunks.min(u64::MAX as usize));
            prop_assert_eq!(chunks[0].0.start, i64::MIN);
            prop_assert_eq!(chunks[chunks.len() - 1].0.end, i64::MAX);
            for w in chunks.windows(2) {
                prop_assert_eq!(w[0].0.end, w[1].0.start);
                prop_assert!(w[0].0.start < w[0].0.end);
            }
            for (c, owner) in &chunks {
                let r = &ranges[*owner];
                prop_assert!(r.start <= c.start && c.end <= r.end, "chunk {:?} outside its range", c);
            }
            for (i, (c, _)) in chunks.iter().enumerate() {
                prop_assert_eq!(c.id as usize, i);
            }
        }
    }
}
