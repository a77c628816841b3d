//! The Cassandra probe: writes `operations` rows of `value_size` bytes, then reads as many rows
//! back by random key, each phase at `concurrency` requests in flight; per-phase throughput and
//! latency. Everything lives in a keyspace of the probe's own (created with replication factor
//! `replication_factor`), never in the user's.

use ferry_migrate::config::Secret;
use std::time::{Duration, Instant};

use ferry_report::RunRecord;
use futures::{stream, StreamExt, TryStreamExt};
use rand::{Rng, RngCore};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::recorder::{summarize, Recorder};
use crate::{finish_record, quote_ident, start_record, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Write,
    Read,
    /// Write, then read back.
    Both,
}

/// Where the probe goes by default: Cassandra's own native-protocol port, where
/// `scripts/testbed up` runs its node.
pub const DEFAULT_HOST: &str = "127.0.0.1:9042";
/// Cassandra's stock superuser and its stock password (what `cassandra.yaml`'s
/// PasswordAuthenticator starts with, and the test bed keeps). A cluster without authentication
/// never asks for them.
pub const DEFAULT_USER: &str = "cassandra";
pub const DEFAULT_PASSWORD: &str = "cassandra";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassandraSpec {
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
    /// Sent only when the cluster asks for a login.
    #[serde(default = "default_user")]
    pub user: Option<String>,
    /// From FERRY_CASSANDRA_PASSWORD when unset (then Cassandra's stock password for its stock
    /// superuser); never written to a record.
    #[serde(default, skip)]
    pub password: Option<Secret>,
    #[serde(default = "default_keyspace")]
    pub keyspace: String,
    #[serde(default = "default_rf")]
    pub replication_factor: u32,
    #[serde(default = "default_ops")]
    pub operations: u64,
    #[serde(default = "default_value_size")]
    pub value_size: usize,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_workload")]
    pub workload: Workload,
}

fn default_hosts() -> Vec<String> {
    vec![DEFAULT_HOST.into()]
}
fn default_user() -> Option<String> {
    Some(DEFAULT_USER.into())
}
fn default_keyspace() -> String {
    "ferry_bench".into()
}
fn default_rf() -> u32 {
    1
}
fn default_ops() -> u64 {
    20_000
}
fn default_value_size() -> usize {
    100
}
fn default_concurrency() -> usize {
    32
}
fn default_workload() -> Workload {
    Workload::Both
}

impl CassandraSpec {
    fn parameters(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "hosts": self.hosts,
            "user": self.user,
            "keyspace": self.keyspace,
            "replication_factor": self.replication_factor,
            "operations": self.operations,
            "value_size": self.value_size,
            "concurrency": self.concurrency,
            "workload": match self.workload { Workload::Write => "write", Workload::Read => "read", Workload::Both => "both" },
        });
        v.as_object().cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.hosts.is_empty() || self.concurrency == 0 || self.operations == 0 {
            return Err(Error::Spec(
                "give at least one host, concurrency ≥ 1 and operations ≥ 1".into(),
            ));
        }
        Ok(())
    }
}

async fn connect(spec: &CassandraSpec) -> Result<Session, Error> {
    let mut b = SessionBuilder::new()
        .known_nodes(&spec.hosts)
        .connection_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if let Some(user) = &spec.user {
        let pw = spec
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .or_else(|| std::env::var("FERRY_CASSANDRA_PASSWORD").ok())
            .or_else(|| (user == DEFAULT_USER).then(|| DEFAULT_PASSWORD.to_string()))
            .unwrap_or_default();
        b = b.user(user, pw);
    }
    b.build().await.map_err(|e| {
        Error::Cassandra(format!(
            "cannot connect to {}: {}",
            spec.hosts.join(","),
            e.to_string().lines().next().unwrap_or("")
        ))
    })
}

fn cql(e: impl std::fmt::Display) -> Error {
    Error::Cassandra(e.to_string().lines().next().unwrap_or("").to_string())
}

/// One phase: `n` operations at `concurrency` in flight, each `op(i)` timed.
async fn phase<F, Fut>(n: u64, concurrency: usize, op: F) -> Result<(Recorder, Duration), Error>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let t0 = Instant::now();
    let op = &op;
    let timings: Vec<(Instant, Instant)> = stream::iter(0..n)
        .map(|i| async move {
            let issued = Instant::now();
            op(i).await?;
            Ok::<_, Error>((issued, Instant::now()))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let elapsed = t0.elapsed();
    let mut rec = Recorder::new(t0);
    for (a, b) in timings {
        rec.record(a, b);
    }
    Ok((rec, elapsed))
}

pub async fn run(spec: &CassandraSpec) -> Result<RunRecord, Error> {
    spec.validate()?;
    let (mut record, origin) = start_record("cassandra", spec.parameters());
    let session = connect(spec).await?;
    let ks = quote_ident(&spec.keyspace);
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                spec.replication_factor
            ),
            &[],
        )
        .await
        .map_err(cql)?;
    session
        .query_unpaged(
            format!("CREATE TABLE IF NOT EXISTS {ks}.kv (k bigint PRIMARY KEY, v blob)"),
            &[],
        )
        .await
        .map_err(cql)?;
    session.await_schema_agreement().await.map_err(cql)?;
    let insert = session
        .prepare(format!("INSERT INTO {ks}.kv (k, v) VALUES (?, ?)"))
        .await
        .map_err(cql)?;
    let select = session
        .prepare(format!("SELECT v FROM {ks}.kv WHERE k = ?"))
        .await
        .map_err(cql)?;
    let mut value = vec![0u8; spec.value_size];
    rand::rng().fill_bytes(&mut value);
    let version: Option<String> = session
        .query_unpaged("SELECT release_version FROM system.local", &[])
        .await
        .ok()
        .and_then(|r| r.into_rows_result().ok())
        .and_then(|r| r.first_row::<(String,)>().ok())
        .map(|(v,)| v);
    record.target = Some(format!(
        "Cassandra {} at {}",
        version.unwrap_or_default(),
        spec.hosts.join(",")
    ));

    let sampler = crate::host::Sampler::start(origin, crate::SAMPLE_INTERVAL);
    let mut summary = ferry_report::record::Metrics::new();
    let mut samples = Vec::new();
    let mut total_ops = 0.0;
    let mut total_secs = 0.0;
    let phase_offset = |t: Instant| (t - origin).as_secs_f64();
    if matches!(spec.workload, Workload::Write | Workload::Both) {
        let start = Instant::now();
        let (rec, elapsed) = phase(spec.operations, spec.concurrency, |i| {
            let (session, insert, value) = (&session, &insert, &value);
            async move {
                session
                    .execute_unpaged(insert, (i as i64, value))
                    .await
                    .map(|_| ())
                    .map_err(cql)
            }
        })
        .await?;
        let (s, w) = summarize(&rec.ops, elapsed, spec.value_size as f64, "write_", true);
        summary.extend(s);
        let off = phase_offset(start);
        samples.extend(w.into_iter().map(|mut x| {
            x.start_s += off;
            // The phase's rate is also the sample's overall rate, so `records_per_sec` can be
            // compared with statistics too.
            if let Some(r) = x.metrics.get("write_ops_per_sec").copied() {
                x.metrics.insert("records_per_sec".into(), r);
            }
            x
        }));
        total_ops += rec.ops.len() as f64;
        total_secs += elapsed.as_secs_f64();
    }
    if matches!(spec.workload, Workload::Read | Workload::Both) {
        let start = Instant::now();
        let keys = spec.operations;
        let (rec, elapsed) = phase(spec.operations, spec.concurrency, |_| {
            let (session, select) = (&session, &select);
            let k = rand::rng().random_range(0..keys) as i64;
            async move {
                session
                    .execute_unpaged(select, (k,))
                    .await
                    .map(|_| ())
                    .map_err(cql)
            }
        })
        .await?;
        let (s, w) = summarize(&rec.ops, elapsed, spec.value_size as f64, "read_", true);
        summary.extend(s);
        let off = phase_offset(start);
        samples.extend(w.into_iter().map(|mut x| {
            x.start_s += off;
            if let Some(r) = x.metrics.get("read_ops_per_sec").copied() {
                x.metrics.insert("records_per_sec".into(), r);
            }
            x
        }));
        total_ops += rec.ops.len() as f64;
        total_secs += elapsed.as_secs_f64();
    }
    record.host_samples = sampler.finish();
    summary.insert("records_per_sec".into(), total_ops / total_secs.max(1e-9));
    summary.insert("seconds".into(), total_secs);
    record.summary = summary;
    record.sample_unit = Some("window".into());
    record.samples = samples;
    Ok(finish_record(record))
}
