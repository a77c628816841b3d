//! The `ferry` binary: flags, commands, output and exit codes. Only this crate prints or picks
//! an exit code; the engine crates return values and errors.

mod cmd;
mod exit;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use exit::Exit;

/// ferry moves Cassandra tables into YugabyteDB (YSQL) / PostgreSQL, and measures every claim it
/// makes about speed.
#[derive(Parser)]
#[command(name = "ferry", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a sample table with the full CQL type mix in Cassandra and fill it with
    /// deterministic rows.
    Gen(cmd::gen::GenArgs),
    /// Copy Cassandra tables into YugabyteDB/PostgreSQL (resumable: rerun the same command).
    Migrate(cmd::migrate::MigrateArgs),
    /// Show what a migration would do: chunks, estimated sizes, target DDL. Touches nothing.
    Plan(cmd::plan::PlanArgs),
    /// Show how far a migration got: chunks done/leased/pending, rows, rate, ETA.
    Status(cmd::status::StatusArgs),
    /// Prove the target equals the source: counts and digests per key-hash bucket, then the
    /// rows and columns that differ. Exit code 0 only when equal, 1 when they differ.
    Validate(cmd::validate::ValidateArgs),
    /// Measure one service (Kafka, PostgreSQL/YugabyteDB, Cassandra, Trino, Redis, Ray) into a run record.
    Bench(cmd::bench::BenchArgs),
    /// Run a suite of probes (TOML) into one baseline record, checking its expectations.
    Baseline(cmd::baseline::BaselineArgs),
    /// Compare two run records metric by metric, with significance; optionally gate on an
    /// improvement (exit code 1 when it falls short).
    Compare(cmd::compare::CompareArgs),
    /// Write the performance report (Markdown and self-contained HTML) from run records.
    Report(cmd::report::ReportArgs),
    /// Measure both sides (DNS, connect, round trips, one stream's throughput, server facts),
    /// check the configuration against the measurements, and recommend settings.
    /// Exit code 1 when a check fails.
    Diagnose(cmd::diagnose::DiagnoseArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(cmd::completions::CompletionsArgs),
    /// Print the man page (ferry.1) on stdout, or write every page into --dir.
    Man(cmd::completions::ManArgs),
}

/// The whole command line as clap sees it, with the exit-code table after the help. Shared by
/// parsing, `ferry completions` and `ferry man`, so all three describe the same flags.
pub fn cli_command() -> clap::Command {
    Cli::command().after_help(exit::help_table())
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&cli_command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("off,ferry_migrate=warn,ferry_cli=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: error: cannot start the async runtime: {e}");
            return Exit::BadInput.into();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Gen(args) => cmd::gen::run(args).await,
            Command::Migrate(args) => cmd::migrate::run(args).await,
            Command::Plan(args) => cmd::plan::run(args).await,
            Command::Status(args) => cmd::status::run(args).await,
            Command::Validate(args) => cmd::validate::run(args).await,
            Command::Bench(args) => cmd::bench::run(args).await,
            Command::Baseline(args) => cmd::baseline::run(args).await,
            Command::Compare(args) => cmd::compare::run(args).await,
            Command::Report(args) => cmd::report::run(args).await,
            Command::Diagnose(args) => cmd::diagnose::run(args).await,
            Command::Completions(args) => cmd::completions::completions(args),
            Command::Man(args) => cmd::completions::man(args),
        }
    });
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            // One line: the chain joined with ": " (a side's error names the side, node and
            // cause itself).
            eprintln!("ferry: error: {e:#}");
            Exit::of_error(&e).into()
        }
    }
}
