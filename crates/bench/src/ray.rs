//! The Ray probe: the seed's CPU-bound and I/O-bound task benchmarks (Task 5.1, Step 3) as a Ray
//! job, submitted through Ray's Jobs REST API (`POST /api/jobs/`, polled with
//! `GET /api/jobs/{id}` until it ends, its output read from `GET /api/jobs/{id}/logs`).
//!
//! The job is [`JOB_SCRIPT`] (shipped inside ferry, passed on the entrypoint's command line);
//! it reserves `num_cpus` of the cluster's CPUs in a placement group and runs `tasks` tasks of
//! each kind inside it, `rounds` times, after an untimed warm-up. Each round is a sample, so
//! `compare` can tell 1 CPU from 2 beyond noise. The cluster's resources come from
//! `ray.cluster_resources()` inside the job.

use std::time::{Duration, Instant};

use base64::Engine;
use ferry_report::record::{Metrics, Sample};
use ferry_report::RunRecord;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::recorder::latency_metrics;
use crate::{finish_record, start_record, Error};

/// The job ferry submits.
pub const JOB_SCRIPT: &str = include_str!("ray_job.py");

const RESULT_MARK: &str = "FERRY_RAY_RESULT ";
const ERROR_MARK: &str = "FERRY_RAY_ERROR ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Cpu,
    Io,
    Both,
}

/// Where the probe goes by default: Ray's own dashboard port (it serves the Jobs API), where
/// `scripts/testbed up ray` runs its head.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:8265";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaySpec {
    /// The dashboard's address, which serves the Jobs API.
    #[serde(default = "default_address")]
    pub address: String,
    /// CPUs the job reserves and runs its tasks on; unset = all of the cluster's.
    #[serde(default)]
    pub num_cpus: Option<u32>,
    /// Tasks of each kind per round (the seed: 100).
    #[serde(default = "default_tasks")]
    pub tasks: u32,
    /// Loop iterations of one CPU-bound task (the seed: 100,000).
    #[serde(default = "default_iterations")]
    pub cpu_iterations: u64,
    /// Sleep of one I/O-bound task (the seed: 0.1 s).
    #[serde(default = "default_sleep")]
    pub io_sleep_s: f64,
    #[serde(default = "default_workload")]
    pub workload: Workload,
    /// Rounds of the benchmark in the one job; each is a sample.
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// Give up (and stop the job) after this long.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

fn default_address() -> String {
    DEFAULT_ADDRESS.into()
}
fn default_tasks() -> u32 {
    100
}
fn default_iterations() -> u64 {
    100_000
}
fn default_sleep() -> f64 {
    0.1
}
fn default_workload() -> Workload {
    Workload::Both
}
fn default_rounds() -> u32 {
    3
}
fn default_timeout() -> f64 {
    600.0
}

impl RaySpec {
    fn parameters(&self) -> Map<String, Value> {
        let v = json!({
            "address": self.address,
            "num_cpus": self.num_cpus,
            "tasks": self.tasks,
            "cpu_iterations": self.cpu_iterations,
            "io_sleep_s": self.io_sleep_s,
            "workload": match self.workload { Workload::Cpu => "cpu", Workload::Io => "io", Workload::Both => "both" },
            "rounds": self.rounds,
        });
        v.as_object().cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.tasks == 0 || self.rounds == 0 || self.num_cpus == Some(0) {
            return Err(Error::Spec(
                "give tasks ≥ 1, rounds ≥ 1 and num_cpus ≥ 1".into(),
            ));
        }
        let bad = |x: f64| x.is_nan() || x < 0.0;
        if bad(self.io_sleep_s) || bad(self.timeout_s) || self.timeout_s == 0.0 {
            return Err(Error::Spec(
                "io_sleep_s must be ≥ 0 and timeout_s > 0".into(),
            ));
        }
        Ok(())
    }

    fn base(&self) -> String {
        let a = self.address.trim_end_matches('/');
        if a.contains("://") {
            a.to_string()
        } else {
            format!("http://{a}")
        }
    }

    /// The job's parameters, as the script reads them.
    fn job_params(&self) -> Value {
        json!({
            "num_cpus": self.num_cpus,
            "tasks": self.tasks,
            "cpu_iterations": self.cpu_iterations,
            "io_sleep_s": self.io_sleep_s,
            "cpu": self.workload != Workload::Io,
            "io": self.workload != Workload::Cpu,
            "rounds": self.rounds,
        })
    }
}

/// The entrypoint: the script, base64-encoded so no shell quoting can alter it.
pub fn entrypoint() -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(JOB_SCRIPT);
    format!("python -c \"import base64; exec(base64.b64decode('{b64}').decode())\"")
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn unreachable(&self, e: reqwest::Error) -> Error {
        let mut cause = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            cause = s.to_string();
            src = s.source();
        }
        Error::Ray(format!(
            "cannot reach the Jobs API at {}: {cause} — is a Ray head running with its dashboard there? (test bed: scripts/testbed up ray; or give --address)",
            self.base
        ))
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, Error> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(Error::Ray(format!("{what}: HTTP {status}: {first}")));
        }
        serde_json::from_str(&text).map_err(|_| {
            Error::Ray(format!(
                "{what}: {} did not answer JSON (is it a Ray dashboard?)",
                self.base
            ))
        })
    }

    async fn get(&self, path: &str, what: &str) -> Result<Value, Error> {
        self.send(self.http.get(format!("{}{path}", self.base)), what)
            .await
    }
}

/// The job's error line, else its last log line.
fn job_error(logs: &str) -> Option<String> {
    logs.lines()
        .find_map(|l| l.strip_prefix(ERROR_MARK).map(str::to_string))
        .or_else(|| {
            logs.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
}

fn per_sec(n: f64, secs: f64) -> f64 {
    n / secs.max(1e-9)
}

/// How long one task ran (inside its worker): avg, p50, p99 and max. A round holds tens of
/// tasks, too few for p95 / p99.9 to say more.
fn task_times(m: &mut Metrics, kind: &str, us: impl Iterator<Item = u32>) {
    let prefix = format!("{kind}_task_");
    latency_metrics(m, &prefix, us);
    m.remove(&format!("{prefix}p95_ms"));
    m.remove(&format!("{prefix}p999_ms"));
}

/// The summary and per-round samples from the job's result line.
fn measurements(result: &Value, started_at: f64) -> (Metrics, Vec<Sample>) {
    let rounds = result["rounds"].as_array().cloned().unwrap_or_default();
    let mut summary = Metrics::new();
    let mut samples = Vec::new();
    let (mut all_tasks, mut all_secs) = (0.0, 0.0);
    for kind in ["cpu", "io"] {
        let (mut tasks, mut secs) = (0.0, 0.0);
        let mut durations: Vec<u32> = Vec::new();
        for r in &rounds {
            if let (Some(s), Some(d)) = (
                r[format!("{kind}_seconds")].as_f64(),
                r[format!("{kind}_task_seconds")].as_array(),
            ) {
                tasks += d.len() as f64;
                secs += s;
                durations.extend(
                    d.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| (x * 1e6) as u32),
                );
            }
        }
        if tasks > 0.0 {
            summary.insert(format!("{kind}_tasks_per_sec"), per_sec(tasks, secs));
            summary.insert(format!("{kind}_seconds"), secs);
            task_times(&mut summary, kind, durations.into_iter());
            all_tasks += tasks;
            all_secs += secs;
        }
    }
    summary.insert("records_per_sec".into(), per_sec(all_tasks, all_secs));
    summary.insert("records".into(), all_tasks);
    summary.insert("seconds".into(), all_secs);
    for r in &rounds {
        let mut m = Metrics::new();
        let (mut n, mut s) = (0.0, 0.0);
        for kind in ["cpu", "io"] {
            if let (Some(secs), Some(d)) = (
                r[format!("{kind}_seconds")].as_f64(),
                r[format!("{kind}_task_seconds")].as_array(),
            ) {
                m.insert(
                    format!("{kind}_tasks_per_sec"),
                    per_sec(d.len() as f64, secs),
                );
                task_times(
                    &mut m,
                    kind,
                    d.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| (x * 1e6) as u32),
                );
                n += d.len() as f64;
                s += secs;
            }
        }
        m.insert("records_per_sec".into(), per_sec(n, s));
        samples.push(Sample {
            start_s: (r["start"].as_f64().unwrap_or(started_at) - started_at).max(0.0),
            seconds: s,
            metrics: m,
        });
    }
    (summary, samples)
}

pub async fn run(spec: &RaySpec) -> Result<RunRecord, Error> {
    spec.validate()?;
    let (mut record, origin) = start_record("ray", spec.parameters());
    let api = Api {
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Ray(format!("HTTP client: {e}")))?,
        base: spec.base(),
    };
    let version = api.get("/api/version", "GET /api/version").await?;
    let ray_version = version["ray_version"].as_str().unwrap_or("").to_string();
    record.target = Some(format!("Ray {ray_version} at {}", api.base));

    let id = format!(
        "ferry-bench-ray-{}-{}",
        (crate::unix_now() * 1000.0) as u64,
        std::process::id()
    );
    let body = json!({
        "entrypoint": entrypoint(),
        "submission_id": id,
        "runtime_env": { "env_vars": { "FERRY_RAY_PARAMS": spec.job_params().to_string() } },
        "metadata": { "created_by": "ferry bench ray" },
    });
    let submitted = Instant::now();
    api.send(
        api.http.post(format!("{}/api/jobs/", api.base)).json(&body),
        "submitting the benchmark job (POST /api/jobs/)",
    )
    .await?;
    let sampler = crate::host::Sampler::start(origin, crate::SAMPLE_INTERVAL);
    let deadline = submitted + Duration::from_secs_f64(spec.timeout_s);
    let job = loop {
        let job = api
            .get(&format!("/api/jobs/{id}"), &format!("job {id}"))
            .await?;
        match job["status"].as_str().unwrap_or("") {
            "SUCCEEDED" | "FAILED" | "STOPPED" => break job,
            _ if Instant::now() >= deadline => {
                let _ = api
                    .send(
                        api.http.post(format!("{}/api/jobs/{id}/stop", api.base)),
                        "stop",
                    )
                    .await;
                sampler.finish();
                return Err(Error::Ray(format!(
                    "job {id} did not finish within {:.0} s (stopped it); give a longer --timeout or fewer --tasks/--rounds",
                    spec.timeout_s
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let job_secs = submitted.elapsed().as_secs_f64();
    record.host_samples = sampler.finish();
    let logs = api
        .get(
            &format!("/api/jobs/{id}/logs"),
            &format!("logs of job {id}"),
        )
        .await?;
    let logs = logs["logs"].as_str().unwrap_or("");
    let status = job["status"].as_str().unwrap_or("");
    if status != "SUCCEEDED" {
        let why = job_error(logs)
            .or_else(|| {
                job["message"]
                    .as_str()
                    .and_then(|m| m.lines().next())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "no output".into());
        return Err(Error::Ray(format!(
            "job {id} {status}: {why} (its logs: GET {}/api/jobs/{id}/logs)",
            api.base
        )));
    }
    let result: Value = logs
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_MARK))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            Error::Ray(format!(
                "job {id} succeeded but printed no result line ({RESULT_MARK}…); its logs: GET {}/api/jobs/{id}/logs",
                api.base
            ))
        })?;
    let (summary, samples) = measurements(&result, record.started_at);
    record.summary = summary;
    record.sample_unit = Some("round".into());
    record.samples = samples;
    let pick = |k: &str| result[k].clone();
    record.server = Some(json!({
        "version": ray_version,
        "python": pick("python"),
        "nodes": pick("nodes"),
        "cluster_resources": pick("cluster_resources"),
        "available_resources_while_reserved": pick("available_resources"),
        "reserved_cpus": pick("num_cpus"),
        "cpu_library": pick("cpu_library"),
    }));
    record.result = Some(json!({
        "job": {
            "submission_id": id,
            "status": status,
            "seconds": job_secs,
            "warmup_seconds": pick("warmup_seconds"),
        },
        "rounds": result["rounds"].as_array().map(|rs| rs.iter().map(|r| json!({
            "round": r["round"],
            "cpu_seconds": r["cpu_seconds"],
            "io_seconds": r["io_seconds"],
        })).collect::<Vec<_>>()),
    }));
    Ok(finish_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_carries_the_script_intact() {
        let e = entrypoint();
        let b64 = e.split('\'').nth(1).unwrap();
        let back = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(back, JOB_SCRIPT.as_bytes());
    }

    #[test]
    fn rounds_become_samples_and_rates() {
        let result = json!({"rounds": [
            {"round": 1, "start": 10.0, "cpu_seconds": 2.0, "cpu_task_seconds": [0.1, 0.1, 0.1, 0.1],
             "io_seconds": 1.0, "io_task_seconds": [0.1, 0.1]},
            {"round": 2, "start": 13.0, "cpu_seconds": 1.0, "cpu_task_seconds": [0.1, 0.1, 0.1, 0.1],
             "io_seconds": 1.0, "io_task_seconds": [0.1, 0.1]},
        ]});
        let (s, samples) = measurements(&result, 10.0);
        assert!((s["cpu_tasks_per_sec"] - 8.0 / 3.0).abs() < 1e-9);
        assert!((s["io_tasks_per_sec"] - 2.0).abs() < 1e-9);
        assert!((s["records_per_sec"] - 12.0 / 5.0).abs() < 1e-9);
        assert_eq!(s["records"], 12.0);
        assert_eq!(samples.len(), 2);
        assert!((samples[1].metrics["cpu_tasks_per_sec"] - 4.0).abs() < 1e-9);
        assert_eq!(samples[1].start_s, 3.0);
        assert!((s["cpu_task_p50_ms"] - 100.0).abs() < 1e-6);
    }

    #[test]
    fn job_error_prefers_the_scripts_line() {
        let logs = "starting\nFERRY_RAY_ERROR cannot reserve 9 CPUs\nTraceback\n";
        assert_eq!(job_error(logs).unwrap(), "cannot reserve 9 CPUs");
        assert_eq!(job_error("a\nValueError: x\n").unwrap(), "ValueError: x");
    }
}
