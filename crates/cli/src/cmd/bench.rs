//! `ferry bench kafka|postgres|cassandra|trino|redis|ray|http`: one probe against one service → a run record, a
//! summary line in the shape of the service's own benchmark tool, and bottleneck hints.

use ferry_migrate::config::Secret;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use ferry_bench::{cassandra, http, kafka, postgres, ray, redis, trino, Probe};
use ferry_report::RunRecord;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub probe: BenchProbe,
}

#[derive(Subcommand, Debug)]
pub enum BenchProbe {
    /// Kafka producer (or consumer) throughput and latency, as kafka-producer-perf-test reports them.
    Kafka(KafkaArgs),
    /// PostgreSQL / YugabyteDB query latency and throughput at a concurrency, plus a server snapshot.
    Postgres(PgArgs),
    /// Cassandra write and read throughput and latency, in a keyspace of the probe's own.
    Cassandra(CassandraArgs),
    /// Trino query times from Trino's own statistics (elapsed, queued, CPU, rows and bytes
    /// processed, peak memory), each query repeated: given queries or the built-in tpch set.
    Trino(TrinoArgs),
    /// Redis SET/GET throughput and latency (optionally pipelined), plus the server's INFO:
    /// memory, maxmemory policy, keyspace hits.
    Redis(RedisArgs),
    /// Ray task throughput: the seed's CPU- and I/O-bound tasks as a job through the Jobs API.
    Ray(RayArgs),
    /// HTTP requests/s and latency percentiles against one URL, as wrk and oha report them
    /// (keep-alive connections, one request in flight on each).
    Http(HttpArgs),
}

/// Where the record goes and how often to run.
#[derive(Args, Debug, Clone)]
pub struct OutArgs {
    /// Write the run record here (default: runs/<kind>-<unix ms>.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Run the probe this many times; the record's samples are then whole runs, which is what
    /// `ferry compare` needs to tell a change from run-to-run noise.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Print the outcome (summary, hints, where the record is) as one JSON object on stdout
    /// (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KafkaArgs {
    #[arg(long, default_value = kafka::DEFAULT_BOOTSTRAP, value_name = "HOST:PORT")]
    pub bootstrap: String,
    /// The topic (the broker must auto-create it, or it must exist).
    #[arg(long, default_value = kafka::DEFAULT_TOPIC)]
    pub topic: String,
    #[arg(long, default_value_t = 100_000)]
    pub num_records: u64,
    /// Bytes per record.
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    #[arg(long, default_value = "all", value_parser = ["all", "1", "0", "-1"])]
    pub acks: String,
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Bytes per partition batch (default: librdkafka's, 1 MB).
    #[arg(long)]
    pub batch_size: Option<u64>,
    #[arg(long, value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub compression: Option<String>,
    /// Records/s ceiling; -1 = unthrottled (as kafka-producer-perf-test's --throughput).
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    pub throughput: f64,
    #[arg(long, value_enum, default_value_t = KafkaMode::Produce)]
    pub mode: KafkaMode,
    /// Any other client property, KEY=VALUE (Java client names; librdkafka accepts them).
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub properties: Vec<(String, String)>,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum KafkaMode {
    Produce,
    Consume,
}

#[derive(Args, Debug)]
pub struct PgArgs {
    /// HOST:PORT; repeat or comma-separate to spread connections over several nodes.
    /// The default is YugabyteDB's YSQL port (and ferry's `yugabyte.port`); PostgreSQL usually
    /// listens on 5432.
    #[arg(long = "host", default_value = postgres::DEFAULT_HOST, value_delimiter = ',')]
    pub hosts: Vec<String>,
    #[arg(long, default_value = postgres::DEFAULT_USER)]
    pub user: String,
    /// Never written to the run record.
    #[arg(long, env = "PGPASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    #[arg(long, default_value = postgres::DEFAULT_DBNAME)]
    pub dbname: String,
    /// A statement to time (repeatable; issued round-robin). Without it: the built-in mix.
    #[arg(long = "query", value_name = "SQL")]
    pub queries: Vec<String>,
    #[arg(long, value_enum, default_value_t = BuiltinArg::TpcbLike)]
    pub builtin: BuiltinArg,
    /// pgbench scale of the built-in mix (100,000 accounts each).
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// Schema for the built-in mix's tables.
    #[arg(long, default_value = "ferry_bench")]
    pub schema: String,
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// How long to run, e.g. 10s, 500ms, 2m (default 10s unless --transactions is given).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many operations over all connections.
    #[arg(long)]
    pub transactions: Option<u64>,
    /// TLS, with libpq's meanings: disable, allow, prefer (the default), require, verify-ca,
    /// verify-full (as yugabyte.sslmode).
    #[arg(long)]
    pub sslmode: Option<String>,
    /// The CA certificate (PEM or PKCS#12) the server's certificate must chain to.
    #[arg(long)]
    pub sslrootcert: Option<PathBuf>,
    /// Client certificate for mutual TLS (PEM with --sslkey, or PKCS#12).
    #[arg(long)]
    pub sslcert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long)]
    pub sslkey: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum BuiltinArg {
    TpcbLike,
    SelectOnly,
}

#[derive(Args, Debug)]
pub struct CassandraArgs {
    #[arg(long = "host", default_value = cassandra::DEFAULT_HOST, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Sent only when the cluster asks for a login (Cassandra's stock superuser by default).
    #[arg(long, default_value = cassandra::DEFAULT_USER)]
    pub user: String,
    /// Never written to the run record (default: Cassandra's stock password for the stock
    /// user).
    #[arg(long, env = "FERRY_CASSANDRA_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    #[arg(long, default_value = "ferry_bench")]
    pub keyspace: String,
    #[arg(long, default_value_t = 1)]
    pub replication_factor: u32,
    /// Writes (and then as many reads).
    #[arg(long, default_value_t = 20_000)]
    pub operations: u64,
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    #[arg(long, value_enum, default_value_t = WorkloadArg::Both)]
    pub workload: WorkloadArg,
    /// Issue this many operations per second in each phase (an open-loop load, at most
    /// --concurrency in flight; latency counts from when each was due), e.g. a steady competing
    /// read load beside a migration. Default: as fast as --concurrency allows.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<f64>,
    /// Run each phase this long (e.g. 60s) instead of --operations operations; reads then pick
    /// keys among the --operations keys a write run with the same --operations wrote.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(Args, Debug)]
pub struct RedisArgs {
    #[arg(long, default_value = redis::DEFAULT_HOST, value_name = "HOST:PORT")]
    pub host: String,
    /// ACL user (Redis 6+); without it AUTH sends the password alone.
    #[arg(long)]
    pub user: Option<String>,
    /// Never written to the run record.
    #[arg(long, env = "FERRY_REDIS_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    #[arg(long, default_value_t = 0)]
    pub db: u32,
    /// SETs (and then as many GETs).
    #[arg(long, default_value_t = 100_000)]
    pub operations: u64,
    /// Run each phase (SET, GET) this long instead of --operations, e.g. 2s, 500ms.
    #[arg(long, value_parser = parse_duration, conflicts_with = "operations")]
    pub duration: Option<Duration>,
    /// Distinct keys the SETs cycle through and the GETs pick from.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Connections.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Commands in flight per connection (1 = no pipelining).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    #[arg(long, value_enum, default_value_t = RedisWorkloadArg::Both)]
    pub workload: RedisWorkloadArg,
    /// The probe's keys are PREFIX:N (deleted at the end).
    #[arg(long, default_value = "ferry_bench", value_name = "PREFIX")]
    pub key_prefix: String,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum RedisWorkloadArg {
    Set,
    Get,
    Both,
}

#[derive(Args, Debug)]
pub struct RayArgs {
    /// The Ray dashboard, which serves the Jobs API.
    #[arg(long, default_value = ray::DEFAULT_ADDRESS, value_name = "URL")]
    pub address: String,
    /// CPUs the job reserves (a placement group) and runs its tasks on (default: all).
    #[arg(long, value_name = "N")]
    pub num_cpus: Option<u32>,
    /// Tasks of each kind per round (the seed: 100).
    #[arg(long, default_value_t = 100)]
    pub tasks: u32,
    /// Loop iterations of one CPU-bound task (the seed: 100000).
    #[arg(long, default_value_t = 100_000)]
    pub cpu_iterations: u64,
    /// Sleep of one I/O-bound task (the seed: 100ms).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub io_sleep: Duration,
    #[arg(long, value_enum, default_value_t = RayWorkloadArg::Both)]
    pub workload: RayWorkloadArg,
    /// Rounds of the benchmark in the job; each round is a sample for `ferry compare`.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Stop the job and fail after this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// The endpoint, http://HOST:PORT/PATH?QUERY.
    pub url: String,
    /// The request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// A header sent with every request, "Name: value" (repeatable). Only names go into the
    /// run record: values may be credentials.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request body.
    #[arg(short = 'd', long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// The request body, read from a file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Connections, each with one request in flight.
    #[arg(short = 'c', long, default_value_t = 10)]
    pub concurrency: usize,
    /// How long to run, e.g. 10s, 500ms, 2m (default 10s unless --requests is given).
    #[arg(short = 'z', long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Send this many requests over all connections, then stop.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// The status every response must have (default: any 2xx); others fail the run (exit 1).
    #[arg(long, value_name = "CODE")]
    pub expect_status: Option<u16>,
    /// Give up on one request after this long (counted as an error).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub out: OutArgs,
}

impl HttpArgs {
    fn spec(&self) -> Result<http::HttpSpec> {
        let body = match &self.body_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading --body-file {}", p.display()))?,
            ),
            None => self.body.clone(),
        };
        Ok(http::HttpSpec {
            url: self.url.clone(),
            method: self.method.clone(),
            headers: self.headers.clone(),
            body,
            concurrency: self.concurrency,
            duration_s: self.duration.map(|d| d.as_secs_f64()),
            requests: self.requests,
            expect_status: self.expect_status,
            timeout_s: self.timeout.as_secs_f64(),
        })
    }
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum RayWorkloadArg {
    Cpu,
    Io,
    Both,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum WorkloadArg {
    Write,
    Read,
    Both,
}

#[derive(Args, Debug)]
pub struct TrinoArgs {
    /// The coordinator's URL.
    #[arg(long, default_value = trino::DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    /// Sent as X-Trino-User.
    #[arg(long, default_value = "ferry")]
    pub user: String,
    /// Session catalog, for queries that do not qualify their tables.
    #[arg(long)]
    pub catalog: Option<String>,
    /// Session schema.
    #[arg(long)]
    pub schema: Option<String>,
    /// A statement to time (repeatable; each runs once per round, in order). Without it: the
    /// built-in --suite.
    #[arg(long = "query", value_name = "SQL", conflicts_with = "suite")]
    pub queries: Vec<String>,
    /// The built-in set: tpch = the seed's count / aggregate / join over tpch.<--tpch-schema>.
    #[arg(long, value_enum, default_value_t = TrinoSuiteArg::Tpch)]
    pub suite: TrinoSuiteArg,
    /// The tpch schema the built-in set reads: tiny, sf1 (6M lineitem rows), sf10, …
    #[arg(long, default_value = "tiny")]
    pub tpch_schema: String,
    /// Timed runs of every query (the record's samples are the rounds).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub repetitions: u32,
    /// Untimed runs of every query first.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub warmup: u32,
    /// Give up on a query after this long, e.g. 10m.
    #[arg(long, value_parser = parse_duration, default_value = "10m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum TrinoSuiteArg {
    Tpch,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// `10`, `10s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a duration such as 10s, 500ms or 2m, got {s:?}"))?;
    if v.is_nan() || v <= 0.0 {
        return Err("the duration must be positive".into());
    }
    Ok(Duration::from_secs_f64(v * mult))
}

impl KafkaArgs {
    fn spec(&self) -> kafka::KafkaSpec {
        kafka::KafkaSpec {
            bootstrap: self.bootstrap.clone(),
            topic: self.topic.clone(),
            num_records: self.num_records,
            record_size: self.record_size,
            acks: self.acks.clone(),
            linger_ms: self.linger_ms,
            batch_size: self.batch_size,
            compression: self.compression.clone(),
            throughput: (self.throughput > 0.0).then_some(self.throughput),
            mode: match self.mode {
                KafkaMode::Produce => kafka::Mode::Produce,
                KafkaMode::Consume => kafka::Mode::Consume,
            },
            properties: self.properties.iter().cloned().collect(),
        }
    }
}

impl PgArgs {
    fn spec(&self) -> postgres::PgSpec {
        let duration = match (self.duration, self.transactions) {
            (None, None) => Some(10.0),
            (d, _) => d.map(|d| d.as_secs_f64()),
        };
        postgres::PgSpec {
            hosts: self.hosts.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            dbname: self.dbname.clone(),
            queries: self.queries.clone(),
            builtin: match self.builtin {
                BuiltinArg::TpcbLike => postgres::Builtin::TpcbLike,
                BuiltinArg::SelectOnly => postgres::Builtin::SelectOnly,
            },
            scale: self.scale,
            schema: self.schema.clone(),
            concurrency: self.concurrency,
            duration_s: duration,
            transactions: self.transactions,
            sslmode: self.sslmode.clone(),
            sslrootcert: self.sslrootcert.clone(),
            sslcert: self.sslcert.clone(),
            sslkey: self.sslkey.clone(),
        }
    }
}

impl CassandraArgs {
    fn spec(&self) -> cassandra::CassandraSpec {
        cassandra::CassandraSpec {
            hosts: self.hosts.clone(),
            user: Some(self.user.clone()),
            password: self.password.clone(),
            keyspace: self.keyspace.clone(),
            replication_factor: self.replication_factor,
            operations: self.operations,
            value_size: self.value_size,
            concurrency: self.concurrency,
            workload: match self.workload {
                WorkloadArg::Write => cassandra::Workload::Write,
                WorkloadArg::Read => cassandra::Workload::Read,
                WorkloadArg::Both => cassandra::Workload::Both,
            },
            rate: self.rate,
            duration_s: self.duration.map(|d| d.as_secs_f64()),
        }
    }
}

impl TrinoArgs {
    fn spec(&self) -> trino::TrinoSpec {
        trino::TrinoSpec {
            server: self.server.clone(),
            user: self.user.clone(),
            catalog: self.catalog.clone(),
            schema: self.schema.clone(),
            queries: self.queries.clone(),
            builtin: match self.suite {
                TrinoSuiteArg::Tpch => trino::Builtin::Tpch,
            },
            tpch_schema: self.tpch_schema.clone(),
            repetitions: self.repetitions,
            warmup: self.warmup,
            timeout_s: self.timeout.as_secs_f64(),
        }
    }
}

impl RedisArgs {
    fn spec(&self) -> redis::RedisSpec {
        redis::RedisSpec {
            host: self.host.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            db: self.db,
            operations: self.operations,
            duration_s: self.duration.map(|d| d.as_secs_f64()),
            keys: self.keys,
            value_size: self.value_size,
            concurrency: self.concurrency,
            pipeline: self.pipeline,
            workload: match self.workload {
                RedisWorkloadArg::Set => redis::Workload::Set,
                RedisWorkloadArg::Get => redis::Workload::Get,
                RedisWorkloadArg::Both => redis::Workload::Both,
            },
            key_prefix: self.key_prefix.clone(),
        }
    }
}

impl RayArgs {
    fn spec(&self) -> ray::RaySpec {
        ray::RaySpec {
            address: self.address.clone(),
            num_cpus: self.num_cpus,
            tasks: self.tasks,
            cpu_iterations: self.cpu_iterations,
            io_sleep_s: self.io_sleep.as_secs_f64(),
            workload: match self.workload {
                RayWorkloadArg::Cpu => ray::Workload::Cpu,
                RayWorkloadArg::Io => ray::Workload::Io,
                RayWorkloadArg::Both => ray::Workload::Both,
            },
            rounds: self.rounds,
            timeout_s: self.timeout.as_secs_f64(),
        }
    }
}

pub async fn run(args: BenchArgs) -> Result<Exit> {
    let (probe, out) = match args.probe {
        BenchProbe::Kafka(a) => (Probe::Kafka(a.spec()), a.out),
        BenchProbe::Postgres(a) => (Probe::Postgres(a.spec()), a.out),
        BenchProbe::Cassandra(a) => (Probe::Cassandra(a.spec()), a.out),
        BenchProbe::Trino(a) => (Probe::Trino(a.spec()), a.out),
        BenchProbe::Redis(a) => (Probe::Redis(a.spec()), a.out),
        BenchProbe::Ray(a) => (Probe::Ray(a.spec()), a.out),
        BenchProbe::Http(a) => (Probe::Http(a.spec()?), a.out),
    };
    if out.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let mut runs = Vec::new();
    for i in 0..out.repeat {
        let r = ferry_bench::run_probe(&probe).await?;
        if out.repeat > 1 && !out.json {
            eprintln!("run {}/{}: {}", i + 1, out.repeat, summary_line(&r));
        }
        runs.push(r);
    }
    let record = ferry_bench::combine_repetitions(runs);
    finish(&record, out.out.as_deref(), out.json)
}

/// Prints the summary and hints (or the JSON object), saves the record; exit code 1 when the
/// probe reported an error.
pub fn finish(record: &RunRecord, out: Option<&Path>, json: bool) -> Result<Exit> {
    let hints = ferry_report::hints::hints(record);
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => default_path(&record.kind),
    };
    record
        .save(&path)
        .with_context(|| format!("saving the run record to {}", path.display()))?;
    if json {
        super::output::print_json(
            "bench",
            &serde_json::json!({
                "kind": record.kind,
                "target": record.target,
                "summary_line": summary_line(record),
                "summary": record.summary,
                "hints": hints.iter().map(|h| serde_json::json!({"resource": h.resource, "message": h.message})).collect::<Vec<_>>(),
                "error": record.error,
                "run_record": path.display().to_string(),
            }),
        )?;
    } else {
        println!("{}", summary_line(record));
        for h in &hints {
            println!("hint ({}): {}", h.resource, h.message);
        }
        println!("run record: {}", path.display());
    }
    if let Some(e) = &record.error {
        eprintln!("ferry: probe error: {e}");
        return Ok(Exit::CheckFailed);
    }
    Ok(Exit::Success)
}

pub fn default_path(kind: &str) -> PathBuf {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{kind}-{ms}.json"))
}

/// One line in the shape of the service's own tool, e.g. kafka-producer-perf-test's
/// "100000 records sent, 11241.0 records/sec (10.98 MB/sec), 1949.10 ms avg latency, …".
pub fn summary_line(r: &RunRecord) -> String {
    let s = &r.summary;
    let g = |k: &str| s.get(k).copied().unwrap_or(f64::NAN);
    let rep = match r.sample_unit.as_deref() {
        Some("repetition") => format!(" (median of {} runs)", r.samples.len()),
        _ => String::new(),
    };
    match r.kind.as_str() {
        "kafka-produce" => format!(
            "{:.0} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.0} ms 50th, {:.0} ms 95th, {:.0} ms 99th, {:.0} ms 99.9th{rep}",
            g("records"), g("records_per_sec"), g("mb_per_sec"), g("avg_ms"), g("max_ms"),
            g("p50_ms"), g("p95_ms"), g("p99_ms"), g("p999_ms")
        ),
        "kafka-consume" => format!(
            "{:.0} records consumed, {:.2} MB, {:.1} records/sec ({:.2} MB/sec) in {:.2} s{rep}",
            g("records"), g("mb"), g("records_per_sec"), g("mb_per_sec"), g("seconds")
        ),
        "postgres" => {
            let hit = r
                .server
                .as_ref()
                .and_then(|v| v.pointer("/during/cache_hit_ratio"))
                .and_then(|v| v.as_f64())
                .map(|h| format!(", cache hit ratio {:.2}%", h * 100.0))
                .unwrap_or_default();
            format!(
                "{:.0} operations, {:.1} per sec, latency avg {:.3} ms, p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms{hit}{rep}",
                g("records"), g("records_per_sec"), g("avg_ms"), g("p50_ms"), g("p95_ms"), g("p99_ms"), g("max_ms")
            )
        }
        "cassandra" => {
            let mut parts = Vec::new();
            for p in ["write", "read"] {
                if s.contains_key(&format!("{p}_ops_per_sec")) {
                    parts.push(format!(
                        "{p}s: {:.0} ops, {:.1} ops/sec, latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                        g(&format!("{p}_records")),
                        g(&format!("{p}_ops_per_sec")),
                        g(&format!("{p}_p50_ms")),
                        g(&format!("{p}_p99_ms")),
                        g(&format!("{p}_max_ms"))
                    ));
                }
            }
            format!("{}{rep}", parts.join("; "))
        }
        "trino" => {
            let names: Vec<String> = r
                .result
                .as_ref()
                .and_then(|v| v.pointer("/queries"))
                .and_then(|v| v.as_array())
                .map(|q| {
                    q.iter()
                        .filter_map(|x| x["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let one = |p: &str| {
                format!(
                    "elapsed {:.0} ms (p95 {:.0} ms), queued {:.0} ms, CPU {:.0} ms, {:.0} rows ({:.2} MB) processed, peak memory {:.2} MB",
                    g(&format!("{p}elapsed_ms")), g(&format!("{p}elapsed_p95_ms")),
                    g(&format!("{p}queued_ms")), g(&format!("{p}cpu_ms")),
                    g(&format!("{p}processed_rows")), g(&format!("{p}processed_bytes")) / 1e6,
                    g(&format!("{p}peak_memory_bytes")) / 1e6
                )
            };
            if names.len() <= 1 {
                format!("{:.0} executions: {}{rep}", g("records"), one(""))
            } else {
                let parts: Vec<String> = names
                    .iter()
                    .map(|n| format!("{n}: {}", one(&format!("{n}_"))))
                    .collect();
                format!("{:.0} executions; {}{rep}", g("records"), parts.join("; "))
            }
        }
        "redis" => {
            let mut parts = Vec::new();
            for (p, name) in [("set", "SET"), ("get", "GET")] {
                if s.contains_key(&format!("{p}_ops_per_sec")) {
                    parts.push(format!(
                        "{name}: {:.0} requests, {:.2} requests per second, p50={:.3} msec, p99={:.3} msec, max={:.3} msec",
                        g(&format!("{p}_records")),
                        g(&format!("{p}_ops_per_sec")),
                        g(&format!("{p}_p50_ms")),
                        g(&format!("{p}_p99_ms")),
                        g(&format!("{p}_max_ms"))
                    ));
                }
            }
            let server = r.server.as_ref();
            let at = |p: &str| server.and_then(|v| v.pointer(p)).cloned().unwrap_or_default();
            let hit = at("/during/keyspace_hit_ratio")
                .as_f64()
                .map(|h| format!(", keyspace hit ratio {:.2}%", h * 100.0))
                .unwrap_or_default();
            format!(
                "{}; used_memory {}, maxmemory {} ({}){hit}{rep}",
                parts.join("; "),
                at("/memory/used_memory_human").as_str().unwrap_or("?"),
                at("/memory/maxmemory_human").as_str().unwrap_or("?"),
                at("/memory/maxmemory_policy").as_str().unwrap_or("?"),
            )
        }
        "ray" => {
            let mut parts = Vec::new();
            for (p, name) in [("cpu", "CPU"), ("io", "I/O")] {
                if s.contains_key(&format!("{p}_tasks_per_sec")) {
                    parts.push(format!(
                        "{name} tasks: {:.2} tasks/sec (task p50 {:.1} ms)",
                        g(&format!("{p}_tasks_per_sec")),
                        g(&format!("{p}_task_p50_ms"))
                    ));
                }
            }
            let res = r
                .server
                .as_ref()
                .and_then(|v| v.get("cluster_resources"))
                .and_then(|v| v.get("CPU"))
                .and_then(|v| v.as_f64());
            let reserved = r
                .server
                .as_ref()
                .and_then(|v| v.get("reserved_cpus"))
                .and_then(|v| v.as_f64());
            format!(
                "{} on {} of the cluster's {} CPUs{rep}",
                parts.join("; "),
                reserved.map(|c| format!("{c:.0}")).unwrap_or("?".into()),
                res.map(|c| format!("{c:.0}")).unwrap_or("?".into()),
            )
        }
        "http" => {
            let statuses = r
                .server
                .as_ref()
                .and_then(|v| v.get("status_counts"))
                .and_then(|v| v.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!(
                "{:.0} requests in {:.2}s, {:.2} requests/sec, {:.2} MB/sec (bodies); latency avg {:.3} ms, p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; status {{{statuses}}}, {:.0} errors{rep}",
                g("records"), g("seconds"), g("records_per_sec"), g("mb_per_sec"), g("avg_ms"),
                g("p50_ms"), g("p95_ms"), g("p99_ms"), g("p999_ms"), g("max_ms"), g("errors")
            )
        }
        _ => ferry_report::model::headline(r).replace("**", ""),
    }
}
