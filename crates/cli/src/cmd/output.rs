//! What the user sees of a migration: a progress bar per table, the summary table, the JSON
//! summary and the run record.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use ferry_migrate::job::PreparedTable;
use ferry_migrate::pipeline::{Counters, TableReport};
use ferry_migrate::retry::Recovered;
use ferry_report::RunRecord;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;

/// Progress bars, one per table, fed from the table's counters by a ticker.
pub struct Progress {
    multi: MultiProgress,
    bars: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    hidden: bool,
}

impl Progress {
    pub fn new(hidden: bool) -> Self {
        let multi = MultiProgress::new();
        if hidden {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Progress {
            multi,
            bars: Mutex::new(Vec::new()),
            hidden,
        }
    }

    /// Starts a bar for a table: position = chunks done (ETA comes from the plan), message =
    /// rows, rows/s and MB/s.
    pub fn start(&self, table: &PreparedTable, counters: &Arc<Counters>) {
        if self.hidden {
            return;
        }
        let bar = self
            .multi
            .add(ProgressBar::new(table.plan.chunks.len() as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} chunks {msg} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(table.mapping.source.qualified());
        let counters = counters.clone();
        let started = std::time::Instant::now();
        let handle = tokio::spawn(async move {
            loop {
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let rows = counters.rows_written.load(Ordering::Relaxed);
                let bytes = counters.bytes_written.load(Ordering::Relaxed);
                bar.set_position(counters.chunks_done.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{rows} rows {:.0} rows/s {:.1} MB/s",
                    rows as f64 / secs,
                    bytes as f64 / secs / 1e6
                ));
                if bar.position() >= bar.length().unwrap_or(0) {
                    bar.finish_and_clear();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        self.bars.lock().expect("progress lock").push(handle);
    }

    pub fn finish(&self) {
        for h in self.bars.lock().expect("progress lock").drain(..) {
            h.abort();
        }
        let _ = self.multi.clear();
    }
}

/// Which side the run waited on most.
pub fn bottleneck(r: &TableReport) -> &'static str {
    bottleneck_side(r.source_wait, r.target_wait, r.encode)
}

/// Which of the three the workers waited on most: Cassandra, the target, or encoding.
pub fn bottleneck_side(s: Duration, t: Duration, e: Duration) -> &'static str {
    if s >= t && s >= e {
        "source (Cassandra reads)"
    } else if t >= e {
        "target (COPY writes)"
    } else {
        "encoding (CPU)"
    }
}

/// The latency line: the slowest table's p99 of Cassandra page reads (against
/// `ferry.sourceLatencyTargetMs` when set) and of chunk commits on the target.
/// The faults a run rode through, per side: summed over its tables, with the run's own target
/// connection's reconnects (`admin`: reconnects and the longest outage it rode through).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    pub source_pages_reread: u64,
    pub source_chunks_retried: u64,
    pub source_longest_outage: Duration,
    pub target_reconnects: u64,
    pub target_chunks_retried: u64,
    pub target_longest_outage: Duration,
}

impl Faults {
    pub fn of(reports: &[TableReport], admin: Recovered) -> Faults {
        let sum = |f: fn(&TableReport) -> u64| reports.iter().map(f).sum::<u64>();
        let max = |f: fn(&TableReport) -> Duration| reports.iter().map(f).max().unwrap_or_default();
        Faults {
            source_pages_reread: sum(|r| r.read_retries),
            source_chunks_retried: sum(|r| r.source_chunk_retries),
            source_longest_outage: max(|r| r.source_outage),
            target_reconnects: sum(|r| r.target_reconnects) + admin.reconnects,
            target_chunks_retried: sum(|r| r.write_retries),
            target_longest_outage: max(|r| r.target_outage).max(admin.longest_outage),
        }
    }

    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

pub fn faults_json(f: &Faults) -> serde_json::Value {
    json!({
        "source": {
            "pages_reread": f.source_pages_reread,
            "chunks_retried": f.source_chunks_retried,
            "longest_outage_seconds": f.source_longest_outage.as_secs_f64(),
        },
        "target": {
            "reconnects": f.target_reconnects,
            "chunks_retried": f.target_chunks_retried,
            "longest_outage_seconds": f.target_longest_outage.as_secs_f64(),
        },
    })
}

/// One line for the summary when the run rode through faults; `None` when it met none.
pub fn faults_line(f: &Faults) -> Option<String> {
    f.any().then(|| {
        format!(
            "faults ridden through: source (Cassandra): {} page(s) re-read, {} chunk(s) retried, \
             longest outage {:.1} s; target: {} reconnect(s), {} chunk(s) retried, longest \
             outage {:.1} s\n",
            f.source_pages_reread,
            f.source_chunks_retried,
            f.source_longest_outage.as_secs_f64(),
            f.target_reconnects,
            f.target_chunks_retried,
            f.target_longest_outage.as_secs_f64(),
        )
    })
}

pub fn latency_line(reports: &[TableReport], source_target_ms: Option<u64>) -> Option<String> {
    let worst =
        |f: fn(&TableReport) -> Option<f64>| reports.iter().filter_map(f).max_by(f64::total_cmp);
    let (pages, commits) = (worst(|r| r.source_p99_ms), worst(|r| r.commit_p99_ms));
    if pages.is_none() && commits.is_none() {
        return None;
    }
    let ms = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.0} ms"));
    let against = match (source_target_ms, pages) {
        (Some(t), Some(p)) if p <= t as f64 => format!(" (ferry.sourceLatencyTargetMs={t}: met)"),
        (Some(t), Some(_)) => format!(" (ferry.sourceLatencyTargetMs={t}: over)"),
        _ => String::new(),
    };
    Some(format!(
        "latency p99: Cassandra page reads {}{against}, target chunk commits {}\n",
        ms(pages),
        ms(commits)
    ))
}

/// The summary table, one line per table plus a total.
pub fn summary_table(reports: &[TableReport]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<32} {:>11} {:>11} {:>9} {:>10} {:>8} {:>10}  {}\n",
        "table", "read", "written", "rejected", "MB", "seconds", "rows/s", "bottleneck"
    ));
    for r in reports {
        out.push_str(&format!(
            "{:<32} {:>11} {:>11} {:>9} {:>10.1} {:>8.1} {:>10.0}  {}\n",
            format!("{} → {}", r.source, r.target),
            r.rows_read,
            r.rows_written,
            r.rows_rejected,
            r.bytes as f64 / 1e6,
            r.elapsed.as_secs_f64(),
            r.rows_per_sec(),
            bottleneck(r)
        ));
    }
    if reports.len() > 1 {
        // The run's span: tables copy side by side, so their seconds overlap.
        let starts = reports.iter().filter_map(|r| r.started_at);
        let first = starts.clone().min();
        let last = reports
            .iter()
            .filter_map(|r| r.started_at.map(|s| s + r.elapsed))
            .max();
        let span = match (first, last) {
            (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
            _ => reports.iter().map(|r| r.elapsed).sum(),
        };
        let sum = |f: fn(&TableReport) -> u64| reports.iter().map(f).sum::<u64>();
        let written = sum(|r| r.rows_written);
        let label = format!("total ({} tables)", reports.len());
        let overlap = format!(
            "{:.1} tables copying at once on average",
            reports.iter().map(|r| r.elapsed.as_secs_f64()).sum::<f64>()
                / span.as_secs_f64().max(1e-3)
        );
        out.push_str(&format!(
            "{:<32} {:>11} {:>11} {:>9} {:>10.1} {:>8.1} {:>10.0}  {}\n",
            label,
            sum(|r| r.rows_read),
            written,
            sum(|r| r.rows_rejected),
            sum(|r| r.bytes) as f64 / 1e6,
            span.as_secs_f64(),
            written as f64 / span.as_secs_f64().max(1e-3),
            overlap
        ));
    }
    for r in reports.iter().filter(|r| r.rows_before > 0) {
        out.push_str(&format!(
            "{}: resumed; {} rows were already in {} from earlier runs ({} in all)\n",
            r.source,
            r.rows_before,
            r.target,
            r.rows_before + r.rows_written
        ));
    }
    for r in reports.iter() {
        if let Some(since) = r.since_us {
            out.push_str(&format!(
                "{}: catch-up since {}: {} rows scanned, {} written as upserts (written at or after that, less the clock-skew margin); this pass started {} (the next --since last starts there)\n",
                r.source,
                ferry_migrate::job::rfc3339_us(since),
                r.rows_read,
                r.rows_written,
                r.started_at.map_or("—".to_string(), |t| {
                    ferry_migrate::job::rfc3339_us((unix_secs(t) * 1e6) as i64)
                })
            ));
        }
    }
    for r in reports.iter().filter(|r| r.pages_failed_over > 0) {
        out.push_str(&format!(
            "{}: {} page(s) read from another replica than their first choice (failed over)\n",
            r.source, r.pages_failed_over
        ));
    }
    for r in reports.iter().filter(|r| r.workers.peak != r.workers.start) {
        out.push_str(&format!(
            "{}: chunks in flight adapted from {} to {} (peak {})\n",
            r.source, r.workers.start, r.workers.end, r.workers.peak
        ));
    }
    out
}

/// A large partition the plan split ([`ferry_migrate::partition_split`]), for `--json`.
pub fn large_partition_json(l: &ferry_migrate::plan::LargePartition) -> serde_json::Value {
    serde_json::json!({
        "token": l.token,
        "rows": l.rows,
        "rows_exact": l.counted_all,
        "ranges": l.ranges,
        "columns": l.columns,
    })
}

pub fn report_json(r: &TableReport) -> serde_json::Value {
    json!({
        "source": r.source,
        "target": r.target,
        "rows_read": r.rows_read,
        "rows_written": r.rows_written,
        "rows_before": r.rows_before,
        "started_at": r.started_at.map(unix_secs),
        "rows_rejected": r.rows_rejected,
        "bytes": r.bytes,
        "chunks": r.chunks,
        "seconds": r.elapsed.as_secs_f64(),
        "rows_per_sec": r.rows_per_sec(),
        "steady_rows_per_sec": r.steady_rows_per_sec,
        "mb_per_sec": r.bytes as f64 / 1e6 / r.elapsed.as_secs_f64().max(1e-9),
        "write_retries": r.write_retries,
        "read_retries": r.read_retries,
        "faults": faults_json(&Faults::of(std::slice::from_ref(r), Recovered::default())),
        "pages_failed_over": r.pages_failed_over,
        "source_page_p99_ms": r.source_p99_ms,
        "commit_p99_ms": r.commit_p99_ms,
        "workers": {"start": r.workers.start, "end": r.workers.end, "peak": r.workers.peak},
        "wait_seconds": {
            "source": r.source_wait.as_secs_f64(),
            "target": r.target_wait.as_secs_f64(),
            "encode": r.encode.as_secs_f64(),
        },
        "bottleneck": bottleneck(r),
        "catch_up": r.since_us.map(|since| json!({
            "since": ferry_migrate::job::rfc3339_us(since),
            "rows_scanned": r.rows_read,
            "rows_written": r.rows_written,
            "pass_started_at": r.started_at.map(unix_secs),
        })),
    })
}

/// Unix seconds, as run records keep times.
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes a run record into `dir` as `<kind>-<unix ms>.json`, returning its path. Every
/// command's record goes through [`RunRecord::save`] (typed, versioned, secrets redacted).
pub fn write_run_record(dir: &Path, record: &RunRecord) -> Result<PathBuf> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let path = dir.join(format!("{}-{stamp}.json", record.kind));
    record
        .save(&path)
        .with_context(|| format!("writing the run record {}", path.display()))?;
    Ok(path)
}

/// A command's record: kind, start and end, the host's facts (CPU model and count, memory, OS:
/// the same facts every probe records), and `parameters` (an object).
pub fn run_record(kind: &str, started: SystemTime, parameters: serde_json::Value) -> RunRecord {
    let mut r = RunRecord::new(kind, ferry_bench::host::facts(), unix_secs(started));
    r.ended_at = unix_secs(SystemTime::now());
    if let serde_json::Value::Object(m) = parameters {
        r.parameters = m;
    }
    r
}

/// `--set` overrides as the record keeps them, `KEY=VALUE` (secrets redacted when saved).
pub fn overrides(set: &[(String, String)]) -> Vec<String> {
    set.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The version of every `--json` object's shape (docs/json.md). Raised when a field changes
/// meaning or goes away; new fields may appear without it.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Prints a command's `--json` object on stdout: `schema_version` and `command` beside the
/// command's own fields (`body` must be a JSON object).
pub fn print_json(command: &str, body: &serde_json::Value) -> Result<()> {
    let mut object = match body {
        serde_json::Value::Object(m) => m.clone(),
        other => anyhow::bail!("internal: --json of {command} is not an object: {other}"),
    };
    // A body with a versioned shape of its own (diagnose's report) keeps its version.
    object
        .entry("schema_version")
        .or_insert(json!(JSON_SCHEMA_VERSION));
    object.insert("command".into(), json!(command));
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(object))?
    );
    Ok(())
}

#[cfg(test)]
mod record_tests {
    /// The one redaction rule covers every key the configuration registry calls secret, so a
    /// secret given with `--set` never reaches a run record.
    #[test]
    fn the_redaction_rule_covers_every_secret_key_of_the_registry() {
        let secrets: Vec<&str> = ferry_migrate::config::registry::KEYS
            .iter()
            .filter(|k| k.is_secret())
            .map(|k| k.key)
            .collect();
        assert!(secrets.len() >= 4, "{secrets:?}");
        for k in secrets {
            assert!(
                ferry_report::record::is_secret_key(k),
                "{k} is secret in the registry but the record's redaction misses it"
            );
        }
    }
}
