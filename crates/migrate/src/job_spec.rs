//! The job, built from the validated configuration: which tables, both endpoints, and the
//! typed settings every run reads. The CLI parses flags and passes the table selection flags in
//! [`TableFlags`]; everything a configuration key decides is decided here.

use anyhow::{bail, Result};
use scylla::statement::Consistency;

use crate::cassandra::{CassandraEndpoint, CassandraTls};
use crate::config::{self as spec, Loaded};
use crate::job::{Job, TableSelection};
use crate::pipeline::Settings;
use crate::sink::{InsertMode, TargetEndpoint, YbOptions};
use crate::source::Routing;
use crate::target_tls::TargetTls;

/// The table selection flags (`--keyspace`, `--tables`, `--target-schema`), which win over the
/// configuration's `table.*` keys.
#[derive(Clone, Debug, Default)]
pub struct TableFlags {
    pub keyspace: Option<String>,
    /// `keyspace.table` names.
    pub tables: Vec<String>,
    pub target_schema: Option<String>,
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

impl Job {
    /// Builds the job: which tables, both endpoints, and the typed settings.
    pub fn from_spec(args: &TableFlags, loaded: &Loaded, create_tables: bool) -> Result<Job> {
        from_spec(args, loaded, create_tables)
    }
}

fn from_spec(args: &TableFlags, loaded: &Loaded, create_tables: bool) -> Result<Job> {
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
    // 48, or the start if higher), following the measured rate. Under a source latency target
    // the floor is one chunk: a busy production source may need ferry to read that gently.
    let bound = (s.target.hosts.len().max(1) * s.target.max_connections_per_host.max(1) as usize)
        .min(s.source.concurrent_reads.max(1) as usize);
    let workers = (s.run.max_parallel_chunks.max(1) as usize).min(bound);
    let adaptive = s
        .run
        .adaptive_concurrency
        .then(|| adaptive_bounds(workers, bound, s.run.source_latency_target_ms.is_some()))
        .flatten();
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
            // yugabyte.copyReplace: rows already present are replaced, on any target.
            insert_mode: match s.target.insert_mode {
                spec::InsertMode::Copy if s.target.copy_replace => InsertMode::Upsert,
                spec::InsertMode::Copy => InsertMode::Copy,
                spec::InsertMode::Insert => InsertMode::Insert,
            },
            row_times: s.table_options.row_times.clone(),
            since_us: None,
            reject_file,
            lease: std::time::Duration::from_secs(s.run.lease_secs),
            outage_deadline: std::time::Duration::from_secs(s.run.outage_deadline_secs),
            source_latency_target_ms: s.run.source_latency_target_ms,
            mode: crate::pipeline::Mode::Migrate,
            // `ferry.pageMemoryMb` (128 MiB): across a WAN a keyspace run's 36-48 workers get
            // pages of 2,048 rows at ~200 B a row (1,024 from 48 MiB: twice the round trips a
            // chunk); the pipeline takes 16 MiB of it for a source on loopback.
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
        since: None,
        clock_skew_secs: s.table_options.clock_skew_secs,
        owner: format!(
            "{}:{}",
            std::fs::read_to_string("/etc/hostname")
                .unwrap_or_default()
                .trim(),
            std::process::id()
        ),
    })
}

/// The adaptive controller's `(floor, ceiling)` for `workers` to start, `bound` at most: a
/// quarter of the start (one chunk under a source latency target) up to 48, or the start if
/// higher. `None` when there is no room to move.
fn adaptive_bounds(workers: usize, bound: usize, latency_target: bool) -> Option<(usize, usize)> {
    let floor = if latency_target {
        1
    } else {
        (workers / 4).max(1)
    };
    let ceiling = bound.min(workers.max(48));
    (floor < ceiling).then_some((floor, ceiling))
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
    use super::adaptive_bounds;

    #[test]
    fn a_latency_target_lets_the_controller_go_down_to_one_chunk() {
        assert_eq!(adaptive_bounds(16, 96, false), Some((4, 48)));
        assert_eq!(adaptive_bounds(16, 96, true), Some((1, 48)));
        assert_eq!(adaptive_bounds(64, 96, false), Some((16, 64)));
        assert_eq!(adaptive_bounds(16, 20, true), Some((1, 20)));
        assert_eq!(adaptive_bounds(1, 1, true), None);
    }
}
