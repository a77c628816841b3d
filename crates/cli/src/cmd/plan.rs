//! `ferry plan`: what a migration would do — chunks, estimated sizes, target DDL — touching
//! nothing.

use anyhow::Result;
use clap::Args;
use ferry_migrate::job::{self, Job, Prepared};
use serde_json::json;

use super::job::ConfigArgs;
use super::output;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Plan as if --create-tables were given (missing target tables are shown as DDL).
    #[arg(long)]
    pub create_tables: bool,
    /// Print every chunk, not only the first and last few.
    #[arg(long)]
    pub all_chunks: bool,
    /// Print the plan as one JSON object on stdout, every chunk included (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: PlanArgs) -> Result<Exit> {
    let loaded = super::job::load(&args.config)?;
    let job = super::job::job(&args.config, &loaded, args.create_tables)?;
    let prepared = job::prepare(&job).await?;
    if args.json {
        output::print_json("plan", &plan_json(&job, &prepared))?;
        return Ok(Exit::Success);
    }
    println!(
        "target: {} — writing through {} node endpoint(s): {}",
        prepared.facts.version.split(" on ").next().unwrap_or(""),
        prepared.facts.nodes.len(),
        prepared
            .facts
            .nodes
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "workers: {}, fetch size: {} rows, batch: {} rows, consistency: {:?}",
        job.settings.writers,
        job.settings.fetch_size_rows,
        job.settings.batch_rows,
        job.settings.consistency
    );
    for t in &prepared.tables {
        let p = &t.plan;
        println!();
        println!(
            "{} → {}",
            t.mapping.source.qualified(),
            t.mapping.qualified_target()
        );
        if p.estimated {
            println!(
                "  estimated: {} partitions, {:.1} MB (system.size_estimates)",
                p.est_partitions,
                p.est_bytes as f64 / 1e6
            );
        } else {
            println!("  estimated: unknown (system.size_estimates has nothing for this table yet)");
        }
        if let Some(rows) = p.sampled_rows {
            println!("  rows: about {rows} (one page of partition tokens, for chunk sizing)");
        }
        println!(
            "  chunks: {} over {} replica set(s)",
            p.chunks.len(),
            p.replica_sets.len()
        );
        for l in &p.large_partitions {
            println!("  {}", l.describe());
        }
        println!(
            "  {:>6} {:>21} {:>21} {:>12} {:>10}",
            "chunk", "start (excl.)", "end (incl.)", "partitions", "MB"
        );
        let show: Vec<_> = if args.all_chunks || p.chunks.len() <= 10 {
            p.chunks.iter().collect()
        } else {
            p.chunks
                .iter()
                .take(5)
                .chain(p.chunks.iter().skip(p.chunks.len() - 5))
                .collect()
        };
        for (i, c) in show.iter().enumerate() {
            if !args.all_chunks && p.chunks.len() > 10 && i == 5 {
                println!("  {:>6}", "…");
            }
            println!(
                "  {:>6} {:>21} {:>21} {:>12} {:>10.2}",
                c.id,
                c.start,
                c.end,
                c.est_partitions,
                c.est_bytes as f64 / 1e6
            );
        }
        match &t.create {
            Some(ddl) => println!("  target table is missing; --create-tables would run:\n{ddl};"),
            None => println!(
                "  target table exists and matches; DDL for reference:\n{};",
                t.ddl
            ),
        }
    }
    Ok(Exit::Success)
}

/// The plan as `--json` shows it: the target, the settings, and per table every chunk.
fn plan_json(job: &Job, prepared: &Prepared) -> serde_json::Value {
    json!({
        "target": {
            "version": prepared.facts.version,
            "nodes": prepared.facts.nodes.iter().map(|(h, p)| format!("{h}:{p}")).collect::<Vec<_>>(),
        },
        "settings": {
            "workers": job.settings.writers,
            "fetch_size_rows": job.settings.fetch_size_rows,
            "batch_rows": job.settings.batch_rows,
            "consistency": format!("{:?}", job.settings.consistency),
        },
        "tables": prepared.tables.iter().map(|t| {
            let p = &t.plan;
            json!({
                "source": t.mapping.source.qualified(),
                "target": t.mapping.qualified_target(),
                "estimated": p.estimated,
                "est_partitions": p.est_partitions,
                "est_bytes": p.est_bytes,
                "replica_sets": p.replica_sets.len(),
                "large_partitions": p.large_partitions.iter().map(super::output::large_partition_json).collect::<Vec<_>>(),
                "chunks": p.chunks.iter().map(|c| json!({
                    "id": c.id,
                    "start_exclusive": c.start,
                    "end_inclusive": c.end,
                    "est_partitions": c.est_partitions,
                    "est_bytes": c.est_bytes,
                    "partition_piece": c.clustering.is_some(),
                })).collect::<Vec<_>>(),
                "target_exists": t.create.is_none(),
                "ddl": t.create.as_ref().unwrap_or(&t.ddl),
            })
        }).collect::<Vec<_>>(),
    })
}
