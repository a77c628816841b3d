//! The run record: one versioned JSON document per measurement — a migration, a Kafka probe, a
//! whole baseline suite. It is the only serialized surface of ferry's measurements; `compare`
//! and `report` read nothing else.
//!
//! Compatibility: schema version 1 is what `ferry migrate` has written from the start
//! (`schema_version, kind, tool, started_at, ended_at, parameters, host, summary, result`); every
//! field added since is optional, so those records load unchanged.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version this code writes. Readers accept it and every older one.
pub const SCHEMA_VERSION: u32 = 1;

/// Named numeric results, e.g. `records_per_sec`, `p99_ms`. See [`crate::metric`] for the
/// names ferry uses and which way is better.
pub type Metrics = BTreeMap<String, f64>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    /// What ran: `migration`, `kafka-produce`, `kafka-consume`, `postgres`, `cassandra`, `trino`,
    /// `baseline`.
    pub kind: String,
    /// The probe's name within a suite (defaults to the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service measured: address and, when known, its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `ferry <version>`.
    pub tool: String,
    /// Unix seconds.
    pub started_at: f64,
    /// Unix seconds.
    pub ended_at: f64,
    /// Every setting the run used, as the user gave it or as defaulted.
    #[serde(default)]
    pub parameters: serde_json::Map<String, Value>,
    pub host: HostFacts,
    /// The headline numbers. For repeated runs, the median over repetitions.
    #[serde(default)]
    pub summary: Metrics,
    /// What one entry of `samples` is: `"window"` (a slice of one run), `"repetition"` (a
    /// whole run) or `"round"` (Trino: each of the probe's queries once). Statistics in
    /// `compare` are taken over the samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_unit: Option<String>,
    /// Raw samples, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Sample>,
    /// The host, sampled from /proc while the probe ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_samples: Vec<HostSample>,
    /// The server's own view (settings, statistics), per kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Value>,
    /// Kind-specific details (a migration's per-table results, per-query statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Expectations the suite stated for this run, each met or missed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<ExpectationResult>,
    /// For a baseline: one record per probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<RunRecord>,
    /// Set when the probe failed; its other numbers are then partial or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The machine the measurement ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    #[serde(default)]
    pub cpu_model: String,
    #[serde(default)]
    pub cpus: u32,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
}

/// One raw sample: a time window of a run, or one whole repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds from the record's start.
    pub start_s: f64,
    pub seconds: f64,
    pub metrics: Metrics,
}

/// The host at one instant (rates over the interval since the previous sample).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSample {
    /// Seconds from the record's start.
    pub t_s: f64,
    /// All CPUs, busy share of the interval, 0–100.
    pub cpu_busy_pct: f64,
    /// ferry's own CPU use, % of one CPU (so up to 100 × cpus).
    pub self_cpu_pct: f64,
    pub mem_used_pct: f64,
    pub disk_read_mb_s: f64,
    pub disk_write_mb_s: f64,
    /// The busiest disk's share of time with I/O in flight, 0–100.
    pub disk_busy_pct: f64,
    /// Every interface, loopback included (the test bed's traffic is loopback).
    pub net_rx_mb_s: f64,
    pub net_tx_mb_s: f64,
    pub load1: f64,
}

/// A suite's expectation ("records_per_sec >= 100000") checked against a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// As written in the suite.
    pub expect: String,
    pub metric: String,
    pub op: String,
    pub threshold: f64,
    /// `None` when the run has no such metric (then `met` is false).
    pub actual: Option<f64>,
    pub met: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a ferry run record: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} has schema_version {found}; this ferry reads up to {SCHEMA_VERSION} — upgrade ferry")]
    TooNew { path: String, found: u32 },
}

impl RunRecord {
    /// A record with no results yet.
    pub fn new(kind: &str, host: HostFacts, started_at: f64) -> Self {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            kind: kind.to_string(),
            name: None,
            target: None,
            tool: format!("ferry {}", env!("CARGO_PKG_VERSION")),
            started_at,
            ended_at: started_at,
            parameters: serde_json::Map::new(),
            host,
            summary: Metrics::new(),
            sample_unit: None,
            samples: Vec::new(),
            host_samples: Vec::new(),
            server: None,
            result: None,
            expectations: Vec::new(),
            probes: Vec::new(),
            error: None,
        }
    }

    /// The name a probe is known by in reports and comparisons.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.kind)
    }

    pub fn seconds(&self) -> f64 {
        (self.ended_at - self.started_at).max(0.0)
    }

    /// The records that hold measurements: the probes of a baseline, or the record itself.
    pub fn measurements(&self) -> Vec<&RunRecord> {
        if self.probes.is_empty() {
            vec![self]
        } else {
            self.probes.iter().flat_map(|p| p.measurements()).collect()
        }
    }

    /// The raw values of one metric: the samples' when at least two samples carry it, else the
    /// summary's single value.
    pub fn values(&self, metric: &str) -> Vec<f64> {
        let from_samples: Vec<f64> = self
            .samples
            .iter()
            .filter_map(|s| s.metrics.get(metric).copied())
            .filter(|v| v.is_finite())
            .collect();
        if from_samples.len() >= 2 {
            return from_samples;
        }
        self.summary.get(metric).copied().into_iter().collect()
    }

    pub fn from_json(text: &str, path: &str) -> Result<Self, RecordError> {
        let rec: RunRecord = serde_json::from_str(text).map_err(|source| RecordError::Parse {
            path: path.to_string(),
            source,
        })?;
        if rec.schema_version > SCHEMA_VERSION {
            return Err(RecordError::TooNew {
                path: path.to_string(),
                found: rec.schema_version,
            });
        }
        Ok(rec)
    }

    pub fn load(path: &Path) -> Result<Self, RecordError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_json(&text, &shown)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a run record always serializes")
    }

    /// The record with every secret's value replaced (see [`is_secret_key`]), in its
    /// parameters, its server facts and its result, at any depth; its probes too.
    pub fn redacted(&self) -> RunRecord {
        let mut r = self.clone();
        let mut params = Value::Object(std::mem::take(&mut r.parameters));
        redact(&mut params);
        if let Value::Object(m) = params {
            r.parameters = m;
        }
        for v in [&mut r.server, &mut r.result].into_iter().flatten() {
            redact(v);
        }
        r.probes = r.probes.iter().map(RunRecord::redacted).collect();
        r
    }

    /// Writes the record to `path`, creating its folder. Secrets are redacted first: this is
    /// the one way a record reaches a file.
    pub fn save(&self, path: &Path) -> Result<(), RecordError> {
        let io = |source| RecordError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, self.redacted().to_json() + "\n").map_err(io)
    }
}

/// What a redacted value reads as.
pub const REDACTED: &str = "<redacted>";

/// The one rule for which settings are secret, by name: a key containing `password`, `secret`,
/// `token` or `sasl.jaas` (any case, any separator). It covers the configuration registry's
/// secret keys (`cassandra.password`, `yugabyte.sslpassword`, the key and trust store
/// passwords; a test in the CLI holds the registry to it) and client properties passed through
/// as given (`bench kafka --property sasl.password=…`, `sasl.jaas.config`, `sasl.oauthbearer.token`).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "sasl.jaas"]
        .iter()
        .any(|p| k.contains(p))
}

/// Replaces the value of every secret key in `v` (objects at any depth, and `KEY=VALUE`
/// strings, as `--set` overrides are kept) with [`REDACTED`].
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret_key(k) && !x.is_null() {
                    *x = Value::String(REDACTED.into());
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        Value::String(s) => {
            if let Some((k, _)) = s.split_once('=') {
                if is_secret_key(k) {
                    *s = format!("{k}={REDACTED}");
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_migration_record_as_ferry_migrate_writes_it() {
        let text = include_str!("../tests/data/migration.json");
        let rec = RunRecord::from_json(text, "migration.json").unwrap();
        assert_eq!(rec.kind, "migration");
        assert_eq!(rec.host.cpus, 2);
        assert_eq!(rec.summary["rows_written"], 120000.0);
        assert!(rec.result.is_some());
        assert_eq!(rec.values("records_per_sec").len(), 1);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let text = r#"{"schema_version": 99, "kind": "x", "tool": "t", "started_at": 0,
                       "ended_at": 1, "host": {}}"#;
        assert!(matches!(
            RunRecord::from_json(text, "x.json"),
            Err(RecordError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn secrets_are_redacted_by_one_rule_at_any_depth() {
        let mut rec = RunRecord::new("kafka-produce", HostFacts::default(), 10.0);
        rec.parameters.insert(
            "properties".into(),
            serde_json::json!({"sasl.password": "hunter2", "sasl.jaas.config": "x password=\"hunter2\"",
                               "linger.ms": "5"}),
        );
        rec.parameters.insert(
            "overrides".into(),
            serde_json::json!(["yugabyte.password=hunter2", "cassandra.fetchSizeInRows=10"]),
        );
        rec.result = Some(serde_json::json!({"tls": {"keyStore_Password": "hunter2"}}));
        let text = rec.redacted().to_json();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("linger.ms") && text.contains("cassandra.fetchSizeInRows=10"));
        for k in [
            "cassandra.password",
            "yugabyte.sslpassword",
            "client.secret",
            "api_TOKEN",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        assert!(!is_secret_key("cassandra.username"));
    }

    #[test]
    fn round_trips() {
        let mut rec = RunRecord::new("kafka-produce", HostFacts::default(), 10.0);
        rec.summary.insert("records_per_sec".into(), 1234.5);
        rec.samples.push(Sample {
            start_s: 0.0,
            seconds: 1.0,
            metrics: [("records_per_sec".to_string(), 1000.0)].into(),
        });
        let back = RunRecord::from_json(&rec.to_json(), "-").unwrap();
        assert_eq!(back, rec);
    }
}
