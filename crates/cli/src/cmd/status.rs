//! `ferry status`: how far a migration got, from the progress tables in the target — chunks
//! done, leased and pending, rows, rate and ETA. Works while workers run, or after a stop.

use anyhow::Result;
use clap::Args;
use ferry_migrate::progress::{Progress, Standing, StatusCounts};
use ferry_migrate::{cassandra, schema, sink};
use scylla::client::session::Session;
use serde_json::json;

use super::job::ConfigArgs;
use super::output;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print the migrations' progress as one JSON object on stdout (docs/json.md), for
    /// monitoring loops.
    #[arg(long)]
    pub json: bool,
    /// Export the rejected rows of every migration in the progress schema to the reject file
    /// (`ferry.rejectFile`, JSON lines) from the reject table, as a run does at its end.
    #[arg(long)]
    pub rejects: bool,
}

pub async fn run(args: StatusArgs) -> Result<Exit> {
    let loaded = super::job::load(&args.config)?;
    let job = super::job::job(&args.config, &loaded, false)?;
    let facts = sink::discover(&job.target).await?;
    let client = job
        .target
        .connect(&facts.nodes[0].0, facts.nodes[0].1)
        .await?;
    let progress = Progress::new(&job.progress_schema);
    let jobs = progress.jobs(&client).await?;
    if args.rejects {
        // Measurement runs (`[scan]`, `[replay]`) wrote nothing the reject file explains.
        let keys: Vec<String> = jobs
            .iter()
            .map(|j| j.0.clone())
            .filter(|k| !k.ends_with(']'))
            .collect();
        let path = &job.settings.reject_file;
        let n =
            ferry_migrate::rejects::export(&client, &progress.rejects_table(), &keys, path).await?;
        if n > 0 {
            eprintln!("ferry: {n} rejected rows exported to {}", path.display());
        } else {
            eprintln!(
                "ferry: no rejected rows recorded; {} left as it is",
                path.display()
            );
        }
    }
    // The source is asked only for table ids; when it cannot be reached the verdict rests on
    // the target side alone, and says so.
    let session = if jobs.is_empty() {
        None
    } else {
        match cassandra::connect(&job.source).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("ferry: note: source tables not checked (Cassandra: {e:#})");
                None
            }
        }
    };
    if args.json {
        let mut migrations = Vec::new();
        for (key, source, target, chunks, finished) in jobs {
            let Some(s) = progress.status(&client, &key).await? else {
                continue;
            };
            let (rate, eta) = rate_and_eta(&s);
            let standing =
                standing_of(&progress, &client, session.as_ref(), &key, &source, &target).await?;
            migrations.push(json!({
                "key": key,
                "source": source,
                "target": target,
                "chunks": chunks,
                "done": s.done,
                "leased": s.leased,
                "pending": s.pending,
                "rows": s.rows,
                "rejected": s.rejected,
                "rows_per_sec": rate,
                "eta_secs": if finished { None } else { eta },
                "finished": finished,
                "standing": verdict_text(&standing),
            }));
        }
        let unfinished = migrations.iter().any(|m| m["finished"] == false);
        output::print_json(
            "status",
            &json!({
                "progress_schema": job.progress_schema,
                "migrations": migrations,
                "unfinished": unfinished,
            }),
        )?;
        return Ok(Exit::Success);
    }
    if jobs.is_empty() {
        println!(
            "no migration recorded in schema {} of the target yet — `ferry migrate -c {}` starts one",
            job.progress_schema,
            args.config.config.display()
        );
        return Ok(Exit::Success);
    }
    println!(
        "{:<48} {:>7} {:>7} {:>7} {:>12} {:>9} {:>10} {:>9}  progress",
        "migration", "done", "leased", "pending", "rows", "rejected", "rows/s", "eta"
    );
    let mut unfinished = false;
    let mut stale = false;
    for (key, source, target, chunks, finished) in jobs {
        let Some(s) = progress.status(&client, &key).await? else {
            continue;
        };
        let (rate, eta) = match rate_and_eta(&s) {
            (Some(rate), Some(left)) => (
                format!("{rate:.0}"),
                if finished {
                    "-".to_string()
                } else {
                    format!("{left:.0}s")
                },
            ),
            _ => ("-".to_string(), "-".to_string()),
        };
        unfinished |= !finished;
        let standing =
            standing_of(&progress, &client, session.as_ref(), &key, &source, &target).await?;
        let verdict = verdict_text(&standing);
        stale |= matches!(
            standing,
            Some(Standing::Stale(_)) | Some(Standing::TargetMissing)
        );
        println!(
            "{:<48} {:>7} {:>7} {:>7} {:>12} {:>9} {:>10} {:>9}  {}",
            format!("{source} → {target}"),
            format!("{}/{chunks}", s.done),
            s.leased,
            s.pending,
            s.rows,
            s.rejected,
            rate,
            eta,
            verdict
        );
    }
    if stale {
        println!(
            "a stale migration's rerun refuses to resume it: `ferry migrate --fresh` (with --truncate when the target has rows) starts it over"
        );
    }
    if unfinished {
        println!("unfinished migrations resume with the same `ferry migrate` command");
    }
    Ok(Exit::Success)
}

/// Whether the stored plan of `key` still describes its tables. Measurement runs (`[scan]`,
/// `[replay]`) always start over: nothing to judge.
async fn standing_of(
    progress: &Progress,
    client: &tokio_postgres::Client,
    session: Option<&Session>,
    key: &str,
    source: &str,
    target: &str,
) -> Result<Option<Standing>> {
    if key.ends_with(']') {
        return Ok(None);
    }
    let source_id = match (session, source.split_once('.')) {
        (Some(session), Some((ks, table))) => schema::source_table_id(session, ks, table).await?,
        _ => None,
    };
    progress.standing(client, key, target, source_id).await
}

fn verdict_text(standing: &Option<Standing>) -> String {
    match standing {
        None => "-".to_string(),
        Some(Standing::Current) => "current".to_string(),
        Some(Standing::TargetMissing) => "stale: the target table is missing".to_string(),
        Some(Standing::Stale(changes)) => format!(
            "stale: {}",
            changes
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// Rows per second so far and seconds left, from when the first and the last chunk were done;
/// `None` until two chunks are.
fn rate_and_eta(s: &StatusCounts) -> (Option<f64>, Option<f64>) {
    match (s.first_done, s.last_done) {
        (Some(a), Some(b)) if b > a && s.done > 1 => {
            let per_chunk = (b - a) / (s.done - 1) as f64;
            let rate = s.rows as f64 / (b - a + per_chunk);
            let left = (s.pending + s.leased) as f64 * per_chunk;
            (Some(rate), Some(left))
        }
        _ => (None, None),
    }
}
