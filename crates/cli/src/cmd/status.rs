//! `ferry status`: how far a migration got, from the progress tables in the target — chunks
//! done, leased and pending, rows, rate and ETA. Works while workers run, or after a stop.

use anyhow::Result;
use clap::Args;
use ferry_migrate::progress::{Progress, StatusCounts};
use ferry_migrate::sink;
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
    if args.json {
        let mut migrations = Vec::new();
        for (key, source, target, chunks, finished) in jobs {
            let Some(s) = progress.status(&client, &key).await? else {
                continue;
            };
            let (rate, eta) = rate_and_eta(&s);
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
        "{:<48} {:>7} {:>7} {:>7} {:>12} {:>9} {:>10} {:>9}",
        "migration", "done", "leased", "pending", "rows", "rejected", "rows/s", "eta"
    );
    let mut unfinished = false;
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
        println!(
            "{:<48} {:>7} {:>7} {:>7} {:>12} {:>9} {:>10} {:>9}",
            format!("{source} → {target}"),
            format!("{}/{chunks}", s.done),
            s.leased,
            s.pending,
            s.rows,
            s.rejected,
            rate,
            eta
        );
    }
    if unfinished {
        println!("unfinished migrations resume with the same `ferry migrate` command");
    }
    Ok(Exit::Success)
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
