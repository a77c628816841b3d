//! `ferry diagnose`: measures the path between this machine and every node of both sides, reads
//! the servers' own facts, and checks the configuration against the measurements.
//!
//! The seed's authors guessed at their bottleneck with `ping` and `nc`; these probes speak each
//! side's own protocol, so the round trip includes what a migration's requests pay (TLS-less TCP,
//! the server's request path), and the configuration checks are arithmetic on those numbers
//! (Little's law for the requests in flight), not folklore.
//!
//! * [`probe`]: DNS, TCP connect, protocol round trips, a bounded scan, a COPY into a temporary
//!   table, server facts.
//! * [`advise`]: the checks and the recommended settings — pure, unit-tested.
//! * [`properties`]: the input properties file rewritten with the recommended values.
//!
//! Architecture invariant: nothing here writes to a user table. The COPY goes into a temporary
//! table that dies with its session; the scan reads at most `scan_rows` rows.

pub mod advise;
pub mod probe;
pub mod properties;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::MigrationSpec;
use crate::job::Job;
use crate::tls::session::{TlsSession, EXPIRY_WARNING_DAYS};

/// What to measure and how much.
#[derive(Clone, Debug)]
pub struct Options {
    /// Round trips per endpoint for the percentiles.
    pub samples: usize,
    /// Most rows the sample scan of the configured table reads.
    pub scan_rows: u64,
    /// Rows the COPY probe writes into a temporary table on each target node.
    pub copy_rows: u64,
    /// The rate to size concurrency for; `None` derives it from the measurements (see
    /// [`advise::goal_rate`]).
    pub goal_rows_per_sec: Option<f64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            samples: 20,
            scan_rows: 20_000,
            copy_rows: 20_000,
            goal_rows_per_sec: None,
        }
    }
}

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One check: what was found, the verdict, and (when something should change) the key and value
/// to set.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    /// What was measured or configured, in words with units.
    pub found: String,
    /// Why the verdict, and what to do.
    pub advice: String,
    /// The configuration key to change, and its recommended value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended: Option<String>,
}

impl Check {
    pub fn new(name: &str, verdict: Verdict, found: String, advice: String) -> Self {
        Check {
            name: name.to_string(),
            verdict,
            found,
            advice,
            key: None,
            recommended: None,
        }
    }

    pub fn recommend(mut self, key: &str, value: impl ToString) -> Self {
        self.key = Some(key.to_string());
        self.recommended = Some(value.to_string());
        self
    }
}

/// Milliseconds at three percentiles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    /// Percentiles of samples in milliseconds; `None` for no samples.
    pub fn of(samples_ms: &[f64]) -> Option<Self> {
        Some(Percentiles {
            p50: ferry_stats::percentile(samples_ms, 50.0)?,
            p95: ferry_stats::percentile(samples_ms, 95.0)?,
            p99: ferry_stats::percentile(samples_ms, 99.0)?,
        })
    }
}

/// Which side an endpoint serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Source,
    Target,
}

/// Rows and bytes moved in one direction through one endpoint, by one stream.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Throughput {
    /// `read` (a scan from Cassandra) or `write` (COPY into the target).
    pub direction: &'static str,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub rows_per_sec: f64,
    pub mb_per_sec: f64,
    /// Requests the sample took (pages or COPY statements) and their mean time.
    pub requests: u64,
    pub request_ms: f64,
}

impl Throughput {
    pub fn new(
        direction: &'static str,
        rows: u64,
        bytes: u64,
        seconds: f64,
        requests: u64,
    ) -> Self {
        let s = seconds.max(1e-9);
        Throughput {
            direction,
            rows,
            bytes,
            seconds,
            rows_per_sec: rows as f64 / s,
            mb_per_sec: bytes as f64 / 1e6 / s,
            requests,
            request_ms: seconds * 1e3 / requests.max(1) as f64,
        }
    }
}

/// Everything measured about one node endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    /// `host:port` as the user wrote it or the cluster reported it.
    pub address: String,
    pub role: Role,
    /// Where ferry learned of it: `cassandra.host`, `ring` (a discovered peer), `yugabyte.host`,
    /// `yb_servers()`.
    pub found_in: Vec<String>,
    pub dns_ms: Option<f64>,
    /// Median TCP connect time.
    pub connect_ms: Option<f64>,
    /// Protocol round trips (CQL `SELECT … FROM system.local`, SQL `SELECT 1`).
    pub rtt_ms: Option<Percentiles>,
    /// Opening one session as a migration does: TCP, TLS, startup and login.
    pub login_ms: Option<f64>,
    /// Whether that session is encrypted (`None`: clear text, or no session was opened — see
    /// the `tls` verdict): protocol, cipher, the server's certificate, the handshake's cost.
    pub tls: Option<TlsSession>,
    pub throughput: Option<Throughput>,
    /// The server's facts: version, data centre, settings.
    pub facts: BTreeMap<String, String>,
    pub verdicts: Vec<Check>,
}

impl Endpoint {
    pub fn new(address: String, role: Role, found_in: &str) -> Self {
        Endpoint {
            address,
            role,
            found_in: vec![found_in.to_string()],
            dns_ms: None,
            connect_ms: None,
            rtt_ms: None,
            login_ms: None,
            tls: None,
            throughput: None,
            facts: BTreeMap::new(),
            verdicts: Vec::new(),
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.verdicts
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

/// The `tls` verdict of one endpoint's session (either side): on or off, and how long the
/// server's certificate has left.
pub fn tls_check(session: Option<&TlsSession>, off_advice: &str) -> Check {
    match session {
        None => Check::new(
            "tls",
            Verdict::Warn,
            "off: the session is in clear text".into(),
            off_advice.into(),
        ),
        Some(t) if t.days_to_expiry < 0 => Check::new(
            "tls",
            Verdict::Fail,
            format!(
                "{} {}; the server's certificate ({}) expired on {}",
                t.protocol, t.cipher, t.subject, t.not_after
            ),
            "renew the server's certificate: a client that checks it refuses the connection".into(),
        ),
        Some(t) if t.days_to_expiry < EXPIRY_WARNING_DAYS => Check::new(
            "tls",
            Verdict::Warn,
            format!(
                "{} {}; the server's certificate ({}) expires in {} days ({})",
                t.protocol, t.cipher, t.subject, t.days_to_expiry, t.not_after
            ),
            format!(
                "renew the server's certificate before it expires (under {EXPIRY_WARNING_DAYS} days left): a migration still running then fails to reconnect"
            ),
        ),
        Some(t) => Check::new(
            "tls",
            Verdict::Ok,
            format!(
                "{} {}; certificate {} issued by {}, {} days to expiry",
                t.protocol, t.cipher, t.subject, t.issuer, t.days_to_expiry
            ),
            String::new(),
        ),
    }
}

/// The whole diagnosis.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub endpoints: Vec<Endpoint>,
    /// Facts of each side as a whole (Cassandra data centres and replication, target kind).
    pub source_facts: BTreeMap<String, String>,
    pub target_facts: BTreeMap<String, String>,
    /// Configuration checks against the measurements.
    pub checks: Vec<Check>,
    /// The model behind the concurrency advice, so the numbers can be checked by hand.
    pub model: Option<advise::Model>,
}

impl Report {
    pub fn verdict(&self) -> Verdict {
        self.endpoints
            .iter()
            .map(Endpoint::verdict)
            .chain(self.checks.iter().map(|c| c.verdict))
            .max()
            .unwrap_or(Verdict::Ok)
    }

    /// Every recommended `key → value`, endpoint checks first; a later check of the same key
    /// wins.
    pub fn recommendations(&self) -> BTreeMap<String, String> {
        self.endpoints
            .iter()
            .flat_map(|e| e.verdicts.iter())
            .chain(self.checks.iter())
            .filter_map(|c| Some((c.key.clone()?, c.recommended.clone()?)))
            .collect()
    }
}

/// Measures both sides and checks the configuration. Unreachable endpoints and refused logins
/// are `fail` verdicts in the report, not errors: the report is most useful exactly then.
pub async fn diagnose(job: &Job, spec: &MigrationSpec, opts: &Options) -> Report {
    let mut source = probe::source(job, spec, opts).await;
    let mut target = probe::target(job, opts, source.row_bytes).await;
    let mut endpoints = std::mem::take(&mut source.endpoints);
    endpoints.append(&mut target.endpoints);
    let inputs = advise::Inputs::from_measurements(
        job,
        &endpoints,
        source.scan.as_ref(),
        source.est_bytes,
        source.row_bytes,
        &target,
    );
    let (mut checks, model) = advise::checks(spec, &inputs, opts.goal_rows_per_sec);
    checks.splice(0..0, target.checks);
    checks.splice(0..0, source.checks);
    Report {
        schema_version: 1,
        endpoints,
        source_facts: source.facts,
        target_facts: target.facts,
        checks,
        model,
    }
}
