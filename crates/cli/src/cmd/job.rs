//! From what the user wrote (properties file, `--set`, flags, environment) to a validated
//! [`Job`]: shared by every command that reads a migration config.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use ferry_migrate::cassandra::{CassandraEndpoint, CassandraTls};
use ferry_migrate::config;
use ferry_migrate::config::{self as spec, Loaded};
use ferry_migrate::job::{Job, TableSelection};
use ferry_migrate::pipeline::Settings;
use ferry_migrate::sink::{InsertMode, TargetEndpoint, YbOptions};
use ferry_migrate::source::Routing;
use ferry_migrate::target_tls::TargetTls;
use scylla::statement::Consistency;

/// Flags every config-reading command shares.
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// The migration properties file (the seed system's `migration.properties` works as it is).
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Override any key: `--set key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = config::parse_override)]
    pub set: Vec<(String, String)>,
    /// Migrate every table of this keyspace (instead of `table.source.*`).
    #[arg(long, conflicts_with = "tables")]
    pub keyspace: Option<String>,
    /// Migrate these tables: `ks.a,ks.b` (instead of `table.source.*`).
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Target schema for `--keyspace` / `--tables` (default: `table.target.schema`).
    #[arg(long)]
    pub target_schema: Option<String>,
}

/// Loads and validates the configuration; notices (keys that do not apply) go to stderr once.
pub fn load(args: &ConfigArgs) -> Result<Loaded> {
    let env = |k: &str| std::env::var(k).ok();
    match config::load(&args.config, &args.set, &env) {
        Ok(l) => {
            for n in &l.notices {
                eprintln!("ferry: note: {n}");
            }
            Ok(l)
        }
        Err(errors) => bail!("{errors}"),
    }
}

fn consistency(c: spec::Consistency) -> Consistency {
    use spec::Consistency as C;
    match c {
        C::One => Consistency::One,
        C::Two => Consistency::Two,
        C::Three => Consistency::Three,
        C::Quorum => Consistency::Quorum,
        C::All => Consistency::All,
        C::LocalOne => Consistency::LocalOne,
        C::LocalQuorum => Consistency::LocalQuorum,
        C::EachQuorum => Consistency::EachQuorum,
        C::Serial => Consistency::Serial,
        C::LocalSerial => Consistency::LocalSerial,
    }
}

/// Builds the job: which tables, both endpoints, and the typed settings.
pub fn job(args: &ConfigArgs, loaded: &Loaded, create_tables: bool) -> Result<Job> {
    let s = &loaded.spec;
    let target_schema = args
        .target_schema
        .clone()
        .unwrap_or_else(|| s.table_options.target_schema.clone());
    let tables = if let Some(ks) = &args.keyspace {
        TableSelection::Keyspace {
            keyspace: ks.clone(),
            target_schema,
        }
    } else if !args.tables.is_empty() {
        let mut list = Vec::new();
        for t in &args.tables {
            match t.split_once('.') {
                Some((k, n)) if !k.is_empty() && !n.is_empty() => list.push((k.to_string(), n.to_string())),
                _ => bail!("--tables takes keyspace.table names, e.g. --tables shop.orders,shop.users (got '{t}')"),
            }
        }
        TableSelection::List {
            tables: list,
            target_schema,
        }
    } else if let Some(t) = s.tables.first() {
        TableSelection::One {
            keyspace: t.source_keyspace.clone(),
            table: t.source_table.clone(),
            target_schema: args
                .target_schema
                .clone()
                .unwrap_or_else(|| t.target_schema.clone()),
            target_table: t.target_table.clone(),
        }
    } else {
        bail!("no table to migrate: set table.source.keyspace and table.source.table, or pass --keyspace or --tables");
    };
    // Parallel chunks: the parallelism setting is where ferry starts; the connections the target
    // may get (yugabyte.maxPoolSize per listed host) and the reads in flight Cassandra may get
    // (cassandra.concurrentReads: each worker keeps one page read in flight) bound it. With
    // adaptive concurrency ferry moves between a quarter of the start and that bound (at most
    // 48, or the start if higher), following the measured rate.
    let bound = (s.target.hosts.len().max(1) * s.target.max_connections_per_host.max(1) as usize)
        .min(s.source.concurrent_reads.max(1) as usize);
    let workers = (s.run.max_parallel_chunks.max(1) as usize).min(bound);
    let adaptive = s
        .run
        .adaptive_concurrency
        .then(|| ((workers / 4).max(1), bound.min(workers.max(48))))
        .filter(|(min, max)| min < max);
    let split_size_mb = match s.source.split_size {
        spec::SplitSize::Auto { start_mb } => u64::from(start_mb),
        spec::SplitSize::Fixed { mb } => u64::from(mb),
    };
    let min_chunks = match s.source.split_size {
        // Enough chunks that every worker leases several: retries stay short, the tail short.
        spec::SplitSize::Auto { .. } => (workers * 8).max(64),
        spec::SplitSize::Fixed { .. } => 1,
    };
    let job_name = match &tables {
        TableSelection::One {
            keyspace, table, ..
        } => format!("{keyspace}.{table}"),
        TableSelection::Keyspace { keyspace, .. } => keyspace.clone(),
        TableSelection::List { tables, .. } => tables
            .iter()
            .map(|(k, t)| format!("{k}.{t}"))
            .collect::<Vec<_>>()
            .join(","),
    };
    let run_id = s.run.run_id.clone().unwrap_or_else(|| job_name.clone());
    let reject_file = s.run.reject_file.clone().unwrap_or_else(|| {
        s.run
            .runs_dir
            .join(format!("{}.rejects.jsonl", sanitize(&run_id)))
    });
    let routing = Routing {
        local_dc: s.source.local_dc.clone(),
        remote_dc_reads: s.source.remote_dc_reads,
    };
    Ok(Job {
        source: CassandraEndpoint {
            contact_points: s
                .source
                .contact_points
                .iter()
                .map(|h| h.to_string())
                .collect(),
            username: s.source.username.clone(),
            password: s.source.password.as_ref().map(|p| p.expose().to_string()),
            connect_timeout_ms: s.source.connect_timeout_ms,
            connections_per_host: s.source.connections_per_node.max(1) as usize,
            routing: routing.clone(),
            compression: match s.source.compression {
                spec::CqlCompression::None => None,
                spec::CqlCompression::Lz4 => Some(scylla::client::Compression::Lz4),
                spec::CqlCompression::Snappy => Some(scylla::client::Compression::Snappy),
            },
            tls: s.source.tls.as_ref().map(|t| CassandraTls {
                trust_store: t.trust_store.clone(),
                trust_store_password: t
                    .trust_store_password
                    .as_ref()
                    .map(|p| p.expose().to_string()),
                key_store: t.key_store.clone(),
                key_store_password: t
                    .key_store_password
                    .as_ref()
                    .map(|p| p.expose().to_string()),
            }),
        },
        target: TargetEndpoint {
            hosts: s
                .target
                .hosts
                .iter()
                .map(|h| (h.host.clone(), h.port))
                .collect(),
            database: s.target.database.clone(),
            username: s.target.username.clone(),
            password: s.target.password.as_ref().map(|p| p.expose().to_string()),
            connect_timeout_ms: s.target.connect_timeout_ms,
            socket_timeout: s
                .target
                .socket_timeout_secs
                .map(std::time::Duration::from_secs),
            load_balance: s.target.load_balance_hosts,
            tls: TargetTls::from_spec(&s.target.tls)?,
        },
        tables,
        renames: s.table_options.column_mapping.clone().into_iter().collect(),
        constants: s
            .table_options
            .constant_columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    match &c.value {
                        spec::ConstantValue::Text(t) => t.clone(),
                        spec::ConstantValue::CurrentTimestamp => "CURRENT_TIMESTAMP".to_string(),
                    },
                )
            })
            .collect(),
        primary_key: s.table_options.primary_key.clone(),
        create_tables,
        yb: YbOptions {
            copy_replace: s.target.copy_replace,
            disable_transactional_writes: s.target.disable_transactional_writes,
            rows_per_transaction: None,
        },
        settings: Settings {
            fetch_size_rows: s.source.fetch_size_rows.min(i32::MAX as u32) as i32,
            consistency: consistency(s.source.consistency),
            read_timeout_ms: s.source.read_timeout_ms,
            reads_per_sec: s.source.max_rows_per_sec.unwrap_or(0),
            retry_count: s.source.retry_count,
            retry_delay_min: std::time::Duration::from_millis(s.source.retry_delay_min_ms),
            retry_delay_max: std::time::Duration::from_millis(s.source.retry_delay_max_ms),
            routing,
            batch_rows: s.batch_rows().max(1) as usize,
            writers: workers,
            adaptive,
            insert_mode: match s.target.insert_mode {
                spec::InsertMode::Copy => InsertMode::Copy,
                spec::InsertMode::Insert => InsertMode::Insert,
            },
            reject_file,
            lease: std::time::Duration::from_secs(s.run.lease_secs),
            outage_deadline: std::time::Duration::from_secs(s.run.outage_deadline_secs),
            source_latency_target_ms: s.run.source_latency_target_ms,
            mode: ferry_migrate::pipeline::Mode::Migrate,
            // `ferry.pageMemoryMb` (48 MiB): 16 workers at the default fetch size of 5,000 rows
            // fit it at ~200 B a row; the pipeline takes less of it for a nearby source.
            page_budget_bytes: s.run.page_memory_bytes,
        },
        split_size_mb,
        min_chunks,
        measure_chunks: matches!(s.source.split_size, spec::SplitSize::Auto { .. }),
        large_partition_rows: s.run.large_partition_rows,
        progress_schema: s.run.checkpoint.progress_schema.clone(),
        fresh: false,
        truncate: false,
        exact_counts: false,
        run_id,
        owner: format!(
            "{}:{}",
            std::fs::read_to_string("/etc/hostname")
                .unwrap_or_default()
                .trim(),
            std::process::id()
        ),
    })
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_migrate::config::registry::{Dflt, Disposition, Kind, KEYS};

    /// A valid value for `kind` other than its default.
    fn other_value(kind: Kind, default: Dflt) -> String {
        match kind {
            Kind::Bool => match default {
                Dflt::Bool(true) => "false".into(),
                _ => "true".into(),
            },
            Kind::Int { min, max, .. } => {
                let v = match default {
                    Dflt::Int(d) if d == max => min.max(1).min(max),
                    Dflt::Int(d) => (d.max(min) + 1).min(max).max(min),
                    _ => min.max(1).min(max),
                };
                // The runs' own bounds cap some values: pick one in the middle when possible.
                if v == min && max > min + 2 {
                    (min + 2).to_string()
                } else {
                    v.to_string()
                }
            }
            Kind::Float { min, max } => ((min + max) / 3.0).to_string(),
            Kind::Enum(words) => {
                let d = match default {
                    Dflt::Str(s) => s.to_ascii_uppercase(),
                    _ => String::new(),
                };
                words
                    .iter()
                    .find(|w| w.to_ascii_uppercase() != d)
                    .unwrap_or(&words[0])
                    .to_string()
            }
            Kind::Hosts => "10.0.0.9:7777".into(),
            Kind::Name => "walk_name".into(),
            Kind::NameList => "walk_a,walk_b".into(),
            Kind::Path => "/tmp/ferry-walk/x.pem".into(),
            Kind::Secret => "walk-secret".into(),
            Kind::Text => "walk text".into(),
            Kind::Regex => ";".into(),
            Kind::SparkDuration => "7s".into(),
            Kind::SparkSize => "3g".into(),
        }
    }

    fn job_for(path: &std::path::Path, set: Vec<(String, String)>) -> Result<String> {
        let args = ConfigArgs {
            config: path.to_path_buf(),
            set,
            keyspace: None,
            tables: vec![],
            target_schema: None,
        };
        let env = |_: &str| None;
        let loaded =
            config::load(&args.config, &args.set, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(format!("{:?}", job(&args, &loaded, false)?))
    }

    /// Every key the registry marks used (or mapped onto a ferry setting) changes the job ferry
    /// builds (its settings or either side's connection settings); a key that changes nothing
    /// must say so in the registry (no effect), and docs/configuration.md, generated from it,
    /// says so too (issue 17).
    #[test]
    fn every_key_marked_used_changes_the_job() {
        let dir = std::env::temp_dir().join(format!("ferry-walk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("base.properties");
        std::fs::write(
            &path,
            "cassandra.host=127.0.0.1\ncassandra.username=cassandra\nyugabyte.host=127.0.0.1\n\
             yugabyte.username=postgres\ntable.source.keyspace=ks\ntable.source.table=t\n",
        )
        .unwrap();
        let base = job_for(&path, vec![]).expect("the base config loads");
        let mut unchanged = Vec::new();
        for k in KEYS.iter().filter(|k| {
            matches!(
                k.disposition,
                Disposition::Used | Disposition::MappedOnto(_)
            )
        }) {
            if k.prefix().is_some() || READ_OUTSIDE_THE_JOB.contains(&k.key) {
                continue;
            }
            let value = VALUES
                .iter()
                .find(|(key, _)| *key == k.key)
                .map_or_else(|| other_value(k.kind, k.default), |(_, v)| v.to_string());
            let with: Vec<(String, String)> = COMPANIONS
                .iter()
                .filter(|(key, _)| *key == k.key)
                .flat_map(|(_, c)| c.iter())
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let before = if with.is_empty() {
                base.clone()
            } else {
                job_for(&path, with.clone()).expect("the companions load")
            };
            let mut set = with;
            set.push((k.key.to_string(), value.clone()));
            match job_for(&path, set) {
                Ok(j) if j == before => unchanged.push(format!("{}={value}", k.key)),
                Ok(_) => {}
                // The job builder opened the file the key names: it reads the key.
                Err(e) if format!("{e:#}").contains(&format!("check {}", k.key)) => {}
                Err(e) => unchanged.push(format!("{}={value}: {e:#}", k.key)),
            }
        }
        assert!(
            unchanged.is_empty(),
            "keys marked used that change nothing in the job:\n{}",
            unchanged.join("\n")
        );
    }

    /// Keys marked used that the commands read from the spec itself, not through the job.
    const READ_OUTSIDE_THE_JOB: &[&str] = &[
        // `ferry migrate` validates at its end when both are true (cmd/migrate.rs).
        "table.validate",
        "migration.validation.enabled",
        // `ferry validate`'s mode (cmd/validate.rs).
        "migration.validation.sampleSize",
        // A secret is `***` in the job's Debug; its use is the TLS tests' (tests/tls.rs: an
        // encrypted client key opens with it).
        "yugabyte.sslpassword",
        // `yugabyte.ssl=true` means verify-full, which needs a CA file to build the job; the TLS
        // tests use it with the test bed's CA (tests/tls.rs).
        "yugabyte.ssl",
    ];

    /// Values that show an effect where the generic choice would not.
    const VALUES: &[(&str, &str)] = &[
        // The workers' bound: below the default parallelism of 16.
        ("cassandra.concurrentReads", "2"),
        ("table.constantColumns.splitRegex", "#"),
        ("table.constantColumns.names", "b"),
    ];

    /// Keys that only act beside others: the job with the companions alone is the baseline.
    const COMPANIONS: &[(&str, &[(&str, &str)])] = &[
        // Task slots count only when both are set.
        ("spark.executor.instances", &[("spark.executor.cores", "2")]),
        ("spark.executor.cores", &[("spark.executor.instances", "2")]),
        (
            "cassandra.connection.ssl.enabled",
            &[("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem")],
        ),
        (
            "cassandra.connection.ssl.trustStore.path",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/other.pem"),
            ],
        ),
        (
            "cassandra.connection.ssl.trustStore.password",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem"),
            ],
        ),
        (
            "cassandra.connection.ssl.keyStore.path",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem"),
            ],
        ),
        (
            "cassandra.connection.ssl.keyStore.password",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem"),
                ("cassandra.connection.ssl.keyStore.path", "/tmp/client.p12"),
            ],
        ),
        (
            "table.constantColumns.names",
            &[
                ("table.constantColumns.names", "a"),
                ("table.constantColumns.values", "x"),
            ],
        ),
        (
            "table.constantColumns.values",
            &[
                ("table.constantColumns.names", "a"),
                ("table.constantColumns.values", "x"),
            ],
        ),
        (
            "table.constantColumns.splitRegex",
            &[
                ("table.constantColumns.names", "a#b"),
                ("table.constantColumns.values", "x#y"),
            ],
        ),
    ];
}
