//! The Trino probe: runs each query `repetitions` times (after `warmup` untimed runs) over
//! Trino's HTTP protocol — `POST /v1/statement`, then `GET nextUri` until there is none — and
//! records what Trino itself measured for each execution, from the final `stats` object of the
//! protocol: elapsed, queued, CPU, wall and planning time, processed rows and bytes, peak memory.
//! The client's own round-trip time per query is kept too (`avg_ms`, `p50_ms`, …).
//!
//! One sample per round (every query once, in order): `compare` tests the rounds for
//! significance. With one query the metrics are unprefixed (`elapsed_ms`, `cpu_ms`, …); with
//! several each query's carry its name (`join_elapsed_ms`) and the unprefixed ones are the
//! round's totals. The built-in `tpch` set is the seed's count / aggregate / join over the tpch
//! catalog's generated tables.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_report::record::{Metrics, Sample};
use ferry_report::RunRecord;
use ferry_stats::{median, percentile};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::recorder::latency_metrics;
use crate::{finish_record, start_record, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// The seed's count / aggregate / join, over `tpch.<tpch_schema>`.
    Tpch,
}

/// Where the probe goes by default: Trino's own default HTTP port, where `scripts/testbed up trino`
/// runs its coordinator.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrinoSpec {
    /// The coordinator's base URL, `http://host:port`.
    #[serde(default = "default_server")]
    pub server: String,
    /// Sent as `X-Trino-User`.
    #[serde(default = "default_user")]
    pub user: String,
    /// Session catalog and schema, for queries that do not qualify their tables.
    #[serde(default)]
    pub catalog: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    /// Statements to time; empty = the built-in set.
    #[serde(default)]
    pub queries: Vec<String>,
    #[serde(default = "default_builtin")]
    pub builtin: Builtin,
    /// The tpch schema the built-in set reads: tiny, sf1, sf10, … (sf1 = 6M lineitem rows).
    #[serde(default = "default_tpch_schema")]
    pub tpch_schema: String,
    /// Timed runs of every query.
    #[serde(default = "default_repetitions")]
    pub repetitions: u32,
    /// Untimed runs of every query first (Trino compiles and caches on first use).
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// Gives up on one query after this long.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

fn default_server() -> String {
    DEFAULT_SERVER.into()
}
fn default_user() -> String {
    "ferry".into()
}
fn default_builtin() -> Builtin {
    Builtin::Tpch
}
fn default_tpch_schema() -> String {
    "tiny".into()
}
fn default_repetitions() -> u32 {
    5
}
fn default_warmup() -> u32 {
    1
}
fn default_timeout() -> f64 {
    600.0
}

/// The built-in set's queries, by name, over `tpch.<schema>`.
pub fn tpch_queries(schema: &str) -> Vec<(String, String)> {
    let s = format!("tpch.{schema}");
    vec![
        ("count".into(), format!("SELECT count(*) FROM {s}.lineitem")),
        (
            "aggregate".into(),
            format!(
                "SELECT returnflag, linestatus, count(*) AS orders, avg(quantity) AS avg_qty, \
                 sum(extendedprice * (1 - discount)) AS revenue \
                 FROM {s}.lineitem GROUP BY returnflag, linestatus ORDER BY returnflag, linestatus"
            ),
        ),
        (
            "join".into(),
            format!(
                "SELECT n.name, count(*) AS orders, sum(o.totalprice) AS total \
                 FROM {s}.orders o JOIN {s}.customer c ON o.custkey = c.custkey \
                 JOIN {s}.nation n ON c.nationkey = n.nationkey GROUP BY n.name ORDER BY total DESC"
            ),
        ),
    ]
}

impl TrinoSpec {
    /// The queries this spec runs, each with its name (`q1`, `q2`, … for given ones).
    pub fn named_queries(&self) -> Vec<(String, String)> {
        if self.queries.is_empty() {
            match self.builtin {
                Builtin::Tpch => tpch_queries(&self.tpch_schema),
            }
        } else {
            self.queries
                .iter()
                .enumerate()
                .map(|(i, q)| (format!("q{}", i + 1), q.clone()))
                .collect()
        }
    }

    fn parameters(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "server": self.server,
            "user": self.user,
            "catalog": self.catalog,
            "schema": self.schema,
            "workload": if self.queries.is_empty() {
                json!(match self.builtin { Builtin::Tpch => format!("tpch ({})", self.tpch_schema) })
            } else {
                json!(self.queries)
            },
            "repetitions": self.repetitions,
            "warmup": self.warmup,
        });
        v.as_object().cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.repetitions == 0 {
            return Err(Error::Spec("repetitions must be at least 1".into()));
        }
        if self.queries.iter().any(|q| q.trim().is_empty()) {
            return Err(Error::Spec(
                "a --query is empty; give the SQL to time".into(),
            ));
        }
        if self.timeout_s.is_nan() || self.timeout_s <= 0.0 {
            return Err(Error::Spec("the query timeout must be positive".into()));
        }
        if self.tpch_schema.is_empty()
            || !self
                .tpch_schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::Spec(format!(
                "tpch schema {:?} is not a schema name such as tiny or sf1",
                self.tpch_schema
            )));
        }
        base_uri(&self.server)?;
        Ok(())
    }
}

fn base_uri(server: &str) -> Result<String, Error> {
    let s = server.trim_end_matches('/');
    if s.starts_with("https://") {
        return Err(Error::Spec(format!(
            "Trino at {s}: this probe speaks plain HTTP only; give the coordinator's http:// address"
        )));
    }
    if !s.starts_with("http://") {
        return Err(Error::Spec(format!(
            "Trino server {s:?} is not a URL; give it as http://host:port"
        )));
    }
    s.parse::<Uri>()
        .map_err(|e| Error::Spec(format!("Trino server {s:?} is not a valid URL: {e}")))?;
    Ok(s.to_string())
}

/// What Trino reports for one finished query.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    pub query_id: String,
    pub elapsed_ms: f64,
    pub queued_ms: f64,
    pub cpu_ms: f64,
    pub wall_ms: f64,
    pub planning_ms: f64,
    pub processed_rows: f64,
    pub processed_bytes: f64,
    pub peak_memory_bytes: f64,
    /// Rows the query returned to the client.
    pub result_rows: u64,
    /// Issue to last response, as the client saw it.
    pub client_ms: f64,
}

impl QueryStats {
    fn from_stats(query_id: String, s: &Value, result_rows: u64, client: Duration) -> Self {
        let f = |k: &str| s.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        QueryStats {
            query_id,
            elapsed_ms: f("elapsedTimeMillis"),
            queued_ms: f("queuedTimeMillis"),
            cpu_ms: f("cpuTimeMillis"),
            wall_ms: f("wallTimeMillis"),
            planning_ms: f("planningTimeMillis"),
            processed_rows: f("processedRows"),
            processed_bytes: f("processedBytes"),
            peak_memory_bytes: f("peakMemoryBytes"),
            result_rows,
            client_ms: client.as_secs_f64() * 1000.0,
        }
    }

    /// The per-execution metrics, names prefixed.
    fn metrics(&self, prefix: &str, m: &mut Metrics) {
        for (k, v) in [
            ("elapsed_ms", self.elapsed_ms),
            ("queued_ms", self.queued_ms),
            ("cpu_ms", self.cpu_ms),
            ("wall_ms", self.wall_ms),
            ("planning_ms", self.planning_ms),
            ("processed_rows", self.processed_rows),
            ("processed_bytes", self.processed_bytes),
            ("peak_memory_bytes", self.peak_memory_bytes),
            ("client_ms", self.client_ms),
        ] {
            m.insert(format!("{prefix}{k}"), v);
        }
        if self.elapsed_ms > 0.0 {
            m.insert(
                format!("{prefix}rows_per_sec"),
                self.processed_rows / (self.elapsed_ms / 1000.0),
            );
        }
    }
}

/// A Trino coordinator, spoken to over its client protocol.
pub struct TrinoClient {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
    user: String,
    catalog: Option<String>,
    schema: Option<String>,
    timeout: Duration,
}

/// The first line of a text, at most 300 characters: errors stay one line.
fn one_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    if l.chars().count() > 300 {
        format!("{}…", l.chars().take(300).collect::<String>())
    } else {
        l.to_string()
    }
}

impl TrinoClient {
    pub fn new(spec: &TrinoSpec) -> Result<Self, Error> {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(Duration::from_secs(10)));
        conn.set_nodelay(true);
        Ok(TrinoClient {
            http: Client::builder(TokioExecutor::new()).build(conn),
            base: base_uri(&spec.server)?,
            user: spec.user.clone(),
            catalog: spec.catalog.clone(),
            schema: spec.schema.clone(),
            timeout: Duration::from_secs_f64(spec.timeout_s),
        })
    }

    /// One HTTP exchange → (status, body as JSON, or the body's text when it is not JSON).
    async fn exchange(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
    ) -> Result<(StatusCode, Result<Value, String>), Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("X-Trino-User", &self.user)
            .header("X-Trino-Source", "ferry-bench")
            .header("User-Agent", "ferry-bench");
        if let Some(c) = &self.catalog {
            req = req.header("X-Trino-Catalog", c);
        }
        if let Some(s) = &self.schema {
            req = req.header("X-Trino-Schema", s);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .map_err(|e| Error::Trino(format!("bad request to {uri}: {e}")))?;
        let resp = self.http.request(req).await.map_err(|e| {
            let mut cause = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                cause = s.to_string();
                src = s.source();
            }
            Error::Trino(format!(
                "cannot reach the server at {} ({}); is it running? (test bed: scripts/testbed up trino)",
                self.base,
                one_line(&cause)
            ))
        })?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Trino(format!("reading a response from {}: {e}", self.base)))?
            .to_bytes();
        let parsed = serde_json::from_slice::<Value>(&bytes)
            .map_err(|_| one_line(&String::from_utf8_lossy(&bytes)));
        Ok((status, parsed))
    }

    /// `GET /v1/info`: version, environment, uptime, whether it is still starting.
    pub async fn info(&self) -> Result<Value, Error> {
        let (status, body) = self
            .exchange(Method::GET, &format!("{}/v1/info", self.base), None)
            .await?;
        match body {
            Ok(v) if status.is_success() => Ok(v),
            Ok(_) | Err(_) => Err(Error::Trino(format!(
                "{} answered /v1/info with HTTP {status}; is this a Trino coordinator?",
                self.base
            ))),
        }
    }

    /// Runs one statement to the end and returns Trino's final stats for it.
    pub async fn execute(&self, sql: &str) -> Result<QueryStats, Error> {
        match tokio::time::timeout(self.timeout, self.execute_inner(sql)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Trino(format!(
                "query did not finish within {:.0} s: {}",
                self.timeout.as_secs_f64(),
                one_line(sql)
            ))),
        }
    }

    async fn execute_inner(&self, sql: &str) -> Result<QueryStats, Error> {
        let t0 = Instant::now();
        let mut doc = self
            .step(
                Method::POST,
                &format!("{}/v1/statement", self.base),
                Some(sql),
            )
            .await?;
        let mut rows = 0u64;
        loop {
            if let Some(data) = doc.get("data").and_then(Value::as_array) {
                rows += data.len() as u64;
            }
            if let Some(err) = doc.get("error") {
                let name = err
                    .get("errorName")
                    .and_then(Value::as_str)
                    .unwrap_or("ERROR");
                let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
                return Err(Error::Trino(format!(
                    "query failed: {name}: {} (query {}: {})",
                    one_line(msg),
                    doc.get("id").and_then(Value::as_str).unwrap_or("?"),
                    one_line(sql)
                )));
            }
            match doc.get("nextUri").and_then(Value::as_str) {
                Some(next) => {
                    let next = next.to_string();
                    doc = self.step(Method::GET, &next, None).await?;
                }
                None => break,
            }
        }
        let id = doc
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let stats = doc.get("stats").cloned().unwrap_or(Value::Null);
        Ok(QueryStats::from_stats(id, &stats, rows, t0.elapsed()))
    }

    /// One protocol step; retries what the protocol says to retry (502, 503, 504).
    async fn step(&self, method: Method, uri: &str, body: Option<&str>) -> Result<Value, Error> {
        let mut delay = Duration::from_millis(50);
        for attempt in 0.. {
            let (status, parsed) = self.exchange(method.clone(), uri, body).await?;
            if matches!(status.as_u16(), 502..=504) && attempt < 20 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
                continue;
            }
            return match parsed {
                Ok(v) if status.is_success() => Ok(v),
                Ok(v) => Err(Error::Trino(format!(
                    "HTTP {status} from {}: {}",
                    self.base,
                    one_line(&v.to_string())
                ))),
                Err(text) => Err(Error::Trino(format!(
                    "HTTP {status} from {}: {}",
                    self.base,
                    if text.is_empty() {
                        "(no body)".to_string()
                    } else {
                        text
                    }
                ))),
            };
        }
        unreachable!("the loop returns")
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    percentile(v, p).unwrap_or(f64::NAN)
}

/// Median, p95 and max of a Trino time metric, and the median of the others, as summary keys.
fn summarize_stats(prefix: &str, runs: &[&QueryStats], m: &mut Metrics) {
    let col = |f: fn(&QueryStats) -> f64| runs.iter().map(|s| f(s)).collect::<Vec<f64>>();
    for (k, v) in [
        ("elapsed", col(|s| s.elapsed_ms)),
        ("cpu", col(|s| s.cpu_ms)),
        ("queued", col(|s| s.queued_ms)),
    ] {
        m.insert(format!("{prefix}{k}_ms"), median(&v).unwrap_or(f64::NAN));
        m.insert(format!("{prefix}{k}_p95_ms"), pct(&v, 95.0));
        m.insert(format!("{prefix}{k}_max_ms"), pct(&v, 100.0));
    }
    for (k, v) in [
        ("wall_ms", col(|s| s.wall_ms)),
        ("planning_ms", col(|s| s.planning_ms)),
        ("processed_rows", col(|s| s.processed_rows)),
        ("processed_bytes", col(|s| s.processed_bytes)),
        ("peak_memory_bytes", col(|s| s.peak_memory_bytes)),
        ("client_ms", col(|s| s.client_ms)),
    ] {
        m.insert(format!("{prefix}{k}"), median(&v).unwrap_or(f64::NAN));
    }
    let rates: Vec<f64> = runs
        .iter()
        .filter(|s| s.elapsed_ms > 0.0)
        .map(|s| s.processed_rows / (s.elapsed_ms / 1000.0))
        .collect();
    if let Some(r) = median(&rates) {
        m.insert(format!("{prefix}rows_per_sec"), r);
    }
}

pub async fn run(spec: &TrinoSpec) -> Result<RunRecord, Error> {
    spec.validate()?;
    let queries = spec.named_queries();
    let (mut record, origin) = start_record("trino", spec.parameters());
    let client = TrinoClient::new(spec)?;
    let info = client.info().await?;
    if info.get("starting").and_then(Value::as_bool) == Some(true) {
        return Err(Error::Trino(format!(
            "the server at {} is still starting; retry when its /v1/info says \"starting\":false",
            client.base
        )));
    }
    let version = info
        .pointer("/nodeVersion/version")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    record.target = Some(format!("Trino {version} at {}", client.base));

    for _ in 0..spec.warmup {
        for (_, sql) in &queries {
            client.execute(sql).await?;
        }
    }

    let sampler = crate::host::Sampler::start(origin, crate::SAMPLE_INTERVAL);
    let t0 = Instant::now();
    // runs[q][r]: query q's stats in round r.
    let mut runs: Vec<Vec<QueryStats>> = vec![Vec::new(); queries.len()];
    let mut samples = Vec::new();
    for _ in 0..spec.repetitions {
        let start = Instant::now();
        let mut m = Metrics::new();
        let mut round: Vec<QueryStats> = Vec::new();
        for (i, (name, sql)) in queries.iter().enumerate() {
            let s = client.execute(sql).await?;
            if queries.len() > 1 {
                s.metrics(&format!("{name}_"), &mut m);
            }
            round.push(s.clone());
            runs[i].push(s);
        }
        let secs = start.elapsed().as_secs_f64();
        if queries.len() == 1 {
            round[0].metrics("", &mut m);
        } else {
            let total = QueryStats {
                elapsed_ms: round.iter().map(|s| s.elapsed_ms).sum(),
                queued_ms: round.iter().map(|s| s.queued_ms).sum(),
                cpu_ms: round.iter().map(|s| s.cpu_ms).sum(),
                wall_ms: round.iter().map(|s| s.wall_ms).sum(),
                planning_ms: round.iter().map(|s| s.planning_ms).sum(),
                processed_rows: round.iter().map(|s| s.processed_rows).sum(),
                processed_bytes: round.iter().map(|s| s.processed_bytes).sum(),
                peak_memory_bytes: round
                    .iter()
                    .map(|s| s.peak_memory_bytes)
                    .fold(0.0, f64::max),
                client_ms: round.iter().map(|s| s.client_ms).sum(),
                ..Default::default()
            };
            total.metrics("", &mut m);
        }
        m.insert(
            "records_per_sec".into(),
            queries.len() as f64 / secs.max(1e-9),
        );
        samples.push(Sample {
            start_s: (start - origin).as_secs_f64(),
            seconds: secs,
            metrics: m,
        });
    }
    let elapsed = t0.elapsed();
    record.host_samples = sampler.finish();

    let mut summary = Metrics::new();
    let executions: Vec<&QueryStats> = runs.iter().flatten().collect();
    summary.insert("records".into(), executions.len() as f64);
    summary.insert(
        "records_per_sec".into(),
        executions.len() as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    latency_metrics(
        &mut summary,
        "",
        executions
            .iter()
            .map(|s| (s.client_ms * 1000.0).min(u32::MAX as f64) as u32),
    );
    if queries.len() == 1 {
        summarize_stats("", &executions, &mut summary);
    } else {
        for ((name, _), r) in queries.iter().zip(&runs) {
            summarize_stats(
                &format!("{name}_"),
                &r.iter().collect::<Vec<_>>(),
                &mut summary,
            );
        }
        // The round's totals, as each sample holds them.
        for k in [
            "elapsed_ms",
            "cpu_ms",
            "queued_ms",
            "wall_ms",
            "processed_rows",
            "processed_bytes",
            "peak_memory_bytes",
        ] {
            let v: Vec<f64> = samples
                .iter()
                .filter_map(|s| s.metrics.get(k).copied())
                .collect();
            if let Some(x) = median(&v) {
                summary.insert(k.into(), x);
            }
        }
    }
    summary.insert("seconds".into(), elapsed.as_secs_f64());
    record.summary = summary;
    record.sample_unit = Some("round".into());
    record.samples = samples;
    record.server = Some(json!({
        "version": version,
        "environment": info.get("environment"),
        "coordinator": info.get("coordinator"),
        "uptime": info.get("uptime"),
        "node_id": info.get("nodeId"),
    }));
    record.result = Some(json!({
        "queries": queries
            .iter()
            .zip(&runs)
            .map(|((name, sql), r)| {
                let mut m = Metrics::new();
                summarize_stats("", &r.iter().collect::<Vec<_>>(), &mut m);
                let mut v = json!({
                    "name": name,
                    "sql": sql,
                    "executions": r.len(),
                    "result_rows": r.last().map(|s| s.result_rows),
                    "query_ids": r.iter().map(|s| s.query_id.clone()).collect::<Vec<_>>(),
                });
                for (k, x) in m {
                    v[k] = json!(x);
                }
                v
            })
            .collect::<Vec<_>>(),
    }));
    Ok(finish_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            base_uri("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        let e = base_uri("https://trino.example:443")
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain HTTP"), "{e}");
        let e = base_uri("127.0.0.1:8080").unwrap_err().to_string();
        assert!(e.contains("http://host:port"), "{e}");
    }

    #[test]
    fn stats_come_from_trinos_final_stats_object() {
        let stats = json!({
            "state": "FINISHED", "elapsedTimeMillis": 3593, "queuedTimeMillis": 20,
            "cpuTimeMillis": 956, "wallTimeMillis": 1747, "planningTimeMillis": 509,
            "processedRows": 25, "processedBytes": 86, "peakMemoryBytes": 184
        });
        let s = QueryStats::from_stats("q".into(), &stats, 1, Duration::from_millis(3600));
        let mut m = Metrics::new();
        s.metrics("", &mut m);
        assert_eq!(m["elapsed_ms"], 3593.0);
        assert_eq!(m["processed_rows"], 25.0);
        assert_eq!(m["peak_memory_bytes"], 184.0);
        assert!((m["rows_per_sec"] - 25.0 / 3.593).abs() < 1e-9);
    }

    #[test]
    fn builtin_set_is_count_aggregate_join() {
        let spec: TrinoSpec = toml::from_str("tpch_schema = \"sf1\"").unwrap();
        let names: Vec<String> = spec.named_queries().into_iter().map(|q| q.0).collect();
        assert_eq!(names, ["count", "aggregate", "join"]);
        assert!(spec.named_queries()[2].1.contains("tpch.sf1.orders"));
        let bad: TrinoSpec = toml::from_str("tpch_schema = \"sf1; drop\"").unwrap();
        assert!(bad.validate().is_err());
    }
}
