//! `ferry gen`: the sample table every test, benchmark and README example starts from.

use ferry_migrate::config::Secret;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use ferry_migrate::cassandra::{self, CassandraEndpoint, CassandraTls};
use ferry_migrate::gen::{self, GenSpec};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::output;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Cassandra contact points, host:port, comma separated.
    #[arg(long, default_value = "127.0.0.1:9042", value_delimiter = ',')]
    pub cassandra: Vec<String>,
    /// Cassandra user (the test bed's default superuser).
    #[arg(long, default_value = "cassandra")]
    pub user: String,
    /// Cassandra password; FERRY_CASSANDRA_PASSWORD wins over the default.
    #[arg(
        long,
        env = "FERRY_CASSANDRA_PASSWORD",
        default_value = "cassandra",
        hide_env_values = true
    )]
    pub password: Secret,
    #[arg(long, default_value = "ferry_sample")]
    pub keyspace: String,
    #[arg(long, default_value = "sample")]
    pub table: String,
    /// Number of rows.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    /// Seed: the same seed gives the same rows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rows per partition.
    #[arg(long, default_value_t = 1)]
    pub partition_rows: u64,
    /// Wide-partition variant: 10 000 rows per partition.
    #[arg(long, conflicts_with = "partition_rows")]
    pub wide: bool,
    /// Insert requests in flight.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Drop and recreate the table first.
    #[arg(long)]
    pub recreate: bool,
    /// Columns: `full` (every CQL type, ~540 B a row) or `bench` (a 14-column subset, ~200 B a
    /// row, for the migration benchmark).
    #[arg(long, default_value = "full", value_parser = ["full", "bench"])]
    pub shape: String,
    /// Replicas per data centre when the keyspace is created, e.g. `dc1:2,dc2:1`
    /// (NetworkTopologyStrategy); default: SimpleStrategy with one replica.
    #[arg(long, value_delimiter = ',', value_parser = parse_replication)]
    pub replication: Vec<(String, u32)>,
    /// Connect over TLS, trusting the CA certificate(s) in this file (PEM or PKCS#12 without a
    /// password), as `cassandra.connection.ssl.trustStore.path` does.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Print the outcome as one JSON object on stdout (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

fn parse_replication(s: &str) -> Result<(String, u32), String> {
    match s.split_once(':') {
        Some((dc, n)) if !dc.is_empty() => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| (dc.to_string(), n))
            .ok_or_else(|| format!("'{s}': the replica count must be a whole number above 0")),
        _ => Err(format!("'{s}': expected DC:REPLICAS, e.g. dc1:2")),
    }
}

pub async fn run(args: GenArgs) -> Result<Exit> {
    let endpoint = CassandraEndpoint {
        contact_points: args.cassandra.clone(),
        username: Some(args.user.clone()),
        password: Some(args.password.expose().to_string()),
        tls: args.tls_ca.clone().map(|ca| CassandraTls {
            trust_store: ca,
            trust_store_password: None,
            key_store: None,
            key_store_password: None,
        }),
        ..CassandraEndpoint::testbed()
    };
    let session = cassandra::connect(&endpoint).await?;
    let spec = GenSpec {
        keyspace: args.keyspace,
        table: args.table,
        rows: args.rows,
        seed: args.seed,
        partition_rows: if args.wide {
            10_000
        } else {
            args.partition_rows
        },
        concurrency: args.concurrency,
        recreate: args.recreate,
        shape: if args.shape == "bench" {
            gen::Shape::Bench
        } else {
            gen::Shape::Full
        },
        replication: args.replication,
    };
    let bar = ProgressBar::new(spec.rows);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:40.cyan/blue}] {human_pos}/{human_len} rows {per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}.{}", spec.keyspace, spec.table));
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    let report = gen::generate(&session, &spec, &|n| bar.inc(n)).await;
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        output::print_json(
            "gen",
            &json!({
                "keyspace": spec.keyspace,
                "table": spec.table,
                "rows": report.rows,
                "partition_rows": spec.partition_rows,
                "counter_table": format!("{}_counters", spec.table),
                "counter_rows": report.counter_rows,
                "seed": spec.seed,
                "seconds": report.elapsed.as_secs_f64(),
                "rows_per_sec": report.rows_per_sec(),
            }),
        )?;
        return Ok(Exit::Success);
    }
    println!(
        "wrote {} rows to {}.{} ({} rows per partition) and {} counter rows to {}.{}_counters in {:.1}s: {:.0} rows/s",
        report.rows,
        spec.keyspace,
        spec.table,
        spec.partition_rows,
        report.counter_rows,
        spec.keyspace,
        spec.table,
        report.elapsed.as_secs_f64(),
        report.rows_per_sec()
    );
    Ok(Exit::Success)
}
