//! `ferry validate` (and `ferry migrate --validate`): compare source and target, print a summary
//! and the first differing rows, write every differing row to a JSON-lines file and a run record.
//! Exit code 0 only when every table is equal, 1 when one differs, 2 on errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::Args;
use ferry_migrate::config::{Loaded, ValidationMode};
use ferry_migrate::job::{self, Job, Prepared};
use ferry_migrate::validate::{self, Counters, Mode, Options, Rejects, RowDiff, TableValidation};
use serde_json::json;

use super::job::ConfigArgs;
use super::output;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Compare every row of both sides (the default unless migration.validation.sampleSize is
    /// set).
    #[arg(long, conflicts_with = "sample")]
    pub full: bool,
    /// Quick check: look this many source rows per table up in the target.
    #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Differing rows shown on screen; all of them go to the diff file.
    #[arg(long, value_name = "ROWS", default_value_t = 20)]
    pub show: usize,
    /// Where every differing row is written, as JSON lines [default: <runs dir>/validation-<ms>.diff.jsonl].
    #[arg(long, value_name = "FILE")]
    pub diff_file: Option<PathBuf>,
    /// Most rows per table whose details are kept to name the differing rows (bounds memory).
    #[arg(long, value_name = "ROWS", default_value_t = 2_000_000)]
    pub max_detail_rows: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Make the target equal: rows missing or different are read again from Cassandra and
    /// upserted, rows only in the target deleted, then the tables validated again (full mode).
    /// Exit 0 only when they end equal.
    #[arg(long, conflicts_with = "sample")]
    pub repair: bool,
    /// With --repair: print what it would change, and change nothing.
    #[arg(long, requires = "repair")]
    pub dry_run: bool,
}

pub async fn run(args: ValidateArgs) -> Result<Exit> {
    let loaded = super::job::load(&args.config)?;
    let job = super::job::job(&args.config, &loaded, false)?;
    let prepared = job::prepare(&job).await?;
    let mode = if args.full || args.repair {
        Mode::Full
    } else if let Some(rows) = args.sample {
        Mode::Sample { rows }
    } else {
        configured_mode(&loaded)
    };
    let show = Show {
        rows: args.show,
        print: if args.json { Print::Json } else { Print::Table },
        diff_file: args.diff_file.clone(),
        repair: args.repair.then_some(args.dry_run),
    };
    let tables = check(
        &job,
        &prepared,
        &loaded,
        &args.config,
        mode,
        args.max_detail_rows,
        &show,
    )
    .await?;
    Ok(if tables.iter().all(TableValidation::equal) {
        Exit::Success
    } else {
        Exit::CheckFailed
    })
}

/// Validation at the end of `ferry migrate`, in the configured mode. Returns true when a table
/// differs in more than the rows the reject file explains.
pub async fn after_migrate(
    job: &Job,
    prepared: &Prepared,
    loaded: &Loaded,
    config: &ConfigArgs,
    json: bool,
) -> Result<bool> {
    let show = Show {
        rows: 20,
        // After `migrate --json`, stdout holds the migration's JSON; the outcome goes to stderr.
        print: if json { Print::OneLine } else { Print::Table },
        diff_file: None,
        repair: None,
    };
    let tables = check(
        job,
        prepared,
        loaded,
        config,
        configured_mode(loaded),
        2_000_000,
        &show,
    )
    .await?;
    Ok(tables.iter().any(|t| {
        t.buckets_differing > t.buckets_narrowed
            || t.diffs
                .iter()
                .any(|d| d.reject.as_ref().is_none_or(|r| !r.in_reject_file))
    }))
}

fn configured_mode(loaded: &Loaded) -> Mode {
    match loaded.spec.run.validation.mode {
        ValidationMode::Full => Mode::Full,
        ValidationMode::Sample { rows } => Mode::Sample { rows },
    }
}

/// What to do, print, and where.
struct Show {
    rows: usize,
    print: Print,
    diff_file: Option<PathBuf>,
    /// `--repair` (`Some(true)`: `--dry-run`).
    repair: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Print {
    /// Summary table and the first differing rows on stdout.
    Table,
    /// The summary as JSON on stdout.
    Json,
    /// One line on stderr.
    OneLine,
}

/// Validates every table of the prepared job, prints the outcome and writes the diff file and
/// the run record.
async fn check(
    job: &Job,
    prepared: &Prepared,
    loaded: &Loaded,
    config: &ConfigArgs,
    mode: Mode,
    max_detail_rows: u64,
    show: &Show,
) -> Result<Vec<TableValidation>> {
    let started = SystemTime::now();
    let opts = Options {
        mode,
        source_concurrency: job.settings.writers.max(1),
        target_streams: (job.settings.writers / 4).clamp(1, 8),
        max_detail_rows,
    };
    let rejects = Rejects::load(&job.settings.reject_file)?;
    let counters = Arc::new(Counters::default());
    let spinner = spinner(show.print != Print::Table, &counters);
    let result = match show.repair {
        None => validate::validate_job(job, prepared, &opts, &rejects, &counters)
            .await
            .map(|t| (t, None)),
        Some(dry_run) => {
            validate::repair::repair_job(job, prepared, &opts, &rejects, &counters, dry_run)
                .await
                .map(|r| (r.tables, Some((r.repairs, r.rounds, dry_run))))
        }
    };
    if let Some(s) = spinner {
        s.abort();
        eprint!("\r\x1b[2K");
    }
    let (tables, repaired) = result?;

    let runs_dir = &loaded.spec.run.runs_dir;
    let any_diffs = tables.iter().any(|t| !t.diffs.is_empty());
    let diff_path = match (&show.diff_file, any_diffs) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => {
            std::fs::create_dir_all(runs_dir)
                .with_context(|| format!("creating {}", runs_dir.display()))?;
            Some(runs_dir.join(format!(
                "validation-{}.diff.jsonl",
                (output::unix_secs(SystemTime::now()) * 1000.0) as u64
            )))
        }
        (None, false) => None,
    };
    if let Some(p) = &diff_path {
        write_diffs(p, &tables)?;
    }

    let secs = started.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let equal = tables.iter().all(TableValidation::equal);
    let source_rows: u64 = tables.iter().map(|t| t.source_rows).sum();
    let summary = json!({
        "equal": equal,
        "tables": tables.iter().map(table_json).collect::<Vec<_>>(),
        "diff_file": diff_path.as_ref().map(|p| p.display().to_string()),
        // The faults it rode through: source pages read again, and tables whose validation
        // started over after a fault.
        "faults": {
            "pages_reread": counters.pages_reread.load(Ordering::Relaxed),
            "restarts": tables.iter().map(|t| u64::from(t.restarts)).sum::<u64>(),
        },
        "reject_file": job.settings.reject_file.display().to_string(),
        "target": prepared.facts.version,
        "repair": repaired.as_ref().map(|(repairs, rounds, dry_run)| json!({
            "dry_run": dry_run,
            "rounds": rounds,
            "tables": tables.iter().zip(repairs).map(|(t, r)| repair_json(t, r)).collect::<Vec<_>>(),
        })),
    });
    let mut record = output::run_record(
        "validation",
        started,
        json!({
            "config_file": config.config.display().to_string(),
            "overrides": output::overrides(&config.set),
            "mode": mode_json(mode),
            "source_concurrency": opts.source_concurrency,
            "target_streams": opts.target_streams,
            "max_detail_rows": opts.max_detail_rows,
            "fetch_size_rows": job.settings.fetch_size_rows,
        }),
    );
    record.target = Some(prepared.facts.version.clone());
    // Numbers only: whether the tables are equal is in the result (and the differences count).
    let differing = tables.iter().filter(|t| !t.equal()).count();
    record.summary = [
        ("source_rows", source_rows as f64),
        ("tables_differing", differing as f64),
        ("records_per_sec", source_rows as f64 / secs.max(1e-9)),
        ("seconds", secs),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    record.result = Some(summary.clone());
    let record_path = output::write_run_record(runs_dir, &record)?;
    match show.print {
        Print::Json => output::print_json("validate", &summary)?,
        Print::Table => {
            if let Some((repairs, rounds, dry_run)) = &repaired {
                print!("{}", repair_lines(&tables, repairs, *rounds, *dry_run));
            }
            print!("{}", summary_table(&tables));
            print!("{}", diff_lines(&tables, show.rows, diff_path.as_deref()));
            let (pages, restarts) = (
                counters.pages_reread.load(Ordering::Relaxed),
                tables.iter().map(|t| t.restarts).sum::<u32>(),
            );
            if pages + u64::from(restarts) > 0 {
                println!(
                    "faults ridden through: {pages} source page(s) re-read, {restarts} table \
                     validation(s) started over"
                );
            }
            println!("run record: {}", record_path.display());
        }
        Print::OneLine => eprintln!(
            "ferry: validation: {} — run record: {}",
            if equal { "equal" } else { "DIFFERS" },
            record_path.display()
        ),
    }
    Ok(tables)
}

fn mode_json(mode: Mode) -> serde_json::Value {
    match mode {
        Mode::Full => json!("full"),
        Mode::Sample { rows } => json!({ "sample_rows": rows }),
    }
}

/// A spinner with the rows reduced on each side, on stderr while the validation runs.
fn spinner(hidden: bool, counters: &Arc<Counters>) -> Option<tokio::task::JoinHandle<()>> {
    use std::io::IsTerminal;
    if hidden || !std::io::stderr().is_terminal() {
        return None;
    }
    let counters = counters.clone();
    let started = std::time::Instant::now();
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let s = counters.source_rows.load(Ordering::Relaxed);
            let t = counters.target_rows.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\r\x1b[2Kvalidating: {s} source rows, {t} target rows, {:.0} rows/s",
                s as f64 / secs
            );
            let _ = std::io::stderr().flush();
        }
    }))
}

fn verdict(t: &TableValidation) -> &'static str {
    if t.equal() {
        "equal"
    } else if t
        .diffs
        .iter()
        .all(|d| d.reject.as_ref().is_some_and(|r| r.in_reject_file))
        && t.buckets_differing == t.buckets_narrowed
    {
        "differs: rejected rows"
    } else {
        "DIFFERS"
    }
}

/// One line per table.
pub fn summary_table(tables: &[TableValidation]) -> String {
    let mut out = format!(
        "{:<40} {:<12} {:>11} {:>11} {:>8} {:>8} {:>8} {:>9} {:>8}  {}\n",
        "table",
        "mode",
        "source",
        "target",
        "buckets",
        "missing",
        "extra",
        "different",
        "rows/s",
        "verdict"
    );
    for t in tables {
        let mode = match t.mode {
            Mode::Full => "full".to_string(),
            Mode::Sample { rows } => format!("sample {rows}"),
        };
        out.push_str(&format!(
            "{:<40} {:<12} {:>11} {:>11} {:>8} {:>8} {:>8} {:>9} {:>8.0}  {}\n",
            format!("{} → {}", t.source, t.target),
            mode,
            t.source_rows,
            t.target_rows,
            t.buckets,
            t.missing,
            t.extra,
            t.different,
            t.rows_per_sec(),
            verdict(t)
        ));
        if t.buckets_differing > t.buckets_narrowed {
            out.push_str(&format!(
                "  {} of {} differing buckets ({} rows) were not narrowed down to rows: raise --max-detail-rows to see them\n",
                t.buckets_differing - t.buckets_narrowed,
                t.buckets_differing,
                t.rows_not_narrowed
            ));
        }
        if matches!(t.mode, Mode::Sample { .. }) && !t.equal() {
            out.push_str(
                "  sample mode sees only sampled source rows; run with --full for every row\n",
            );
        }
    }
    out
}

fn diff_text(d: &RowDiff) -> String {
    let key = serde_json::to_string(&d.primary_key).unwrap_or_default();
    let mut s = format!("{:<9} {key}", d.kind.as_str());
    if !d.columns.is_empty() {
        s.push_str(&format!("  columns: {}", d.columns.join(", ")));
    }
    if let Some(r) = &d.reject {
        s.push_str(&format!(
            "  {}: {}: {}",
            if r.in_reject_file {
                "rejected"
            } else {
                "not writable (not in the reject file)"
            },
            r.column,
            r.reason
        ));
    }
    s
}

/// The first `limit` differing rows, and where the rest are.
fn diff_lines(tables: &[TableValidation], limit: usize, file: Option<&Path>) -> String {
    let mut out = String::new();
    let total: usize = tables.iter().map(|t| t.diffs.len()).sum();
    let mut shown = 0;
    for t in tables {
        for d in t.diffs.iter().take(limit.saturating_sub(shown)) {
            out.push_str(&format!("{}: {}\n", t.source, diff_text(d)));
            shown += 1;
        }
    }
    if let Some(f) = file.filter(|_| total > 0) {
        out.push_str(&format!(
            "{total} differing rows{}: {}\n",
            if shown < total {
                format!(" ({} more than shown)", total - shown)
            } else {
                String::new()
            },
            f.display()
        ));
    }
    out
}

fn diff_json(t: &TableValidation, d: &RowDiff) -> serde_json::Value {
    json!({
        "table": t.source,
        "target": t.target,
        "kind": d.kind.as_str(),
        "primary_key": d.primary_key,
        "columns": d.columns,
        "reject": d.reject.as_ref().map(|r| json!({
            "column": r.column,
            "reason": r.reason,
            "in_reject_file": r.in_reject_file,
        })),
    })
}

fn write_diffs(path: &Path, tables: &[TableValidation]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let f = std::fs::File::create(path)
        .with_context(|| format!("creating the diff file {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    for t in tables {
        for d in &t.diffs {
            serde_json::to_writer(&mut w, &diff_json(t, d))?;
            w.write_all(b"\n")?;
        }
    }
    w.flush()
        .with_context(|| format!("writing the diff file {}", path.display()))
}

fn table_json(t: &TableValidation) -> serde_json::Value {
    json!({
        "source": t.source,
        "target": t.target,
        "mode": mode_json(t.mode),
        "equal": t.equal(),
        "verdict": verdict(t),
        "source_rows": t.source_rows,
        "target_rows": t.target_rows,
        "buckets": t.buckets,
        "buckets_differing": t.buckets_differing,
        "buckets_narrowed": t.buckets_narrowed,
        "rows_not_narrowed": t.rows_not_narrowed,
        "missing": t.missing,
        "missing_rejected": t.missing_rejected(),
        "extra": t.extra,
        "different": t.different,
        "seconds": t.elapsed.as_secs_f64(),
        "narrow_seconds": t.narrow_elapsed.as_secs_f64(),
        "restarts": t.restarts,
        "rows_per_sec": t.rows_per_sec(),
    })
}

fn repair_json(t: &TableValidation, r: &validate::repair::Repair) -> serde_json::Value {
    json!({
        "source": t.source,
        "target": t.target,
        "upserted_missing": r.upserted_missing,
        "upserted_different": r.upserted_different,
        "deleted_extra": r.deleted_extra,
        "deleted_gone": r.deleted_gone,
        "deleted_expired": r.deleted_expired,
        "rejected": r.rejected,
        "changed": r.changed(),
    })
}

/// What `--repair` changed (or would), a line per table.
fn repair_lines(
    tables: &[TableValidation],
    repairs: &[validate::repair::Repair],
    rounds: u32,
    dry_run: bool,
) -> String {
    let mut out = String::new();
    for (t, r) in tables.iter().zip(repairs) {
        out.push_str(&format!(
            "{}: {} {} missing and {} different row(s) upserted, {} row(s) only in the target deleted, {} row(s) gone from the source deleted, {} expired row(s) deleted{}\n",
            t.source,
            if dry_run { "repair (dry run, nothing written) would change:" } else { "repaired:" },
            r.upserted_missing,
            r.upserted_different,
            r.deleted_extra,
            r.deleted_gone,
            r.deleted_expired,
            if r.rejected > 0 { format!("; {} row(s) ferry cannot write left alone", r.rejected) } else { String::new() }
        ));
    }
    if !dry_run {
        out.push_str(&format!(
            "repair: {rounds} round(s) of repair; the validation below is after the last one\n"
        ));
    }
    out
}
