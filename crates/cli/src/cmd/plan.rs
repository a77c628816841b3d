//! `ferry plan`: what a migration would do — chunks, estimated sizes, target DDL — touching
//! nothing.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use ferry_migrate::job;

use super::job::ConfigArgs;

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
}

pub async fn run(args: PlanArgs) -> Result<ExitCode> {
    let loaded = super::job::load(&args.config)?;
    let job = super::job::job(&args.config, &loaded, args.create_tables)?;
    let prepared = job::prepare(&job).await?;
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
    Ok(ExitCode::SUCCESS)
}
