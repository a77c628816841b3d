//! The Cassandra probe: writes `operations` rows of `value_size` bytes, then reads as many rows
//! back by random key, each phase at `concurrency` requests in flight; per-phase throughput and
//! latency. Everything lives in a keyspace of the probe's own (created with replication factor
//! `replication_factor`), never in the user's.
//!
//! With `rate`, a phase is an open-loop load instead: operation `i` is due at `i / rate` seconds,
//! whatever the earlier ones are doing (at most `concurrency` in flight), and its latency counts
//! from when it was due, so a server that stalls shows in the percentiles as an application
//! issuing at that rate would see it. With `duration_s`, a phase runs that long (reads then pick
//! keys among the `operations` a write phase with the same `operations` wrote). Together they
//! are a steady competing load, e.g. point reads beside a migration (`bench/migration
//! --wan-scenarios`).

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
    /// Operations per second each phase issues (open loop); unset: as fast as `concurrency`
    /// allows.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Each phase runs this long instead of `operations` operations.
    #[serde(default)]
    pub duration_s: Option<f64>,
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
            "rate": self.rate,
            "duration_s": self.duration_s,
        });
        v.as_object().cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.hosts.is_empty() || self.concurrency == 0 || self.operations == 0 {
            return Err(Error::Spec(
                "give at least one host, concurrency ≥ 1 and operations ≥ 1".into(),
            ));
        }
        if self.rate.is_some_and(|r| !r.is_finite() || r <= 0.0) {
            return Err(Error::Spec(
                "rate must be a positive number of operations per second".into(),
            ));
        }
        if self.duration_s.is_some_and(|d| !d.is_finite() || d <= 0.0) {
            return Err(Error::Spec("duration_s must be positive".into()));
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

/// How a phase paces its operations.
#[derive(Clone, Copy)]
struct Pace {
    /// Operations at most (the whole phase without `duration`).
    n: u64,
    concurrency: usize,
    /// Open loop: operation `i` is due at `i / rate` s.
    rate: Option<f64>,
    duration: Option<Duration>,
}

impl Pace {
    fn of(spec: &CassandraSpec) -> Self {
        Pace {
            n: if spec.duration_s.is_some() {
                u64::MAX
            } else {
                spec.operations
            },
            concurrency: spec.concurrency,
            rate: spec.rate,
            duration: spec.duration_s.map(Duration::from_secs_f64),
        }
    }
}

/// One phase: operations paced by `pace`, each `op(i)` timed (from when it was due, under a
/// rate; else from when it was sent).
async fn phase<F, Fut>(pace: Pace, op: F) -> Result<(Recorder, Duration), Error>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let t0 = Instant::now();
    let due = move |i: u64| {
        pace.rate
            .map(|r| t0 + Duration::from_secs_f64(i as f64 / r))
    };
    let deadline = pace.duration.map(|d| t0 + d);
    let op = &op;
    let timings: Vec<(Instant, Instant)> = stream::iter(0..pace.n)
        // Under a rate, the operations due before the deadline; else those started before it.
        .take_while(move |&i| {
            let go = match (deadline, due(i)) {
                (None, _) => true,
                (Some(d), Some(at)) => at < d,
                (Some(d), None) => Instant::now() < d,
            };
            futures::future::ready(go)
        })
        .map(|i| async move {
            let at = due(i);
            if let Some(at) = at {
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            }
            let issued = at.unwrap_or_else(Instant::now);
            op(i).await?;
            Ok::<_, Error>((issued, Instant::now()))
        })
        .buffer_unordered(pace.concurrency)
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
        let keys = spec.operations;
        let (rec, elapsed) = phase(Pace::of(spec), |i| {
            let (session, insert, value) = (&session, &insert, &value);
            async move {
                session
                    .execute_unpaged(insert, ((i % keys) as i64, value))
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
        let (rec, elapsed) = phase(Pace::of(spec), |_| {
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
