//! What the user sees of a migration: a progress bar per table, the summary table, the JSON
//! summary and the run record.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use ferry_migrate::job::PreparedTable;
use ferry_migrate::pipeline::{Counters, TableReport};
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
    for r in reports.iter().filter(|r| r.rows_before > 0) {
        out.push_str(&format!(
            "{}: resumed; {} rows were already in {} from earlier runs ({} in all)\n",
            r.source,
            r.rows_before,
            r.target,
            r.rows_before + r.rows_written
        ));
    }
    for r in reports
        .iter()
        .filter(|r| r.pages_failed_over > 0 || r.read_retries > 0)
    {
        out.push_str(&format!(
            "{}: {} page(s) read from another replica than their first choice (failed over), {} read(s) retried\n",
            r.source, r.pages_failed_over, r.read_retries
        ));
    }
    for r in reports.iter().filter(|r| r.workers.2 != r.workers.0) {
        out.push_str(&format!(
            "{}: chunks in flight adapted from {} to {} (peak {})\n",
            r.source, r.workers.0, r.workers.1, r.workers.2
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
        "mb_per_sec": r.bytes as f64 / 1e6 / r.elapsed.as_secs_f64().max(1e-9),
        "write_retries": r.write_retries,
        "read_retries": r.read_retries,
        "pages_failed_over": r.pages_failed_over,
        "workers": {"start": r.workers.0, "end": r.workers.1, "peak": r.workers.2},
        "wait_seconds": {
            "source": r.source_wait.as_secs_f64(),
            "target": r.target_wait.as_secs_f64(),
            "encode": r.encode.as_secs_f64(),
        },
        "bottleneck": bottleneck(r),
    })
}

/// Host facts for run records: CPU model and count, memory, OS — the same facts every probe
/// records (one reader in ferry-report reads them all).
pub fn host_facts() -> serde_json::Value {
    serde_json::to_value(ferry_bench::host::facts()).unwrap_or_default()
}

pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes a run record (versioned JSON) into `dir`, returning its path.
pub fn write_run_record(dir: &Path, kind: &str, record: serde_json::Value) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let path = dir.join(format!("{kind}-{stamp}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&record)?)
        .with_context(|| format!("writing the run record {}", path.display()))?;
    Ok(path)
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
