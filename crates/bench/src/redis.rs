//! The Redis probe: `operations` SETs of `value_size` bytes (or as many as fit in `duration_s`),
//! then as many GETs (or `duration_s` of them) of random keys among those written, each phase over `concurrency` connections with `pipeline` commands in
//! flight per connection (1 = request/response; more = one write of that many commands, then
//! their replies). Per-phase throughput and latency (a pipelined command's latency runs from its
//! batch's write to its own reply), and the server's INFO before and after: memory
//! (`used_memory`, `maxmemory`, `maxmemory-policy`), keyspace hits and misses, evictions — the
//! seed's cache settings made measurable.
//!
//! Keys live under a prefix of the probe's own (`key_prefix:N`) and are deleted at the end.
//! RESP2 is spoken directly (a few commands: AUTH, SELECT, SET, GET, DEL, INFO, PING).

use ferry_migrate::config::Secret;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_report::RunRecord;
use rand::{Rng, RngCore, SeedableRng};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::recorder::{summarize, Recorder};
use crate::{finish_record, start_record, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Set,
    Get,
    /// SET, then GET back.
    Both,
}

/// Where the probe goes by default: Redis's own default port, where `scripts/testbed up redis` runs
/// its server.
pub const DEFAULT_HOST: &str = "127.0.0.1:6379";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// `host:port`.
    #[serde(default = "default_host")]
    pub host: String,
    /// ACL user (Redis 6+); without it AUTH sends the password alone.
    #[serde(default)]
    pub user: Option<String>,
    /// From FERRY_REDIS_PASSWORD when unset; never written to a record.
    #[serde(default, skip)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub db: u32,
    /// SETs, and then as many GETs…
    #[serde(default = "default_ops")]
    pub operations: u64,
    /// …or, when set, each phase for this long (`operations` is then ignored).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// Distinct keys the SETs cycle through (and the GETs pick from).
    #[serde(default = "default_keys")]
    pub keys: u64,
    #[serde(default = "default_value_size")]
    pub value_size: usize,
    /// Connections.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Commands in flight per connection.
    #[serde(default = "default_pipeline")]
    pub pipeline: usize,
    #[serde(default = "default_workload")]
    pub workload: Workload,
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
}

fn default_host() -> String {
    DEFAULT_HOST.into()
}
fn default_ops() -> u64 {
    100_000
}
fn default_keys() -> u64 {
    10_000
}
fn default_value_size() -> usize {
    100
}
fn default_concurrency() -> usize {
    8
}
fn default_pipeline() -> usize {
    1
}
fn default_workload() -> Workload {
    Workload::Both
}
fn default_prefix() -> String {
    "ferry_bench".into()
}

impl RedisSpec {
    fn parameters(&self) -> Map<String, Value> {
        let v = json!({
            "host": self.host,
            "user": self.user,
            "db": self.db,
            "operations": if self.duration_s.is_some() { Value::Null } else { json!(self.operations) },
            "duration_s": self.duration_s,
            "keys": self.keys,
            "value_size": self.value_size,
            "concurrency": self.concurrency,
            "pipeline": self.pipeline,
            "workload": match self.workload { Workload::Set => "set", Workload::Get => "get", Workload::Both => "both" },
            "key_prefix": self.key_prefix,
        });
        v.as_object().cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.concurrency == 0 || self.pipeline == 0 || self.operations == 0 || self.keys == 0 {
            return Err(Error::Spec(
                "give concurrency ≥ 1, pipeline ≥ 1, operations ≥ 1 and keys ≥ 1".into(),
            ));
        }
        if self.duration_s.is_some_and(|d| d.is_nan() || d <= 0.0) {
            return Err(Error::Spec("the duration must be positive".into()));
        }
        Ok(())
    }

    fn key(&self, i: u64) -> Vec<u8> {
        format!("{}:{i}", self.key_prefix).into_bytes()
    }
}

/// A RESP2 reply (arrays hold no nested arrays: the commands used here never return them).
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// One connection: commands are encoded into `out` and written in one go.
struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    out: Vec<u8>,
    line: Vec<u8>,
}

fn protocol(e: impl std::fmt::Display) -> Error {
    Error::Redis(format!("connection lost: {e}"))
}

impl Conn {
    async fn open(spec: &RedisSpec) -> Result<Conn, Error> {
        let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&spec.host))
            .await
            .map_err(|_| {
                Error::Redis(format!(
                    "cannot connect to {}: no answer within 10 s",
                    spec.host
                ))
            })?
            .map_err(|e| {
                Error::Redis(format!(
                    "cannot connect to {}: {e} — is redis-server running there? (test bed: scripts/testbed up redis; or give --host)",
                    spec.host
                ))
            })?;
        s.set_nodelay(true).ok();
        let (r, w) = s.into_split();
        let mut c = Conn {
            r: BufReader::with_capacity(64 * 1024, r),
            w,
            out: Vec::with_capacity(64 * 1024),
            line: Vec::new(),
        };
        let pw = spec
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .or_else(|| std::env::var("FERRY_REDIS_PASSWORD").ok());
        if let Some(pw) = pw {
            let r = match &spec.user {
                Some(u) => c.call(&[b"AUTH", u.as_bytes(), pw.as_bytes()]).await?,
                None => c.call(&[b"AUTH", pw.as_bytes()]).await?,
            };
            ok_or(r, "AUTH")?;
        }
        if spec.db != 0 {
            let r = c.call(&[b"SELECT", spec.db.to_string().as_bytes()]).await?;
            ok_or(r, "SELECT")?;
        }
        Ok(c)
    }

    fn push(&mut self, args: &[&[u8]]) {
        self.out
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            self.out
                .extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.w.write_all(&self.out).await.map_err(protocol)?;
        self.out.clear();
        Ok(())
    }

    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, Error> {
        self.push(args);
        self.flush().await?;
        self.read().await
    }

    async fn header(&mut self) -> Result<(u8, String), Error> {
        self.line.clear();
        let n = self
            .r
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(protocol)?;
        if n < 3 || !self.line.ends_with(b"\r\n") {
            return Err(Error::Redis(
                "connection closed by the server (see its log, e.g. scripts/testbed logs redis)"
                    .into(),
            ));
        }
        let text = String::from_utf8_lossy(&self.line[1..n - 2]).into_owned();
        Ok((self.line[0], text))
    }

    async fn scalar(&mut self, kind: u8, text: String) -> Result<Reply, Error> {
        let num = |t: &str| {
            t.parse::<i64>()
                .map_err(|_| Error::Redis(format!("not RESP: a length of {t:?}")))
        };
        Ok(match kind {
            b'+' => Reply::Status(text),
            b'-' => Reply::Error(text),
            b':' => Reply::Int(num(&text)?),
            b'$' => {
                let len = num(&text)?;
                if len < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut v = vec![0u8; len as usize + 2];
                    self.r.read_exact(&mut v).await.map_err(protocol)?;
                    v.truncate(len as usize);
                    Reply::Bulk(Some(v))
                }
            }
            other => {
                return Err(Error::Redis(format!(
                    "not a RESP2 server: a reply started with {:?}",
                    other as char
                )))
            }
        })
    }

    async fn read(&mut self) -> Result<Reply, Error> {
        let (kind, text) = self.header().await?;
        if kind != b'*' {
            return self.scalar(kind, text).await;
        }
        let n: i64 = text
            .parse()
            .map_err(|_| Error::Redis(format!("not RESP: an array length of {text:?}")))?;
        let mut items = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n.max(0) {
            let (k, t) = self.header().await?;
            if k == b'*' {
                return Err(Error::Redis("unexpected nested array in a reply".into()));
            }
            items.push(self.scalar(k, t).await?);
        }
        Ok(Reply::Array(items))
    }
}

fn ok_or(r: Reply, what: &str) -> Result<Reply, Error> {
    match r {
        Reply::Error(e) => {
            let fix = if e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") {
                " (give --password or FERRY_REDIS_PASSWORD, and --user for an ACL user)"
            } else {
                ""
            };
            Err(Error::Redis(format!("{what} failed: {e}{fix}")))
        }
        r => Ok(r),
    }
}

/// INFO as key → value (sections flattened; `db0` keeps its `keys=…,expires=…` text).
async fn info(c: &mut Conn) -> Result<Map<String, Value>, Error> {
    let text = match ok_or(c.call(&[b"INFO", b"all"]).await?, "INFO")? {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(Error::Redis(format!("INFO replied {other:?}"))),
    };
    let mut m = Map::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            let val = v
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .map(Value::from)
                        .ok_or(())
                })
                .unwrap_or_else(|_| Value::from(v));
            m.insert(k.to_string(), val);
        }
    }
    Ok(m)
}

fn hit_ratio(hits: i64, misses: i64) -> Value {
    if hits + misses > 0 {
        json!(hits as f64 / (hits + misses) as f64)
    } else {
        Value::Null
    }
}

/// The facts the seed's cache tuning sets and the counters that show its effect.
fn snapshot(i: &Map<String, Value>) -> Value {
    let g = |k: &str| i.get(k).cloned().unwrap_or(Value::Null);
    let n = |k: &str| i.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    let keyspace: Map<String, Value> = i
        .iter()
        .filter(|(k, _)| k.starts_with("db") && k[2..].chars().all(|c| c.is_ascii_digit()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "version": g("redis_version"),
        "memory": {
            "used_memory": g("used_memory"),
            "used_memory_human": g("used_memory_human"),
            "used_memory_peak": g("used_memory_peak"),
            "maxmemory": g("maxmemory"),
            "maxmemory_human": g("maxmemory_human"),
            "maxmemory_policy": g("maxmemory_policy"),
            "mem_fragmentation_ratio": g("mem_fragmentation_ratio"),
        },
        "stats": {
            "keyspace_hits": n("keyspace_hits"),
            "keyspace_misses": n("keyspace_misses"),
            "keyspace_hit_ratio": hit_ratio(n("keyspace_hits"), n("keyspace_misses")),
            "evicted_keys": n("evicted_keys"),
            "expired_keys": n("expired_keys"),
            "total_commands_processed": n("total_commands_processed"),
        },
        "clients": g("connected_clients"),
        "settings": {
            "maxclients": g("maxclients"),
            "maxmemory": g("maxmemory"),
            "maxmemory_policy": g("maxmemory_policy"),
        },
        "keyspace": keyspace,
    })
}

#[derive(Clone, Copy)]
enum Cmd {
    Set,
    Get,
}

/// What every connection of a phase shares.
struct Phase {
    spec: Arc<RedisSpec>,
    cmd: Cmd,
    value: Arc<Vec<u8>>,
    origin: Instant,
    /// Commands left to issue.
    budget: AtomicU64,
    /// When to stop, for a phase by duration.
    deadline: Option<Instant>,
    /// The next key a SET writes.
    next_key: AtomicU64,
    /// GETs pick keys in 0..key_range.
    key_range: u64,
}

/// One connection's loop: batches of up to `pipeline` commands until the budget is spent.
/// Returns its timings and the GETs that found their key.
async fn worker(mut c: Conn, ph: Arc<Phase>) -> Result<(Recorder, u64), Error> {
    let spec = &ph.spec;
    let mut rec = Recorder::new(ph.origin);
    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
    let mut hits = 0u64;
    let mut batch_keys: Vec<Vec<u8>> = Vec::with_capacity(spec.pipeline);
    let what = match ph.cmd {
        Cmd::Set => "SET",
        Cmd::Get => "GET",
    };
    loop {
        if ph.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let want = spec.pipeline as u64;
        let Ok(before) = ph
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b > 0).then(|| b.saturating_sub(want))
            })
        else {
            break;
        };
        let n = before.min(want);
        batch_keys.clear();
        for _ in 0..n {
            let k = match ph.cmd {
                Cmd::Set => ph.next_key.fetch_add(1, Ordering::Relaxed) % spec.keys,
                Cmd::Get => rng.random_range(0..ph.key_range),
            };
            batch_keys.push(spec.key(k));
        }
        for k in &batch_keys {
            match ph.cmd {
                Cmd::Set => c.push(&[b"SET", k, &ph.value]),
                Cmd::Get => c.push(&[b"GET", k]),
            }
        }
        let issued = Instant::now();
        c.flush().await?;
        for _ in 0..n {
            let r = ok_or(c.read().await?, what)?;
            rec.record(issued, Instant::now());
            if let Reply::Bulk(Some(_)) = r {
                hits += 1;
            }
        }
    }
    Ok((rec, hits))
}

/// One phase over fresh connections; returns the merged timings, its wall time and GET hits.
async fn phase(
    spec: &Arc<RedisSpec>,
    cmd: Cmd,
    value: &Arc<Vec<u8>>,
    key_range: u64,
) -> Result<(Recorder, Duration, u64), Error> {
    let mut conns = Vec::new();
    for _ in 0..spec.concurrency {
        conns.push(Conn::open(spec).await?);
    }
    let t0 = Instant::now();
    let ph = Arc::new(Phase {
        spec: spec.clone(),
        cmd,
        value: value.clone(),
        origin: t0,
        budget: AtomicU64::new(if spec.duration_s.is_some() {
            u64::MAX
        } else {
            spec.operations
        }),
        deadline: spec.duration_s.map(|s| t0 + Duration::from_secs_f64(s)),
        next_key: AtomicU64::new(0),
        key_range,
    });
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(worker(c, ph.clone())))
        .collect();
    let mut all = Recorder::new(t0);
    let mut hits = 0;
    for t in tasks {
        let (r, h) = t
            .await
            .map_err(|e| Error::Io(format!("a Redis worker failed: {e}")))??;
        all.merge(r);
        hits += h;
    }
    Ok((all, t0.elapsed(), hits))
}

/// Writes every key once, untimed (a GET-only run reads what this wrote).
async fn preload(c: &mut Conn, spec: &RedisSpec, value: &[u8], n: u64) -> Result<(), Error> {
    for start in (0..n).step_by(1000) {
        let chunk = start..(start + 1000).min(n);
        for i in chunk.clone() {
            c.push(&[b"SET", &spec.key(i), value]);
        }
        c.flush().await?;
        for _ in chunk {
            ok_or(c.read().await?, "SET")?;
        }
    }
    Ok(())
}

async fn cleanup(c: &mut Conn, spec: &RedisSpec, n: u64) -> Result<(), Error> {
    for start in (0..n).step_by(1000) {
        let keys: Vec<Vec<u8>> = (start..(start + 1000).min(n))
            .map(|i| spec.key(i))
            .collect();
        let mut args: Vec<&[u8]> = vec![b"DEL"];
        args.extend(keys.iter().map(|k| k.as_slice()));
        ok_or(c.call(&args).await?, "DEL")?;
    }
    Ok(())
}

pub async fn run(spec: &RedisSpec) -> Result<RunRecord, Error> {
    spec.validate()?;
    let (mut record, origin) = start_record("redis", spec.parameters());
    let spec = Arc::new(spec.clone());
    let mut admin = Conn::open(&spec).await?;
    ok_or(admin.call(&[b"PING"]).await?, "PING")?;
    let mut value = vec![0u8; spec.value_size];
    rand::rng().fill_bytes(&mut value);
    let value = Arc::new(value);
    // The GETs pick among the keys written (by the SET phase, or here for a GET-only run), so
    // every GET should hit.
    let mut key_range = spec.keys;
    if spec.workload == Workload::Get {
        preload(&mut admin, &spec, &value, spec.keys).await?;
    }

    let before = info(&mut admin).await?;
    let sampler = crate::host::Sampler::start(origin, crate::SAMPLE_INTERVAL);
    let mut summary = ferry_report::record::Metrics::new();
    let mut samples = Vec::new();
    let (mut total_ops, mut total_secs, mut get_hits) = (0.0, 0.0, 0u64);
    let phases: &[(Cmd, &str)] = match spec.workload {
        Workload::Set => &[(Cmd::Set, "set_")],
        Workload::Get => &[(Cmd::Get, "get_")],
        Workload::Both => &[(Cmd::Set, "set_"), (Cmd::Get, "get_")],
    };
    for &(cmd, prefix) in phases {
        let start = Instant::now();
        let (rec, elapsed, hits) = phase(&spec, cmd, &value, key_range).await?;
        get_hits += hits;
        if let Cmd::Set = cmd {
            key_range = spec.keys.min(rec.ops.len() as u64).max(1);
        }
        let (s, w) = summarize(&rec.ops, elapsed, spec.value_size as f64, prefix, true);
        summary.extend(s);
        let off = (start - origin).as_secs_f64();
        let rate_key = format!("{prefix}ops_per_sec");
        samples.extend(w.into_iter().map(|mut x| {
            x.start_s += off;
            // The phase's rate is also the window's overall rate, so `records_per_sec` can be
            // compared with statistics too.
            if let Some(r) = x.metrics.get(&rate_key).copied() {
                x.metrics.insert("records_per_sec".into(), r);
            }
            x
        }));
        total_ops += rec.ops.len() as f64;
        total_secs += elapsed.as_secs_f64();
    }
    record.host_samples = sampler.finish();
    let after = info(&mut admin).await?;
    let d = |k: &str| {
        after.get(k).and_then(|v| v.as_i64()).unwrap_or(0)
            - before.get(k).and_then(|v| v.as_i64()).unwrap_or(0)
    };
    let mut server = snapshot(&after);
    let (hits, misses) = (d("keyspace_hits"), d("keyspace_misses"));
    server["during"] = json!({
        "keyspace_hits": hits,
        "keyspace_misses": misses,
        "keyspace_hit_ratio": hit_ratio(hits, misses),
        "evicted_keys": d("evicted_keys"),
        "commands_processed": d("total_commands_processed"),
        "used_memory_change": d("used_memory"),
        "probe_get_hits": get_hits,
    });
    record.target = Some(format!(
        "Redis {} at {}",
        after
            .get("redis_version")
            .and_then(|v| v.as_str())
            .unwrap_or(""),
        spec.host
    ));
    if let Some(r) = hit_ratio(hits, misses).as_f64() {
        summary.insert("keyspace_hit_ratio".into(), r);
    }
    summary.insert("records_per_sec".into(), total_ops / total_secs.max(1e-9));
    summary.insert("seconds".into(), total_secs);
    record.summary = summary;
    record.sample_unit = Some("window".into());
    record.samples = samples;
    record.server = Some(server);
    cleanup(&mut admin, &spec, spec.keys).await?;
    Ok(finish_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_and_validation() {
        let s: RedisSpec = toml::from_str("host = \"127.0.0.1:6390\"\npipeline = 16").unwrap();
        assert_eq!(
            (s.pipeline, s.concurrency, s.workload),
            (16, 8, Workload::Both)
        );
        assert!(s.validate().is_ok());
        let s: RedisSpec = toml::from_str("pipeline = 0").unwrap();
        assert!(s.validate().is_err());
        assert!(toml::from_str::<RedisSpec>("pipelines = 2").is_err());
        let s: RedisSpec = toml::from_str("duration_s = 0.0").unwrap();
        assert!(s.validate().is_err());
    }
}
