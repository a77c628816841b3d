//! `ferry status`: how far a migration got, from the progress tables in the target — chunks
//! done, leased and pending, rows, rate and ETA. Works while workers run, or after a stop.

use anyhow::Result;
use clap::Args;
use ferry_migrate::progress::Progress;
use ferry_migrate::sink;

use super::job::ConfigArgs;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
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
