//! The Cassandra side of every read: which replicas serve a token range (`cassandra.localDC`
//! first, a remote data centre only when `ferry.remoteDcReads=true`), the range statement, and
//! paged fetches under one retry policy. `ferry migrate` (the pipeline), `ferry validate` and
//! `ferry diagnose` all read through here, so a page is routed and retried the same way by all.
//!
//! Architecture invariant: nothing else in ferry builds a range statement, picks a replica for
//! a page or sleeps between source retries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::cluster::metadata::Strategy;
use scylla::cluster::{ClusterState, Node, NodeRef};
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::load_balancing::{FallbackPlan, LoadBalancingPolicy, RoutingInfo};
use scylla::response::query_result::QueryResult;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::routing::Shard;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;

use crate::error::ErrorKind;
use crate::plan::{ClusteringRange, Plan};
use crate::schema::SourceTable;

/// Which data centres may serve reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    /// `cassandra.localDC`; `None` reads from any replica.
    pub local_dc: Option<String>,
    /// `ferry.remoteDcReads`: after the local replicas, a range may be read from another data
    /// centre's (every such page crosses the WAN).
    pub remote_dc_reads: bool,
}

impl Routing {
    /// Whether a node in `dc` may serve a read.
    pub fn reads_from(&self, dc: Option<&str>) -> bool {
        match &self.local_dc {
            None => true,
            Some(local) => self.remote_dc_reads || dc == Some(local.as_str()),
        }
    }

    /// A range's replicas in reading order: the local data centre's, then (when allowed) the
    /// others'. The ring's order is kept within each group, so the range's primary owner comes
    /// first and ranges spread over the nodes.
    pub fn order(&self, replicas: &[Arc<Node>]) -> Vec<Arc<Node>> {
        let Some(local) = &self.local_dc else {
            return replicas.to_vec();
        };
        let is_local = |n: &Arc<Node>| n.datacenter.as_deref() == Some(local.as_str());
        let mut out: Vec<Arc<Node>> = replicas.iter().filter(|n| is_local(n)).cloned().collect();
        if self.remote_dc_reads {
            out.extend(replicas.iter().filter(|n| !is_local(n)).cloned());
        }
        out
    }
}

/// The cluster's data centres, each with its nodes' addresses.
pub fn datacenters(state: &ClusterState) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in state.get_nodes_info() {
        out.entry(n.datacenter.clone().unwrap_or_else(|| "(unknown)".into()))
            .or_default()
            .push(n.address.to_string());
    }
    out
}

/// A keyspace's replication, read from `system_schema.keyspaces` (one round trip): the
/// session fetches no schema metadata as it connects (six sequential round trips in the
/// driver, [`crate::cassandra::connect`]), so the replicas of a token are found with the
/// strategy read here. `None` when the keyspace is not there. Parsed as the driver parses it.
pub async fn replication(session: &Session, keyspace: &str) -> anyhow::Result<Option<Strategy>> {
    use anyhow::Context;
    let rows = session
        .query_unpaged(
            format!(
                "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = {}",
                crate::schema::cql_text(keyspace)
            ),
            &[],
        )
        .await
        .context("reading system_schema.keyspaces")?
        .into_rows_result()?;
    Ok(rows
        .maybe_first_row::<(std::collections::HashMap<String, String>,)>()?
        .map(|(map,)| strategy(map)))
}

/// A `replication` map as a strategy, as the driver reads it: SimpleStrategy with its factor,
/// NetworkTopologyStrategy with a factor per data centre, LocalStrategy, and anything else
/// (or a factor that is not a number) as `Other`.
fn strategy(mut map: std::collections::HashMap<String, String>) -> Strategy {
    let class = map.remove("class").unwrap_or_default();
    let rf = |v: &str| v.parse::<usize>().ok();
    match class.rsplit('.').next().unwrap_or("") {
        "SimpleStrategy" => match map.get("replication_factor").and_then(|v| rf(v)) {
            Some(replication_factor) => Strategy::SimpleStrategy { replication_factor },
            None => Strategy::Other {
                name: class,
                data: map,
            },
        },
        "NetworkTopologyStrategy" if map.values().all(|v| rf(v).is_some()) => {
            Strategy::NetworkTopologyStrategy {
                datacenter_repfactors: map
                    .into_iter()
                    .filter_map(|(dc, v)| rf(&v).map(|n| (dc, n)))
                    .collect(),
            }
        }
        "LocalStrategy" => Strategy::LocalStrategy,
        _ => Strategy::Other {
            name: class,
            data: map,
        },
    }
}

/// Source errors a user fixes in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error(
        "cassandra.localDC={given}: the cluster has no such data centre; its data centres are {} — set cassandra.localDC to one of them",
        .known.join(", ")
    )]
    UnknownDatacenter { given: String, known: Vec<String> },
}

/// Checks `cassandra.localDC` against the ring the session sees.
pub fn check_routing(session: &Session, routing: &Routing) -> Result<(), RoutingError> {
    let Some(local) = &routing.local_dc else {
        return Ok(());
    };
    let dcs = datacenters(&session.get_cluster_state());
    if dcs.contains_key(local) {
        return Ok(());
    }
    Err(RoutingError::UnknownDatacenter {
        given: local.clone(),
        known: dcs.into_keys().collect(),
    })
}

/// Pins a statement to its token range's replicas, in order, falling back along the list: the
/// driver cannot route a token-range scan by itself. A replica the driver holds no connection
/// to (a dead node) is passed over at once.
#[derive(Debug)]
pub struct ReplicaList {
    pub replicas: Vec<Arc<Node>>,
}

impl ReplicaList {
    fn first_up(&self) -> Option<&Arc<Node>> {
        self.replicas
            .iter()
            .find(|n| n.is_enabled() && n.is_connected())
            .or_else(|| self.replicas.iter().find(|n| n.is_enabled()))
    }
}

impl LoadBalancingPolicy for ReplicaList {
    fn pick<'a>(
        &'a self,
        _: &'a RoutingInfo,
        _: &'a ClusterState,
    ) -> Option<(NodeRef<'a>, Option<Shard>)> {
        self.first_up().map(|n| (n, None))
    }

    /// The other replicas the driver holds connections to. A dead one is left out: the
    /// driver's retry after a coordinator's "unavailable" would otherwise end on that node's
    /// broken pool and hide the real error.
    fn fallback<'a>(&'a self, _: &'a RoutingInfo, _: &'a ClusterState) -> FallbackPlan<'a> {
        let first = self.first_up().map(|n| n.host_id);
        let any_up = self
            .replicas
            .iter()
            .any(|n| n.is_enabled() && n.is_connected());
        Box::new(
            self.replicas
                .iter()
                .filter(move |n| {
                    Some(n.host_id) != first && n.is_enabled() && (n.is_connected() || !any_up)
                })
                .map(|n| (n, None)),
        )
    }

    fn name(&self) -> String {
        "ferry::ReplicaList".to_string()
    }
}

/// The one retry policy for source reads: a page that fails in a way another attempt can fix
/// (a replica unavailable, overloaded, a broken connection) is retried with the same paging
/// state — no row is seen twice — up to `retries` times, waiting `min`, `2·min`, … up to `max`
/// (`cassandra.retryCount`, `cassandra.connection.reconnectionDelayMs.min/.max`). Timeouts are
/// not retried here: the caller splits the range first (see the pipeline).
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub retries: u32,
    pub min: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.min.saturating_mul(factor).min(self.max)
    }
}

/// What a failed page read means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Not enough replicas alive for the consistency level.
    Unavailable,
    /// The server or the client timed out.
    Timeout,
    /// Another attempt, maybe on another replica, can succeed.
    Transient,
    /// Nothing a retry fixes (a bad statement, a missing table, a refused permission).
    Fatal,
}

/// Classifies a driver error by its kind, never by its text (see [`crate::error::ErrorKind`]):
/// timeouts split the range before another attempt, an unavailable consistency level stops the
/// run, other retryable kinds are retried, the rest is fatal.
pub fn classify(e: &ExecutionError) -> FailureKind {
    match ErrorKind::of_cql(e) {
        ErrorKind::Unavailable => FailureKind::Unavailable,
        ErrorKind::Timeout => FailureKind::Timeout,
        k if k.retryable() => FailureKind::Transient,
        _ => FailureKind::Fatal,
    }
}

/// A page read that failed after the retry policy was spent.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "Cassandra cannot meet consistency {level} for token range ({start}, {end}] of {table}: \
         {alive} of the {required} replicas it needs are up{down} — start the node again (or lower \
         cassandra.consistencyLevel), then rerun the same command to resume"
    )]
    Unavailable {
        level: String,
        start: i64,
        end: i64,
        table: String,
        required: i32,
        alive: i32,
        /// ", down: 127.0.0.12:9042 (dc1)" or empty.
        down: String,
    },
    #[error("reading a piece of the large partition with token {token} of {table}: {what}")]
    Config {
        table: String,
        token: i64,
        what: String,
    },
    #[error("reading token range ({start}, {end}] of {table} from Cassandra: {source}")]
    Failed {
        kind: FailureKind,
        start: i64,
        end: i64,
        table: String,
        source: Box<ExecutionError>,
    },
}

impl ReadError {
    pub fn kind(&self) -> FailureKind {
        match self {
            ReadError::Unavailable { .. } => FailureKind::Unavailable,
            ReadError::Config { .. } => FailureKind::Fatal,
            ReadError::Failed { kind, .. } => *kind,
        }
    }
}

/// One page of a range scan.
pub struct Page {
    pub result: QueryResult,
    pub next: PagingStateResponse,
    /// The node that served it.
    pub coordinator: std::net::SocketAddr,
    /// Served by a replica other than the range's first choice (that one was down or failed).
    pub failed_over: bool,
    /// Attempts this page took beyond the first.
    pub retries: u32,
}

/// How to read: the typed `cassandra.*` read settings.
#[derive(Clone, Debug)]
pub struct ReadSettings {
    pub page_rows: i32,
    pub consistency: Consistency,
    pub read_timeout: Duration,
    pub routing: Routing,
    pub retry: RetryPolicy,
}

/// Token-range reads of one table: the range statement prepared once, pinned per replica set
/// of the plan in the routing's order.
pub struct RangeReader<'a> {
    session: &'a Session,
    /// One per replica set of the plan, in [`Routing::order`].
    routes: Vec<Vec<Arc<Node>>>,
    statements: Vec<PreparedStatement>,
    retry: RetryPolicy,
    table: String,
    consistency: Consistency,
    settings: ReadSettings,
    /// The statements of a large partition's pieces ([`SourceTable::slice_select`]), bounded
    /// below, above, and on both sides, with the bounds' width; prepared when first used.
    slice_cql: Option<([String; 3], usize)>,
    slices: tokio::sync::OnceCell<[PreparedStatement; 3]>,
}

/// A value already in its CQL wire form (a clustering bound read from the source), bound as it
/// is: its column's type is the one it was read from.
struct Raw<'v>(&'v [u8]);

impl scylla::serialize::value::SerializeValue for Raw<'_> {
    fn serialize<'b>(
        &self,
        _: &scylla::frame::response::result::ColumnType,
        writer: scylla::serialize::writers::CellWriter<'b>,
    ) -> Result<
        scylla::serialize::writers::WrittenCellProof<'b>,
        scylla::serialize::SerializationError,
    > {
        writer
            .set_value(self.0)
            .map_err(scylla::serialize::SerializationError::new)
    }
}

fn configure(s: &mut PreparedStatement, settings: &ReadSettings) {
    s.set_page_size(settings.page_rows.max(1));
    s.set_consistency(settings.consistency);
    s.set_is_idempotent(true);
    s.set_request_timeout(Some(settings.read_timeout));
}

impl<'a> RangeReader<'a> {
    /// Prepares `cql` (a statement taking the range's two bounds, `(start, end]`).
    pub async fn new(
        session: &'a Session,
        cql: String,
        table: String,
        plan: &Plan,
        settings: &ReadSettings,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let base = session
            .prepare(cql)
            .await
            .with_context(|| format!("preparing the scan of {table}"))?;
        Ok(Self::prepared(session, base, table, plan, settings))
    }

    /// A reader of a scan prepared already (as [`RangeReader::new`] prepares it).
    pub fn prepared(
        session: &'a Session,
        mut base: PreparedStatement,
        table: String,
        plan: &Plan,
        settings: &ReadSettings,
    ) -> Self {
        configure(&mut base, settings);
        let routes: Vec<Vec<Arc<Node>>> = plan
            .replica_sets
            .iter()
            .map(|set| settings.routing.order(set))
            .collect();
        let mut statements: Vec<PreparedStatement> = routes
            .iter()
            .map(|replicas| {
                let mut s = base.clone();
                if !replicas.is_empty() {
                    s.set_load_balancing_policy(Some(Arc::new(ReplicaList {
                        replicas: replicas.clone(),
                    })));
                }
                s
            })
            .collect();
        if statements.is_empty() {
            statements.push(base);
        }
        RangeReader {
            session,
            routes,
            statements,
            retry: settings.retry,
            table,
            consistency: settings.consistency,
            settings: settings.clone(),
            slice_cql: None,
            slices: tokio::sync::OnceCell::new(),
        }
    }

    /// Reads rows of `table` by primary key ([`SourceTable::key_select`]), routed to the key's
    /// replicas by the session's policy, retried as range pages are.
    pub async fn for_keys(
        session: &'a Session,
        table: &SourceTable,
        settings: &ReadSettings,
    ) -> anyhow::Result<Self> {
        let plan = Plan::unmeasured(Vec::new());
        Self::new(
            session,
            table.key_select(),
            table.qualified(),
            &plan,
            settings,
        )
        .await
    }

    /// The row whose primary key cells (in column order, CQL wire form) are `key`, from a
    /// reader made by [`Self::for_keys`]: a page of one row, or none when it is gone.
    pub async fn key_page(&self, key: &[Vec<u8>]) -> Result<Page, ReadError> {
        let values: Vec<Raw<'_>> = key.iter().map(|k| Raw(k.as_slice())).collect();
        self.run(
            usize::MAX,
            &self.statements[0],
            &values,
            (0, 0),
            PagingState::start(),
        )
        .await
    }

    /// The node a page of replica set `set` goes to first (`host:port`), for error lines.
    pub fn endpoint(&self, set: usize) -> String {
        self.routes
            .get(set)
            .and_then(|r| r.iter().find(|n| n.is_connected()).or(r.first()))
            .map(|n| n.address.to_string())
            .unwrap_or_else(|| "the contact points".to_string())
    }

    /// Lets this reader read the pieces of `table`'s large partitions ([`Self::slice_page`]).
    pub fn with_slices(mut self, table: &SourceTable) -> Self {
        let width = table.split_columns().0.len();
        if let (Some(lo), Some(hi), Some(both)) = (
            table.slice_select(width, true, false),
            table.slice_select(width, false, true),
            table.slice_select(width, true, true),
        ) {
            self.slice_cql = Some(([lo, hi, both], width));
        }
        self
    }

    /// Reads one page of a chunk: token range `(start, end]`, or, for a piece of a large
    /// partition (`clustering` set), partition token `end`'s rows in that clustering range.
    pub async fn chunk_page(
        &self,
        set: usize,
        page_rows: Option<i32>,
        (start, end): (i64, i64),
        clustering: Option<&ClusteringRange>,
        paging: PagingState,
    ) -> Result<Page, ReadError> {
        match clustering {
            Some(range) => self.slice_page(set, page_rows, end, range, paging).await,
            None => self.page(set, page_rows, (start, end), paging).await,
        }
    }

    /// Reads one page of partition token `token`'s rows whose clustering key lies in `range`
    /// (a piece of a large partition), on replica set `set`, retried under the policy.
    pub async fn slice_page(
        &self,
        set: usize,
        page_rows: Option<i32>,
        token: i64,
        range: &ClusteringRange,
        paging: PagingState,
    ) -> Result<Page, ReadError> {
        let tokens = (token.saturating_sub(1), token);
        let fatal = |what: String| ReadError::Config {
            table: self.table.clone(),
            token,
            what,
        };
        let Some((cql, width)) = &self.slice_cql else {
            return Err(fatal(
                "the table has no clustering columns to split on".into(),
            ));
        };
        let stmts = self
            .slices
            .get_or_try_init(|| async {
                let prepare = |cql: &String| {
                    let cql = cql.clone();
                    async move {
                        let mut s = self.session.prepare(cql).await?;
                        configure(&mut s, &self.settings);
                        Ok::<_, scylla::errors::PrepareError>(s)
                    }
                };
                let (a, b, c) =
                    tokio::try_join!(prepare(&cql[0]), prepare(&cql[1]), prepare(&cql[2]))?;
                Ok::<_, scylla::errors::PrepareError>([a, b, c])
            })
            .await
            .map_err(|e| fatal(format!("preparing the partition's range reads: {e}")))?;
        let which = match (&range.lo, &range.hi) {
            (Some(_), None) => 0,
            (None, Some(_)) => 1,
            (Some(_), Some(_)) => 2,
            (None, None) => return Err(fatal("a piece of a partition without bounds".into())),
        };
        let bounds = range.lo.iter().chain(range.hi.iter());
        if bounds.clone().any(|b| b.len() != *width) {
            return Err(fatal(format!(
                "a stored clustering bound does not have the {width} values the table's clustering key gives — the plan was made for another table; rerun with --fresh"
            )));
        }
        let token_bytes = token.to_be_bytes();
        let mut values: Vec<Raw<'_>> = vec![Raw(&token_bytes)];
        values.extend(bounds.flatten().map(|v| Raw(v.as_slice())));
        let i = set.min(self.statements.len() - 1);
        let mut stmt = stmts[which].clone();
        if let Some(rows) = page_rows {
            stmt.set_page_size(rows.max(1));
        }
        if let Some(replicas) = self.routes.get(i).filter(|r| !r.is_empty()) {
            stmt.set_load_balancing_policy(Some(Arc::new(ReplicaList {
                replicas: replicas.clone(),
            })));
        }
        self.run(i, &stmt, &values, tokens, paging).await
    }

    /// Reads one page of `(start, end]` on replica set `set`, `page_rows` rows at most,
    /// retried under the policy.
    pub async fn page(
        &self,
        set: usize,
        page_rows: Option<i32>,
        (start, end): (i64, i64),
        paging: PagingState,
    ) -> Result<Page, ReadError> {
        let i = set.min(self.statements.len() - 1);
        let stmt = match page_rows {
            Some(rows) => {
                let mut s = self.statements[i].clone();
                s.set_page_size(rows.max(1));
                std::borrow::Cow::Owned(s)
            }
            None => std::borrow::Cow::Borrowed(&self.statements[i]),
        };
        self.run(i, &stmt, &(start, end), (start, end), paging)
            .await
    }

    /// Executes one page of `stmt` (routed to replica set `i`) under the retry policy.
    async fn run(
        &self,
        i: usize,
        stmt: &PreparedStatement,
        values: &(impl scylla::serialize::row::SerializeRow + Sync),
        (start, end): (i64, i64),
        paging: PagingState,
    ) -> Result<Page, ReadError> {
        let mut attempt = 0u32;
        loop {
            match self
                .session
                .execute_single_page(stmt, values, paging.clone())
                .await
            {
                Ok((result, next)) => {
                    let coord = result.request_coordinator();
                    let first = self.routes.get(i).and_then(|r| r.first());
                    let failed_over = first.is_some_and(|f| f.host_id != coord.node().host_id);
                    let coordinator = coord.connection_address();
                    return Ok(Page {
                        result,
                        next,
                        coordinator,
                        failed_over,
                        retries: attempt,
                    });
                }
                Err(e) => {
                    let kind = classify(&e);
                    let retryable =
                        matches!(kind, FailureKind::Unavailable | FailureKind::Transient);
                    if retryable && attempt < self.retry.retries {
                        attempt += 1;
                        tracing::warn!(
                            table = %self.table, start, end, attempt,
                            "source read failed, retrying the page: {e}"
                        );
                        tokio::time::sleep(self.retry.delay(attempt)).await;
                        continue;
                    }
                    return Err(self.error(i, (start, end), kind, e));
                }
            }
        }
    }

    fn error(
        &self,
        set: usize,
        (start, end): (i64, i64),
        kind: FailureKind,
        e: ExecutionError,
    ) -> ReadError {
        if let ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Unavailable {
                required, alive, ..
            },
            _,
        )) = &e
        {
            let down: Vec<String> = self
                .routes
                .get(set)
                .into_iter()
                .flatten()
                .filter(|n| !n.is_connected())
                .map(|n| {
                    format!(
                        "{} ({})",
                        n.address,
                        n.datacenter.as_deref().unwrap_or("unknown data centre")
                    )
                })
                .collect();
            return ReadError::Unavailable {
                level: consistency_name(self.consistency).to_string(),
                start,
                end,
                table: self.table.clone(),
                required: *required,
                alive: *alive,
                down: if down.is_empty() {
                    String::new()
                } else {
                    format!(", down: {}", down.join(", "))
                },
            };
        }
        ReadError::Failed {
            kind,
            start,
            end,
            table: self.table.clone(),
            source: Box::new(e),
        }
    }
}

/// The level as `cassandra.consistencyLevel` spells it.
pub fn consistency_name(c: Consistency) -> &'static str {
    match c {
        Consistency::Any => "ANY",
        Consistency::One => "ONE",
        Consistency::Two => "TWO",
        Consistency::Three => "THREE",
        Consistency::Quorum => "QUORUM",
        Consistency::All => "ALL",
        Consistency::LocalQuorum => "LOCAL_QUORUM",
        Consistency::EachQuorum => "EACH_QUORUM",
        Consistency::LocalOne => "LOCAL_ONE",
        Consistency::Serial => "SERIAL",
        Consistency::LocalSerial => "LOCAL_SERIAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_maps_read_as_the_driver_reads_them() {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        assert_eq!(
            strategy(map(&[
                ("class", "org.apache.cassandra.locator.SimpleStrategy"),
                ("replication_factor", "3")
            ])),
            Strategy::SimpleStrategy {
                replication_factor: 3
            }
        );
        assert_eq!(
            strategy(map(&[
                (
                    "class",
                    "org.apache.cassandra.locator.NetworkTopologyStrategy"
                ),
                ("dc1", "2"),
                ("dc2", "1")
            ])),
            Strategy::NetworkTopologyStrategy {
                datacenter_repfactors: [("dc1".to_string(), 2), ("dc2".to_string(), 1)].into()
            }
        );
        assert_eq!(
            strategy(map(&[(
                "class",
                "org.apache.cassandra.locator.LocalStrategy"
            )])),
            Strategy::LocalStrategy
        );
        // A factor that is not a number, or a class the driver does not know: `Other`.
        assert!(matches!(
            strategy(map(&[
                ("class", "SimpleStrategy"),
                ("replication_factor", "x")
            ])),
            Strategy::Other { .. }
        ));
        assert!(matches!(
            strategy(map(&[("class", "com.example.EverywhereStrategy")])),
            Strategy::Other { name, .. } if name == "com.example.EverywhereStrategy"
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let p = RetryPolicy {
            retries: 5,
            min: Duration::from_millis(1_000),
            max: Duration::from_millis(5_000),
        };
        let d: Vec<u64> = (1..=5).map(|a| p.delay(a).as_millis() as u64).collect();
        assert_eq!(d, vec![1_000, 2_000, 4_000, 5_000, 5_000]);
    }

    #[test]
    fn remote_reads_only_when_allowed() {
        let r = Routing {
            local_dc: Some("dc1".into()),
            remote_dc_reads: false,
        };
        assert!(r.reads_from(Some("dc1")));
        assert!(!r.reads_from(Some("dc2")));
        assert!(!r.reads_from(None));
        let r = Routing {
            remote_dc_reads: true,
            ..r
        };
        assert!(r.reads_from(Some("dc2")));
        assert!(Routing::default().reads_from(Some("anything")));
    }
}
