//! The PostgreSQL / YugabyteDB probe: `concurrency` connections (spread over every given host)
//! run the workload for `duration_s` or `transactions`, each operation timed; and a server
//! snapshot before and after — the seed's `pg_stat_database` query (backends, commits,
//! rollbacks, cache hits) and its `SHOW` settings.
//!
//! Workloads: the given `queries` (each a statement, issued round-robin, prepared once per
//! connection), or a built-in pgbench-like mix on pgbench's four tables in a schema of the
//! probe's own: `tpcb-like` (pgbench's default transaction) or `select-only`.

use ferry_migrate::config::Secret;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_migrate::config::{SslMode, TargetTlsSpec};
use ferry_migrate::sink::TargetEndpoint;
use ferry_migrate::target_tls::TargetTls;
use ferry_report::RunRecord;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::recorder::{latency_metrics, summarize, Recorder};
use crate::{finish_record, quote_ident, start_record, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    TpcbLike,
    SelectOnly,
}

/// Where the probe goes without `--host`: YugabyteDB's YSQL port (ferry's `yugabyte.port`
/// default), where `scripts/testbed up` serves its first node. PostgreSQL's usual 5432 is one
/// `--host` away.
pub const DEFAULT_HOST: &str = "127.0.0.1:5433";
/// A role and a database every PostgreSQL and YugabyteDB cluster has.
pub const DEFAULT_USER: &str = "postgres";
pub const DEFAULT_DBNAME: &str = "postgres";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgSpec {
    /// `host:port` list; connections are spread over them.
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
    #[serde(default = "default_user")]
    pub user: String,
    /// From the environment (PGPASSWORD) when unset; never written to a record.
    #[serde(default, skip)]
    pub password: Option<Secret>,
    #[serde(default = "default_dbname")]
    pub dbname: String,
    /// Statements to time; empty = the built-in mix.
    #[serde(default)]
    pub queries: Vec<String>,
    #[serde(default = "default_builtin")]
    pub builtin: Builtin,
    /// pgbench's scale: 100,000 accounts per unit.
    #[serde(default = "default_scale")]
    pub scale: u32,
    /// Schema holding the built-in mix's tables.
    #[serde(default = "default_schema")]
    pub schema: String,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Run for this long…
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// …or until this many operations completed (over all connections).
    #[serde(default)]
    pub transactions: Option<u64>,
    /// TLS, as `yugabyte.sslmode` (libpq's words; default `prefer`) and its files.
    #[serde(default)]
    pub sslmode: Option<String>,
    #[serde(default)]
    pub sslrootcert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub sslcert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub sslkey: Option<std::path::PathBuf>,
}

fn default_hosts() -> Vec<String> {
    vec![DEFAULT_HOST.into()]
}
fn default_user() -> String {
    DEFAULT_USER.into()
}
fn default_dbname() -> String {
    DEFAULT_DBNAME.into()
}
fn default_builtin() -> Builtin {
    Builtin::TpcbLike
}
fn default_scale() -> u32 {
    1
}
fn default_schema() -> String {
    "ferry_bench".into()
}
fn default_concurrency() -> usize {
    4
}

const ACCOUNTS_PER_SCALE: i64 = 100_000;
const SETTINGS: [&str; 5] = [
    "max_connections",
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "maintenance_work_mem",
];

impl PgSpec {
    fn parameters(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "hosts": self.hosts,
            "user": self.user,
            "dbname": self.dbname,
            "workload": if self.queries.is_empty() {
                json!(match self.builtin { Builtin::TpcbLike => "tpcb-like", Builtin::SelectOnly => "select-only" })
            } else {
                json!(self.queries)
            },
            "scale": self.scale,
            "schema": self.schema,
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "transactions": self.transactions,
            "sslmode": self.ssl_mode().map(|m| m.as_str()).unwrap_or("invalid"),
        });
        v.as_object().cloned().unwrap_or_default()
    }

    fn ssl_mode(&self) -> Option<SslMode> {
        match &self.sslmode {
            Some(w) => SslMode::from_word(w),
            None => Some(SslMode::Prefer),
        }
    }

    /// TLS settings read once for every connection of the probe.
    fn tls(&self) -> Result<TargetTls, Error> {
        let mode = self.ssl_mode().ok_or_else(|| {
            Error::Spec(
                "sslmode takes disable, allow, prefer, require, verify-ca or verify-full".into(),
            )
        })?;
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && self.sslrootcert.is_none() {
            return Err(Error::Spec(format!(
                "sslmode={} needs sslrootcert (the CA certificate that signed the server's)",
                mode.as_str()
            )));
        }
        TargetTls::from_spec(&TargetTlsSpec {
            mode,
            root_cert: self.sslrootcert.clone(),
            client_cert: self.sslcert.clone(),
            client_key: self.sslkey.clone(),
            password: None,
        })
        .map_err(|e| Error::Spec(e.to_string()))
    }

    /// Connection `i`'s node, through ferry's one target connector.
    fn endpoint(&self, i: usize, tls: &TargetTls) -> TargetEndpoint {
        let hp = &self.hosts[i % self.hosts.len()];
        let (host, port) = hp.rsplit_once(':').unwrap_or((hp.as_str(), "5432"));
        TargetEndpoint {
            hosts: vec![(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port.parse().unwrap_or(5432),
            )],
            database: self.dbname.clone(),
            username: self.user.clone(),
            password: self
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .or_else(|| std::env::var("PGPASSWORD").ok()),
            connect_timeout_ms: 10_000,
            socket_timeout: None,
            load_balance: false,
            tls: tls.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.hosts.is_empty() {
            return Err(Error::Spec("give at least one host:port".into()));
        }
        if self.concurrency == 0 {
            return Err(Error::Spec("concurrency must be at least 1".into()));
        }
        if self.duration_s.is_none() && self.transactions.is_none() {
            return Err(Error::Spec(
                "give a duration (--duration) or a number of transactions (--transactions)".into(),
            ));
        }
        if self.scale == 0 {
            return Err(Error::Spec("scale must be at least 1".into()));
        }
        Ok(())
    }
}

async fn connect(spec: &PgSpec, tls: &TargetTls, i: usize) -> Result<Client, Error> {
    let ep = spec.endpoint(i, tls);
    let (host, port) = ep.hosts[0].clone();
    ep.connect(&host, port)
        .await
        .map_err(|e| Error::Postgres(format!("{e:#}")))
}

/// Creates pgbench's tables in the probe's schema unless they already hold this scale.
async fn init_builtin(client: &Client, spec: &PgSpec) -> Result<(), Error> {
    let s = quote_ident(&spec.schema);
    let ready = client
        .query_opt(&format!("SELECT count(*) FROM {s}.pgbench_branches"), &[])
        .await
        .ok()
        .flatten()
        .map(|r| r.get::<_, i64>(0) == spec.scale as i64)
        .unwrap_or(false);
    if ready {
        return Ok(());
    }
    let accounts = ACCOUNTS_PER_SCALE * spec.scale as i64;
    let sql = format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         DROP TABLE IF EXISTS {s}.pgbench_accounts, {s}.pgbench_branches, {s}.pgbench_tellers, {s}.pgbench_history;
         CREATE TABLE {s}.pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
         CREATE TABLE {s}.pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
         CREATE TABLE {s}.pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
         CREATE TABLE {s}.pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
         INSERT INTO {s}.pgbench_branches SELECT g, 0, '' FROM generate_series(1, {scale}) g;
         INSERT INTO {s}.pgbench_tellers SELECT g, (g - 1) / 10 + 1, 0, '' FROM generate_series(1, {tellers}) g;
         INSERT INTO {s}.pgbench_accounts SELECT g, (g - 1) / {per} + 1, 0, '' FROM generate_series(1, {accounts}) g;
         ANALYZE {s}.pgbench_branches, {s}.pgbench_tellers, {s}.pgbench_accounts;",
        scale = spec.scale,
        tellers = 10 * spec.scale,
        per = ACCOUNTS_PER_SCALE,
    );
    client.batch_execute(&sql).await?;
    Ok(())
}

/// The server's view: version, connection count, this database's pg_stat_database row and the
/// settings the seed tunes.
async fn snapshot(client: &Client) -> Result<Value, Error> {
    let version: String = client.query_one("SELECT version()", &[]).await?.get(0);
    let connections: i64 = client
        .query_one("SELECT count(*) FROM pg_stat_activity", &[])
        .await?
        .get(0);
    let row = client
        .query_one(
            "SELECT numbackends::int8, xact_commit::int8, xact_rollback::int8, blks_read::int8, blks_hit::int8
             FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?;
    let (read, hit): (i64, i64) = (row.get(3), row.get(4));
    let mut settings = serde_json::Map::new();
    for name in SETTINGS {
        if let Ok(r) = client
            .query_one("SELECT current_setting($1)", &[&name])
            .await
        {
            settings.insert(name.to_string(), json!(r.get::<_, String>(0)));
        }
    }
    Ok(json!({
        "version": version,
        "connections": connections,
        "database": {
            "numbackends": row.get::<_, i64>(0),
            "xact_commit": row.get::<_, i64>(1),
            "xact_rollback": row.get::<_, i64>(2),
            "blks_read": read,
            "blks_hit": hit,
            "cache_hit_ratio": if read + hit > 0 { json!(hit as f64 / (read + hit) as f64) } else { Value::Null },
        },
        "settings": settings,
    }))
}

enum Workload {
    Queries(Vec<tokio_postgres::Statement>),
    Tpcb([tokio_postgres::Statement; 5], i64),
    Select(tokio_postgres::Statement, i64),
}

async fn prepare(client: &Client, spec: &PgSpec) -> Result<Workload, Error> {
    let s = quote_ident(&spec.schema);
    let accounts = ACCOUNTS_PER_SCALE * spec.scale as i64;
    if !spec.queries.is_empty() {
        let mut stmts = Vec::new();
        for q in &spec.queries {
            stmts.push(
                client
                    .prepare(q)
                    .await
                    .map_err(|e| Error::Postgres(format!("preparing {q:?}: {}", Error::from(e))))?,
            );
        }
        return Ok(Workload::Queries(stmts));
    }
    Ok(match spec.builtin {
        Builtin::SelectOnly => Workload::Select(
            client
                .prepare(&format!("SELECT abalance FROM {s}.pgbench_accounts WHERE aid = $1"))
                .await?,
            accounts,
        ),
        Builtin::TpcbLike => Workload::Tpcb(
            [
                client.prepare(&format!("UPDATE {s}.pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2")).await?,
                client.prepare(&format!("SELECT abalance FROM {s}.pgbench_accounts WHERE aid = $1")).await?,
                client.prepare(&format!("UPDATE {s}.pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2")).await?,
                client.prepare(&format!("UPDATE {s}.pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2")).await?,
                client.prepare(&format!("INSERT INTO {s}.pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)")).await?,
            ],
            accounts,
        ),
    })
}

/// One connection's loop. Returns its timings, split per statement for `queries`.
async fn worker(
    mut client: Client,
    work: Workload,
    origin: Instant,
    deadline: Option<Instant>,
    budget: Arc<AtomicU64>,
    index: usize,
) -> Result<Vec<Recorder>, Error> {
    let n_kinds = match &work {
        Workload::Queries(q) => q.len(),
        _ => 1,
    };
    let mut recs: Vec<Recorder> = (0..n_kinds).map(|_| Recorder::new(origin)).collect();
    // A Send generator: the worker is a spawned task.
    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
    let mut turn = index;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // One unit of the shared budget per operation; a run by duration has u64::MAX.
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_err()
        {
            break;
        }
        let issued = Instant::now();
        let kind = match &work {
            Workload::Queries(stmts) => {
                let k = turn % stmts.len();
                client.query(&stmts[k], &[]).await?;
                k
            }
            Workload::Select(stmt, accounts) => {
                let aid = rng.random_range(1..=*accounts) as i32;
                client.query_one(stmt, &[&aid]).await?;
                0
            }
            Workload::Tpcb(st, accounts) => {
                let aid = rng.random_range(1..=*accounts) as i32;
                let branches = (*accounts / ACCOUNTS_PER_SCALE) as i32;
                let bid = rng.random_range(1..=branches);
                let tid = rng.random_range(1..=branches * 10);
                let delta = rng.random_range(-5000..=5000i32);
                let tx = client.transaction().await?;
                tx.execute(&st[0], &[&delta, &aid]).await?;
                tx.query_one(&st[1], &[&aid]).await?;
                tx.execute(&st[2], &[&delta, &tid]).await?;
                tx.execute(&st[3], &[&delta, &bid]).await?;
                tx.execute(&st[4], &[&tid, &bid, &aid, &delta]).await?;
                tx.commit().await?;
                0
            }
        };
        recs[kind].record(issued, Instant::now());
        turn += 1;
    }
    Ok(recs)
}

pub async fn run(spec: &PgSpec) -> Result<RunRecord, Error> {
    spec.validate()?;
    let (mut record, origin) = start_record("postgres", spec.parameters());
    let tls = spec.tls()?;
    let admin = connect(spec, &tls, 0).await?;
    if spec.queries.is_empty() {
        init_builtin(&admin, spec).await?;
    }
    let mut clients = Vec::new();
    // Connection set-up (TCP, TLS when asked, authentication, the startup round trips): the
    // seed's "connection test", timed for each of the probe's connections.
    let mut connect_ms = Vec::new();
    for i in 0..spec.concurrency {
        let t = Instant::now();
        let c = connect(spec, &tls, i).await?;
        connect_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let w = prepare(&c, spec).await?;
        clients.push((c, w));
    }
    let before = snapshot(&admin).await?;
    let sampler = crate::host::Sampler::start(origin, crate::SAMPLE_INTERVAL);
    let t0 = Instant::now();
    let deadline = spec.duration_s.map(|s| t0 + Duration::from_secs_f64(s));
    let budget = Arc::new(AtomicU64::new(spec.transactions.unwrap_or(u64::MAX)));
    let mut tasks = Vec::new();
    for (i, (c, w)) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(worker(c, w, t0, deadline, budget.clone(), i)));
    }
    let mut per_kind: Vec<Recorder> = Vec::new();
    for t in tasks {
        let recs = t
            .await
            .map_err(|e| Error::Io(format!("a PostgreSQL worker failed: {e}")))??;
        for (k, r) in recs.into_iter().enumerate() {
            if per_kind.len() <= k {
                per_kind.push(Recorder::new(t0));
            }
            per_kind[k].merge(r);
        }
    }
    let elapsed = t0.elapsed();
    let host_samples = sampler.finish();
    let mut all = Recorder::new(t0);
    for r in &per_kind {
        all.merge(r.clone());
    }
    let ops = all.ops.len() as i64;
    // The server counts a commit when the backend reports it; wait (briefly) until ours show.
    let want = before
        .pointer("/database/xact_commit")
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
        + ops;
    let mut after = snapshot(&admin).await?;
    let wait_until = Instant::now() + Duration::from_secs(3);
    while after
        .pointer("/database/xact_commit")
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
        < want
        && Instant::now() < wait_until
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = snapshot(&admin).await?;
    }
    let d = |p: &str| {
        after.pointer(p).and_then(|v| v.as_i64()).unwrap_or(0)
            - before.pointer(p).and_then(|v| v.as_i64()).unwrap_or(0)
    };
    let (read, hit) = (d("/database/blks_read"), d("/database/blks_hit"));
    let mut server = after.clone();
    server["during"] = json!({
        "commits": d("/database/xact_commit"),
        "rollbacks": d("/database/xact_rollback"),
        "commits_per_sec": d("/database/xact_commit") as f64 / elapsed.as_secs_f64().max(1e-9),
        "blks_read": read,
        "blks_hit": hit,
        "cache_hit_ratio": if read + hit > 0 { json!(hit as f64 / (read + hit) as f64) } else { Value::Null },
    });
    // While the probe's connections were open (the after-snapshot sees them closed).
    server["connections"] = before["connections"].clone();
    record.target = Some(format!(
        "{} at {}",
        after["version"].as_str().unwrap_or("PostgreSQL"),
        spec.hosts.join(",")
    ));
    let (mut summary, samples) = summarize(&all.ops, elapsed, 0.0, "", true);
    summary.insert("seconds".into(), elapsed.as_secs_f64());
    if !connect_ms.is_empty() {
        summary.insert(
            "connect_avg_ms".into(),
            connect_ms.iter().sum::<f64>() / connect_ms.len() as f64,
        );
        summary.insert(
            "connect_max_ms".into(),
            connect_ms.iter().copied().fold(0.0, f64::max),
        );
    }
    record.summary = summary;
    record.sample_unit = Some("window".into());
    record.samples = samples;
    record.host_samples = host_samples;
    record.server = Some(server);
    if !spec.queries.is_empty() {
        let queries: Vec<Value> = spec
            .queries
            .iter()
            .zip(&per_kind)
            .map(|(q, r)| {
                let mut m = ferry_report::record::Metrics::new();
                m.insert("count".into(), r.ops.len() as f64);
                latency_metrics(&mut m, "", r.ops.iter().map(|o| o.latency_us));
                let mut v = json!({ "sql": q });
                for (k, x) in m {
                    v[k] = json!(x);
                }
                v
            })
            .collect();
        record.result = Some(json!({ "queries": queries }));
    }
    Ok(finish_record(record))
}
