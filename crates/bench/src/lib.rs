//! ferry's probes: each measures one real service and returns a run record.
//!
//! * [`kafka`]: producer and consumer throughput and latency (`kafka-*-perf-test`'s figures).
//! * [`postgres`]: latency percentiles and throughput of queries at a concurrency
//!   (pgbench-like), plus a server snapshot; PostgreSQL and YugabyteDB.
//! * [`cassandra`]: write and read throughput and latency in a keyspace of its own.
//! * [`trino`]: per-query elapsed, queued and CPU time, processed rows and bytes and peak memory,
//!   as Trino's own statement protocol reports them, over repetitions.
//! * [`redis`]: SET/GET throughput and latency at a concurrency and pipeline depth, plus the
//!   server's INFO (memory, eviction policy, keyspace hits).
//! * [`ray`]: the seed's CPU- and I/O-bound task benchmarks as a Ray job (Jobs REST API), in
//!   tasks/s on a given number of the cluster's CPUs.
//! * [`http`]: requests/s and latency percentiles against one URL (wrk's and oha's figures).
//! * [`jvm`]: the GC count, GC time and heap of the server's JVM (Kafka, Cassandra, Trino)
//!   before and after a probe, with jstat (or JMX through attach).
//! * [`host`]: host facts, and /proc sampled during every probe.
//! * [`suite`]: a TOML suite of probes with expectations → one baseline record.
//!
//! Architecture invariant: probes never print; they return records (or errors) and the CLI
//! decides what to show.

pub mod cassandra;
pub mod host;
pub mod http;
pub mod jvm;
pub mod kafka;
pub mod postgres;
pub mod ray;
pub mod recorder;
pub mod redis;
pub mod suite;
pub mod trino;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_report::RunRecord;

/// How often the host sampler reads /proc.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("Cassandra: {0}")]
    Cassandra(String),
    #[error("Trino: {0}")]
    Trino(String),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("Ray: {0}")]
    Ray(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("{0}")]
    Spec(String),
    #[error("{0}")]
    Io(String),
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's message (with its SQLSTATE) says more than the driver's wrapper.
        match e.as_db_error() {
            Some(db) => Error::Postgres(format!("{} ({})", db.message(), db.code().code())),
            None => Error::Postgres(e.to_string()),
        }
    }
}

/// Any probe, as a suite names it.
#[derive(Debug, Clone)]
pub enum Probe {
    Kafka(kafka::KafkaSpec),
    Postgres(postgres::PgSpec),
    Cassandra(cassandra::CassandraSpec),
    Trino(trino::TrinoSpec),
    Redis(redis::RedisSpec),
    Ray(ray::RaySpec),
    Http(http::HttpSpec),
}

/// Runs a probe (blocking probes on a blocking thread) and returns its record; for a JVM
/// server on this machine (Kafka, Cassandra, Trino) with its JVM's figures before and after.
pub async fn run_probe(probe: &Probe) -> Result<RunRecord, Error> {
    let port = match probe {
        Probe::Kafka(s) => jvm::port_of(&s.bootstrap).or(Some(9092)),
        Probe::Cassandra(s) => s.hosts.first().map(|h| jvm::port_of(h).unwrap_or(9042)),
        Probe::Trino(s) => jvm::port_of(&s.server),
        _ => None,
    };
    let watch = match port {
        Some(p) => tokio::task::spawn_blocking(move || jvm::Watch::start(p))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let rec = run_probe_alone(probe).await?;
    match watch {
        Some(w) => tokio::task::spawn_blocking(move || {
            let mut rec = rec;
            w.finish(&mut rec);
            rec
        })
        .await
        .map_err(|e| Error::Io(format!("reading the server's JVM failed: {e}"))),
        None => Ok(rec),
    }
}

async fn run_probe_alone(probe: &Probe) -> Result<RunRecord, Error> {
    match probe {
        Probe::Kafka(spec) => {
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || kafka::run(&spec))
                .await
                .map_err(|e| Error::Io(format!("the Kafka probe's thread failed: {e}")))?
        }
        Probe::Postgres(spec) => postgres::run(spec).await,
        Probe::Cassandra(spec) => cassandra::run(spec).await,
        Probe::Trino(spec) => trino::run(spec).await,
        Probe::Redis(spec) => redis::run(spec).await,
        Probe::Ray(spec) => ray::run(spec).await,
        Probe::Http(spec) => http::run(spec).await,
    }
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A new record stamped with now and the host's facts, and the instant it started.
pub(crate) fn start_record(
    kind: &str,
    parameters: serde_json::Map<String, serde_json::Value>,
) -> (RunRecord, Instant) {
    let mut r = RunRecord::new(kind, host::facts(), unix_now());
    r.parameters = parameters;
    (r, Instant::now())
}

pub(crate) fn finish_record(mut r: RunRecord) -> RunRecord {
    r.ended_at = unix_now();
    r
}

/// Quotes an SQL or CQL identifier: the only way a user-given name reaches a statement.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Several runs of one probe as one record: each run becomes a sample (`sample_unit =
/// "repetition"`), the summary holds each metric's median over the runs, and the host samples
/// of all runs are kept on one clock. One run comes back unchanged.
pub fn combine_repetitions(mut runs: Vec<RunRecord>) -> RunRecord {
    if runs.len() <= 1 {
        return runs.pop().expect("at least one run");
    }
    let mut out = runs[0].clone();
    out.ended_at = runs.last().map(|r| r.ended_at).unwrap_or(out.ended_at);
    out.sample_unit = Some("repetition".into());
    out.samples = runs
        .iter()
        .map(|r| ferry_report::Sample {
            start_s: r.started_at - out.started_at,
            seconds: r.seconds(),
            metrics: r.summary.clone(),
        })
        .collect();
    out.host_samples = runs
        .iter()
        .flat_map(|r| {
            let shift = r.started_at - out.started_at;
            r.host_samples.iter().map(move |h| {
                let mut h = h.clone();
                h.t_s += shift;
                h
            })
        })
        .collect();
    out.summary = ferry_report::record::Metrics::new();
    let keys: std::collections::BTreeSet<&String> =
        runs.iter().flat_map(|r| r.summary.keys()).collect();
    for k in keys {
        let vals: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.summary.get(k).copied())
            .collect();
        if let Some(m) = ferry_stats::median(&vals) {
            out.summary.insert(k.clone(), m);
        }
    }
    out.server = runs.last().and_then(|r| r.server.clone());
    out.error = runs.iter().find_map(|r| r.error.clone());
    out.parameters
        .insert("repeat".into(), serde_json::json!(runs.len()));
    out
}
