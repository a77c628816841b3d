//! `ferry status`: how far a migration got, from the progress tables in the target — chunks
//! done, leased and pending, rows, rate and ETA. Works while workers run, or after a stop.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use ferry_migrate::progress::{Progress, Standing};
use ferry_migrate::{cassandra, schema, sink};

use super::job::ConfigArgs;

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub async fn run(args: StatusArgs) -> Result<ExitCode> {
    let loaded = super::job::load(&args.config)?;
    let job = super::job::job(&args.config, &loaded, false)?;
    let facts = sink::discover(&job.target).await?;
    let client = job
        .target
        .connect(&facts.nodes[0].0, facts.nodes[0].1)
        .await?;
    let progress = Progress::new(&job.progress_schema);
    let jobs = progress.jobs(&client).await?;
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
    if jobs.is_empty() {
        println!(
            "no migration recorded in schema {} of the target yet — `ferry migrate -c {}` starts one",
            job.progress_schema,
            args.config.config.display()
        );
        return Ok(ExitCode::SUCCESS);
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
        let (rate, eta) = match (s.first_done, s.last_done) {
            (Some(a), Some(b)) if b > a && s.done > 1 => {
                let per_chunk = (b - a) / (s.done - 1) as f64;
                let rate = s.rows as f64 / (b - a + per_chunk);
                let left = (s.pending + s.leased) as f64 * per_chunk;
                (
                    format!("{rate:.0}"),
                    if finished {
                        "-".to_string()
                    } else {
                        format!("{left:.0}s")
                    },
                )
            }
            _ => ("-".to_string(), "-".to_string()),
        };
        unfinished |= !finished;
        // Measurement runs (`[scan]`, `[replay]`) always start over: nothing to judge.
        let standing = if key.ends_with(']') {
            None
        } else {
            let source_id = match (&session, source.split_once('.')) {
                (Some(session), Some((ks, table))) => {
                    schema::source_table_id(session, ks, table).await?
                }
                _ => None,
            };
            progress.standing(&client, &key, &target, source_id).await?
        };
        let verdict = match &standing {
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
        };
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
    Ok(ExitCode::SUCCESS)
}
