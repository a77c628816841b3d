//! The measurements: for each node of each side, DNS, TCP connect, protocol round trips, the
//! server's facts, and one stream's throughput (a bounded scan, a COPY into a temporary table).
//! Failures become `fail` verdicts on the endpoint that failed, with the address in the message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use scylla::client::session::Session;
use scylla::cluster::Node;
use scylla::response::PagingState;

use super::{Check, Endpoint, Options, Percentiles, Role, Throughput, Verdict};
use crate::cassandra;
use crate::config::MigrationSpec;
use crate::job::{Job, TableSelection};
use crate::schema::{pg_ident, TargetKind};

/// What the source probes found.
pub struct SourceResult {
    pub endpoints: Vec<Endpoint>,
    pub facts: BTreeMap<String, String>,
    pub checks: Vec<Check>,
    pub scan: Option<ScanSample>,
    /// Mean bytes per row of the sample scan (for the COPY probe's payload and the model).
    pub row_bytes: f64,
    /// The table's size from `system.size_estimates`, if Cassandra has estimated it.
    pub est_bytes: Option<u64>,
}

/// One stream scanning the configured table page by page.
#[derive(Clone, Debug)]
pub struct ScanSample {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    pub page_ms: Vec<f64>,
    pub fetch_size: i32,
    /// The scan reached the table's end before `scan_rows`.
    pub complete: bool,
    /// The share of the token ring the scan covered (it reads in token order from the ring's
    /// start), so rows / covered estimates the table's rows when Cassandra has no size estimate.
    pub ring_covered: f64,
}

/// What the target probes found.
pub struct TargetResult {
    pub endpoints: Vec<Endpoint>,
    pub facts: BTreeMap<String, String>,
    pub checks: Vec<Check>,
    /// Nodes `yb_servers()` lists, as `host:port`.
    pub discovered: Vec<String>,
    pub kind: Option<TargetKind>,
    pub max_connections: Option<u64>,
    pub connections_in_use: Option<u64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `host:port` split at the last colon (IPv6 in brackets keeps its colons).
fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (h, p) = addr.rsplit_once(':')?;
    Some((
        h.trim_start_matches('[').trim_end_matches(']').to_string(),
        p.parse().ok()?,
    ))
}

/// DNS and TCP connect for one endpoint; a failure is a `fail` verdict naming the address.
/// Returns whether the endpoint accepts connections.
async fn reach(ep: &mut Endpoint, timeout: Duration) -> bool {
    let t = Instant::now();
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host(ep.address.clone())).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                ep.verdicts.push(Check::new(
                    "dns",
                    Verdict::Fail,
                    format!("{} does not resolve: {e}", ep.address),
                    "fix the host name, or use an address".into(),
                ));
                return false;
            }
            Err(_) => {
                ep.verdicts.push(Check::new(
                    "dns",
                    Verdict::Fail,
                    format!("resolving {} took over {timeout:?}", ep.address),
                    "check the resolver".into(),
                ));
                return false;
            }
        };
    ep.dns_ms = Some(ms(t.elapsed()));
    let Some(addr) = addrs.first().copied() else {
        ep.verdicts.push(Check::new(
            "dns",
            Verdict::Fail,
            format!("{} resolves to no address", ep.address),
            "fix the host name".into(),
        ));
        return false;
    };
    let mut connects = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                connects.push(ms(t.elapsed()));
                drop(s);
            }
            Ok(Err(e)) => {
                ep.verdicts.push(Check::new(
                    "reachable",
                    Verdict::Fail,
                    format!("cannot connect to {} ({addr}): {e}", ep.address),
                    "check the host and port, that the node is up, and firewalls between here and it".into(),
                ));
                return false;
            }
            Err(_) => {
                ep.verdicts.push(Check::new(
                    "reachable",
                    Verdict::Fail,
                    format!(
                        "connecting to {} ({addr}) timed out after {timeout:?}",
                        ep.address
                    ),
                    "check that the node is up and that no firewall drops the packets".into(),
                ));
                return false;
            }
        }
    }
    ep.connect_ms = ferry_stats::median(&connects);
    ep.verdicts.push(Check::new(
        "reachable",
        Verdict::Ok,
        format!(
            "TCP connect {:.1} ms (median of {}), DNS {:.1} ms",
            ep.connect_ms.unwrap_or(0.0),
            connects.len(),
            ep.dns_ms.unwrap_or(0.0)
        ),
        String::new(),
    ));
    true
}

/// The round-trip verdict: the seed's own rule of thumb (under 10 ms is local), with what to do
/// above it.
fn rtt_check(ep: &mut Endpoint, p: Percentiles) {
    let (verdict, advice) = if p.p50 <= 10.0 {
        (Verdict::Ok, String::new())
    } else {
        (
            Verdict::Warn,
            "a WAN round trip: every request pays it, so throughput depends on keeping enough requests in flight (see the concurrency check)".to_string(),
        )
    };
    ep.verdicts.push(Check::new(
        "round trip",
        verdict,
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            p.p50, p.p95, p.p99
        ),
        advice,
    ));
    if p.p99 > 3.0 * p.p50 + 5.0 {
        ep.verdicts.push(Check::new(
            "jitter",
            Verdict::Warn,
            format!("p99 {:.1} ms is over 3× p50 {:.1} ms", p.p99, p.p50),
            "the path or the server stalls now and then; timeouts must allow for the tail, not the median".into(),
        ));
    }
}

/// Sends every request of a CQL statement to one node.
#[derive(Debug)]
struct Pinned(Arc<Node>);

impl scylla::policies::load_balancing::LoadBalancingPolicy for Pinned {
    fn pick<'a>(
        &'a self,
        _: &'a scylla::policies::load_balancing::RoutingInfo,
        _: &'a scylla::cluster::ClusterState,
    ) -> Option<(scylla::cluster::NodeRef<'a>, Option<scylla::routing::Shard>)> {
        Some((&self.0, None))
    }

    fn fallback<'a>(
        &'a self,
        _: &'a scylla::policies::load_balancing::RoutingInfo,
        _: &'a scylla::cluster::ClusterState,
    ) -> scylla::policies::load_balancing::FallbackPlan<'a> {
        Box::new(std::iter::empty())
    }

    fn name(&self) -> String {
        "ferry::diagnose::Pinned".to_string()
    }
}

/// The table the probes scan: the configured one, or the first of a list.
fn scan_table(job: &Job) -> Option<(String, String)> {
    match &job.tables {
        TableSelection::One {
            keyspace, table, ..
        } => Some((keyspace.clone(), table.clone())),
        TableSelection::List { tables, .. } => tables.first().cloned(),
        TableSelection::Keyspace { .. } => None,
    }
}

/// Probes every Cassandra contact point and every node of the ring.
pub async fn source(job: &Job, spec: &MigrationSpec, opts: &Options) -> SourceResult {
    let timeout = Duration::from_millis(job.source.connect_timeout_ms);
    let mut out = SourceResult {
        endpoints: Vec::new(),
        facts: BTreeMap::new(),
        checks: Vec::new(),
        scan: None,
        row_bytes: 200.0,
        est_bytes: None,
    };
    let mut any_reachable = false;
    for cp in &job.source.contact_points {
        let mut ep = Endpoint::new(cp.clone(), Role::Source, "cassandra.host");
        any_reachable |= reach(&mut ep, timeout).await;
        out.endpoints.push(ep);
    }
    if !any_reachable {
        return out;
    }
    // Diagnose opens pools to every data centre, to measure each node's round trip; the scan
    // itself still reads where the migration would (the source module's routing).
    let mut every_dc = job.source.clone();
    every_dc.routing.remote_dc_reads = true;
    let session = match tokio::time::timeout(timeout * 3, cassandra::connect(&every_dc)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            // The message names the side and whether the credentials were refused.
            let refused = format!("{e:#}");
            for ep in out.endpoints.iter_mut().filter(|e| e.connect_ms.is_some()) {
                ep.verdicts.push(Check::new(
                    "login",
                    Verdict::Fail,
                    refused.clone(),
                    "the source (Cassandra) refused the session".into(),
                ));
            }
            return out;
        }
        Err(_) => {
            for ep in out.endpoints.iter_mut().filter(|e| e.connect_ms.is_some()) {
                ep.verdicts.push(Check::new(
                    "login",
                    Verdict::Fail,
                    format!("opening a CQL session to {} timed out", ep.address),
                    "the port answers but the CQL handshake does not: is it Cassandra's native port?".into(),
                ));
            }
            return out;
        }
    };
    for ep in out.endpoints.iter_mut().filter(|e| e.connect_ms.is_some()) {
        ep.verdicts.push(Check::new(
            "login",
            Verdict::Ok,
            format!(
                "CQL session as {}",
                job.source.username.as_deref().unwrap_or("(no user)")
            ),
            String::new(),
        ));
    }
    let nodes = session.get_cluster_state().get_nodes_info().to_vec();
    let mut dcs = std::collections::BTreeSet::new();
    for node in &nodes {
        let addr = format!("{}:{}", node.address.ip(), node.address.port());
        if let Some(dc) = &node.datacenter {
            dcs.insert(dc.clone());
        }
        let i = match out.endpoints.iter().position(|e| {
            e.address == addr
                || split_host_port(&e.address).is_some_and(|(h, p)| {
                    p == node.address.port() && h.parse() == Ok(node.address.ip())
                })
        }) {
            Some(i) => {
                out.endpoints[i].found_in.push("ring".into());
                i
            }
            None => {
                let mut ep = Endpoint::new(addr, Role::Source, "ring");
                reach(&mut ep, timeout).await;
                out.endpoints.push(ep);
                out.endpoints.len() - 1
            }
        };
        let ep = &mut out.endpoints[i];
        if let Some(dc) = &node.datacenter {
            ep.facts.insert("data_center".into(), dc.clone());
        }
        let routing = &job.source.routing;
        ep.facts.insert(
            "migration reads here".into(),
            if routing.reads_from(node.datacenter.as_deref()) {
                match &routing.local_dc {
                    Some(dc) if node.datacenter.as_deref() == Some(dc.as_str()) => {
                        "yes (cassandra.localDC)".into()
                    }
                    Some(_) => {
                        "only when its data centre's replicas are down (ferry.remoteDcReads=true)"
                            .into()
                    }
                    None => "yes (cassandra.localDC unset: any data centre)".into(),
                }
            } else {
                "no (another data centre than cassandra.localDC)".into()
            },
        );
        cql_node(&session, node, ep, opts.samples, timeout).await;
    }
    out.facts.insert(
        "data_centers".into(),
        dcs.iter().cloned().collect::<Vec<_>>().join(","),
    );
    out.facts.insert("nodes".into(), nodes.len().to_string());
    out.facts.insert(
        "ring".into(),
        crate::source::datacenters(&session.get_cluster_state())
            .iter()
            .map(|(dc, nodes)| format!("{dc}: {}", nodes.join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
    );
    if let Some(local) = &spec.source.local_dc {
        if !dcs.contains(local) {
            out.checks.push(Check::new(
                "cassandra.localDC",
                Verdict::Fail,
                format!(
                    "cassandra.localDC={local}, but the ring's data centres are {}",
                    dcs.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                "name one of the ring's data centres".into(),
            ));
        }
    }
    if let Some((ks, table)) = scan_table(job) {
        if let Ok(r) = session
            .query_unpaged(
                "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
                (ks.as_str(),),
            )
            .await
        {
            let repl = r.into_rows_result().ok().and_then(|rows| {
                rows.maybe_first_row::<(BTreeMap<String, String>,)>()
                    .ok()
                    .flatten()
            });
            if let Some((repl,)) = repl {
                let text = repl
                    .iter()
                    .map(|(k, v)| {
                        if k == "class" {
                            v.rsplit('.').next().unwrap_or(v).to_string()
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                out.facts.insert(format!("replication of {ks}"), text);
            }
        }
        let plan = match tokio::time::timeout(
            timeout * 3,
            crate::plan::plan_table(
                &session,
                &ks,
                &table,
                64,
                crate::plan::ChunkSizing::AtLeast(1),
            ),
        )
        .await
        {
            Ok(Ok(p)) => Some(p),
            _ => None,
        };
        if let Some(p) = &plan {
            if p.estimated {
                out.est_bytes = Some(p.est_bytes);
                out.facts.insert(
                    format!("estimated size of {ks}.{table}"),
                    format!("{:.1} MB", p.est_bytes as f64 / 1e6),
                );
            }
        }
        match scan(&session, &ks, &table, plan.as_ref(), job, opts).await {
            Ok(sample) => {
                if sample.rows > 0 {
                    out.row_bytes = sample.bytes as f64 / sample.rows as f64;
                }
                let secs = sample.page_ms.iter().sum::<f64>() / 1e3;
                let tp = Throughput::new(
                    "read",
                    sample.rows,
                    sample.bytes,
                    secs,
                    sample.page_ms.len() as u64,
                );
                // One stream, through the first reachable node (the driver's coordinator).
                if let Some(ep) = out.endpoints.iter_mut().find(|e| e.rtt_ms.is_some()) {
                    ep.throughput = Some(tp);
                }
                if sample.rows > 0 {
                    if let Some(c) =
                        compression_check(&every_dc, &ks, &table, job, opts, timeout).await
                    {
                        out.checks.push(c);
                    }
                }
                out.scan = Some(sample);
            }
            Err(e) => out.checks.push(Check::new(
                "sample scan",
                Verdict::Fail,
                format!("scanning {ks}.{table} failed: {e}"),
                "check table.source.keyspace / table.source.table and the user's permissions"
                    .into(),
            )),
        }
    }
    out
}

/// Whether LZ4 frame compression would read the table faster: the same bounded scan, with and
/// without it, back to back on two sessions (the table's pages are warm for both), measured
/// rather than guessed — on a link whose bandwidth is the limit the compressed pages arrive
/// sooner; on loopback or a fast link the compression's CPU only costs. `None` when the
/// configuration already compresses or the compressed session cannot be had.
async fn compression_check(
    endpoint: &cassandra::CassandraEndpoint,
    ks: &str,
    table: &str,
    job: &Job,
    opts: &Options,
    timeout: Duration,
) -> Option<Check> {
    if endpoint.compression.is_some() {
        return None;
    }
    let lz4 = cassandra::CassandraEndpoint {
        compression: Some(scylla::client::Compression::Lz4),
        ..endpoint.clone()
    };
    let (plain, packed) = tokio::join!(
        tokio::time::timeout(timeout * 3, cassandra::connect(endpoint)),
        tokio::time::timeout(timeout * 3, cassandra::connect(&lz4)),
    );
    let (plain, packed) = (plain.ok()?.ok()?, packed.ok()?.ok()?);
    let secs = |s: &ScanSample| s.page_ms.iter().sum::<f64>() / 1e3;
    // Each session plans for itself: a plan's replicas are its session's nodes, and a read
    // routed to them would take that session's (uncompressed) connections.
    let sizing = crate::plan::ChunkSizing::AtLeast(1);
    let (plan_plain, plan_packed) = tokio::join!(
        crate::plan::plan_table(&plain, ks, table, 64, sizing),
        crate::plan::plan_table(&packed, ks, table, 64, sizing),
    );
    let (plan_plain, plan_packed) = (plan_plain.ok()?, plan_packed.ok()?);
    let with = scan(&packed, ks, table, Some(&plan_packed), job, opts)
        .await
        .ok()?;
    let without = scan(&plain, ks, table, Some(&plan_plain), job, opts)
        .await
        .ok()?;
    let (a, b) = (secs(&without), secs(&with));
    let gain = a / b.max(1e-6);
    let found = format!(
        "NONE; {} rows read in {:.2} s uncompressed, {:.2} s with LZ4 ({:.2}×)",
        without.rows, a, b, gain
    );
    Some(if gain >= 1.15 {
        Check::new(
            "cassandra.connection.compression",
            Verdict::Warn,
            found,
            "the link's bandwidth limits the read: LZ4 frames carry the same rows in fewer bytes"
                .into(),
        )
        .recommend("cassandra.connection.compression", "LZ4")
    } else {
        Check::new(
            "cassandra.connection.compression",
            Verdict::Ok,
            found,
            "compression does not pay here (the link is not what limits the read)".into(),
        )
    })
}

/// Round trips pinned to one node, and the node's own facts.
async fn cql_node(
    session: &Session,
    node: &Arc<Node>,
    ep: &mut Endpoint,
    samples: usize,
    timeout: Duration,
) {
    let mut stmt = match session
        .prepare("SELECT release_version, data_center, cluster_name FROM system.local")
        .await
    {
        Ok(s) => s,
        Err(e) => {
            ep.verdicts.push(Check::new(
                "round trip",
                Verdict::Fail,
                format!("{}: preparing a query failed: {e}", ep.address),
                String::new(),
            ));
            return;
        }
    };
    stmt.set_load_balancing_policy(Some(Arc::new(Pinned(node.clone()))));
    stmt.set_request_timeout(Some(timeout));
    let mut rtts = Vec::new();
    let mut last_err = None;
    for _ in 0..samples.max(1) {
        let t = Instant::now();
        match session.execute_unpaged(&stmt, ()).await {
            Ok(r) => {
                rtts.push(ms(t.elapsed()));
                if ep.facts.contains_key("release_version") {
                    continue;
                }
                if let Ok(Some((v, dc, cluster))) = r.into_rows_result().map(|r| {
                    r.maybe_first_row::<(Option<String>, Option<String>, Option<String>)>()
                        .ok()
                        .flatten()
                }) {
                    for (k, v) in [
                        ("release_version", v),
                        ("data_center", dc),
                        ("cluster_name", cluster),
                    ] {
                        if let Some(v) = v {
                            ep.facts.insert(k.into(), v);
                        }
                    }
                }
            }
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    match Percentiles::of(&rtts) {
        Some(p) => {
            ep.rtt_ms = Some(p);
            rtt_check(ep, p);
        }
        None => ep.verdicts.push(Check::new(
            "round trip",
            Verdict::Fail,
            format!(
                "{}: no CQL request succeeded: {}",
                ep.address,
                last_err.unwrap_or_default()
            ),
            "the node is in the ring but does not answer".into(),
        )),
    }
}

/// Reads up to `scan_rows` rows of the table in token order, chunk by chunk and page by page,
/// through the source module's range reader: routed, paged and retried as a migration reads.
async fn scan(
    session: &Session,
    ks: &str,
    table: &str,
    plan: Option<&crate::plan::Plan>,
    job: &Job,
    opts: &Options,
) -> anyhow::Result<ScanSample> {
    let source = crate::schema::read_source_table(session, ks, table).await?;
    let whole_ring;
    let plan = match plan {
        Some(p) => p,
        None => {
            whole_ring = crate::plan::Plan::unmeasured(vec![crate::plan::Chunk {
                id: 0,
                start: i64::MIN,
                end: i64::MAX,
                replica_set: 0,
                est_partitions: 0,
                est_bytes: 0,
                clustering: None,
            }]);
            &whole_ring
        }
    };
    let reader = crate::source::RangeReader::new(
        session,
        source.range_select(),
        source.qualified(),
        plan,
        &job.settings.read_settings(),
    )
    .await?;
    let mut sample = ScanSample {
        table: format!("{ks}.{table}"),
        rows: 0,
        bytes: 0,
        page_ms: Vec::new(),
        fetch_size: job.settings.fetch_size_rows,
        complete: false,
        ring_covered: 0.0,
    };
    let position = |t: i64| (t as f64 - i64::MIN as f64) / 18_446_744_073_709_551_616.0;
    'chunks: for chunk in &plan.chunks {
        let mut paging = PagingState::start();
        loop {
            if sample.rows >= opts.scan_rows {
                sample.ring_covered = position(chunk.start);
                break 'chunks;
            }
            let t = Instant::now();
            let page = reader
                .page(chunk.replica_set, None, (chunk.start, chunk.end), paging)
                .await?;
            sample.page_ms.push(ms(t.elapsed()));
            let rows = page.result.into_rows_result()?;
            sample.rows += rows.rows_num() as u64;
            sample.bytes += rows.rows_bytes_size() as u64;
            match page.next {
                scylla::response::PagingStateResponse::HasMorePages { state } => paging = state,
                scylla::response::PagingStateResponse::NoMorePages => break,
            }
        }
        sample.ring_covered = position(chunk.end);
    }
    if sample.rows < opts.scan_rows {
        sample.complete = true;
    }
    Ok(sample)
}

/// Server settings that matter for bulk loading, read on every target node.
const PG_SETTINGS: &[&str] = &[
    "max_connections",
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_wal_size",
    "checkpoint_timeout",
    "maintenance_work_mem",
    "work_mem",
];

/// Probes every listed target host, then every node `yb_servers()` lists that was not listed.
pub async fn target(job: &Job, opts: &Options, row_bytes: f64) -> TargetResult {
    let timeout = Duration::from_millis(job.target.connect_timeout_ms);
    let mut out = TargetResult {
        endpoints: Vec::new(),
        facts: BTreeMap::new(),
        checks: Vec::new(),
        discovered: Vec::new(),
        kind: None,
        max_connections: None,
        connections_in_use: None,
    };
    let mut todo: Vec<((String, u16), &str)> = job
        .target
        .hosts
        .iter()
        .map(|h| (h.clone(), "yugabyte.host"))
        .collect();
    let mut i = 0;
    while i < todo.len() {
        let ((host, port), found_in) = todo[i].clone();
        i += 1;
        let address = format!("{host}:{port}");
        if let Some(ep) = out.endpoints.iter_mut().find(|e| e.address == address) {
            if !ep.found_in.iter().any(|f| f == found_in) {
                ep.found_in.push(found_in.to_string());
            }
            continue;
        }
        let mut ep = Endpoint::new(address, Role::Target, found_in);
        if reach(&mut ep, timeout).await {
            match job.target.connect_observed(&host, port).await {
                Ok((client, info)) => {
                    ep.login_ms = Some(info.connect_ms);
                    ep.verdicts.push(super::tls_check(
                        info.tls.as_ref(),
                        &format!(
                            "yugabyte.sslmode={}: set yugabyte.sslmode=verify-full and \
                             yugabyte.sslrootcert before data crosses a network you do not own",
                            job.target.tls.mode().as_str()
                        ),
                    ));
                    ep.tls = info.tls;
                    ep.verdicts.push(Check::new(
                        "login",
                        Verdict::Ok,
                        format!(
                            "as {} to database {}",
                            job.target.username, job.target.database
                        ),
                        String::new(),
                    ));
                    sql_node(&client, &mut ep, opts, row_bytes).await;
                    if out.kind.is_none() {
                        side_facts(&client, &mut out).await;
                        for (h, p) in discover(&client).await {
                            out.discovered.push(format!("{h}:{p}"));
                            todo.push(((h, p), "yb_servers()"));
                        }
                    }
                }
                Err(e) => ep.verdicts.push(Check::new(
                    "login",
                    Verdict::Fail,
                    format!("{e:#}"),
                    "the target (PostgreSQL/YugabyteDB) refused the connection".into(),
                )),
            }
        }
        out.endpoints.push(ep);
    }
    out
}

/// `version()`, whether it is YugabyteDB, and connections in use: once per target.
async fn side_facts(client: &tokio_postgres::Client, out: &mut TargetResult) {
    if let Ok(r) = client.query_one("SELECT version()", &[]).await {
        let v: String = r.get(0);
        let kind = TargetKind::from_version(&v);
        out.facts.insert(
            "kind".into(),
            match kind {
                TargetKind::YugabyteDb => "YugabyteDB",
                _ => "PostgreSQL",
            }
            .into(),
        );
        out.facts.insert("version".into(), v);
        out.kind = Some(kind);
    }
    if let Ok(r) = client
        .query_one(
            "SELECT current_setting('max_connections')::bigint, (SELECT count(*) FROM pg_stat_activity)",
            &[],
        )
        .await
    {
        out.max_connections = Some(r.get::<_, i64>(0) as u64);
        out.connections_in_use = Some(r.get::<_, i64>(1) as u64);
        out.facts.insert(
            "connections".into(),
            format!("{} in use of max_connections {}", r.get::<_, i64>(1), r.get::<_, i64>(0)),
        );
    }
}

/// The nodes `yb_servers()` lists (YugabyteDB, or the test bed's emulation); none elsewhere.
async fn discover(client: &tokio_postgres::Client) -> Vec<(String, u16)> {
    let has: bool = match client
        .query_one(
            "SELECT count(*) > 0 FROM pg_proc WHERE proname = 'yb_servers'",
            &[],
        )
        .await
    {
        Ok(r) => r.get(0),
        Err(_) => return Vec::new(),
    };
    if !has {
        return Vec::new();
    }
    match client
        .query(
            "SELECT host, port FROM yb_servers() ORDER BY host, port",
            &[],
        )
        .await
    {
        Ok(rows) => rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u16))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `SELECT 1` round trips, the node's settings, and a COPY into a temporary table.
async fn sql_node(
    client: &tokio_postgres::Client,
    ep: &mut Endpoint,
    opts: &Options,
    row_bytes: f64,
) {
    if let Ok(stmt) = client.prepare("SELECT 1").await {
        let mut rtts = Vec::new();
        for _ in 0..opts.samples.max(1) {
            let t = Instant::now();
            if client.query_one(&stmt, &[]).await.is_ok() {
                rtts.push(ms(t.elapsed()));
            }
        }
        if let Some(p) = Percentiles::of(&rtts) {
            ep.rtt_ms = Some(p);
            rtt_check(ep, p);
        }
    }
    if let Ok(r) = client.query_one("SELECT version()", &[]).await {
        ep.facts.insert("version".into(), r.get(0));
    }
    for s in PG_SETTINGS {
        if let Ok(r) = client
            .query_one("SELECT current_setting($1, true)", &[s])
            .await
        {
            if let Some(v) = r.get::<_, Option<String>>(0) {
                ep.facts.insert((*s).into(), v);
            }
        }
    }
    if ep
        .facts
        .get("synchronous_commit")
        .is_some_and(|v| v == "on")
    {
        ep.verdicts.push(Check::new(
            "synchronous_commit",
            Verdict::Ok,
            "on: each chunk's commit waits for its WAL flush".into(),
            "ferry commits once per chunk, so the flush is paid per chunk, not per row; leave it unless commits dominate".into(),
        ));
    }
    match copy_probe(client, opts.copy_rows, row_bytes.round().max(1.0) as usize).await {
        Ok(tp) => ep.throughput = Some(tp),
        Err(e) => ep.verdicts.push(Check::new(
            "copy",
            Verdict::Fail,
            format!("{}: COPY into a temporary table failed: {e}", ep.address),
            "the user needs TEMPORARY on the database (COPY into the real table needs INSERT)"
                .into(),
        )),
    }
}

/// Binary COPY of `rows` rows of about `row_bytes` bytes into a temporary table: one stream's
/// write throughput, including the commit.
async fn copy_probe(
    client: &tokio_postgres::Client,
    rows: u64,
    row_bytes: usize,
) -> Result<Throughput, tokio_postgres::Error> {
    use futures::SinkExt;
    let table = pg_ident("ferry_diagnose_copy");
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {table} (id bigint, payload bytea); TRUNCATE {table}"
        ))
        .await?;
    let payload: Vec<u8> = (0..row_bytes).map(|i| (i * 31 % 251) as u8).collect();
    let t = Instant::now();
    let sink = client
        .copy_in::<_, Bytes>(&format!(
            "COPY {table} (id, payload) FROM STDIN WITH (FORMAT binary)"
        ))
        .await?;
    futures::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(1 << 20);
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
    let mut bytes = 0u64;
    for id in 0..rows {
        buf.put_i16(2);
        buf.put_i32(8);
        buf.put_i64(id as i64);
        buf.put_i32(payload.len() as i32);
        buf.put_slice(&payload);
        if buf.len() >= 1 << 20 {
            bytes += buf.len() as u64;
            sink.send(buf.split().freeze()).await?;
        }
    }
    buf.put_i16(-1);
    bytes += buf.len() as u64;
    sink.send(buf.split().freeze()).await?;
    let written = sink.finish().await?;
    let secs = t.elapsed().as_secs_f64();
    client.batch_execute(&format!("DROP TABLE {table}")).await?;
    Ok(Throughput::new("write", written, bytes, secs, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_splits_at_the_last_colon() {
        assert_eq!(
            split_host_port("127.0.0.1:9042"),
            Some(("127.0.0.1".into(), 9042))
        );
        assert_eq!(split_host_port("[::1]:5433"), Some(("::1".into(), 5433)));
        assert_eq!(split_host_port("nohost"), None);
    }
}
