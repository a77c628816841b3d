//! A migration job end to end: connect both sides, check everything that can be checked before
//! a row moves (tables exist, target columns match, no YugabyteDB-only option on PostgreSQL),
//! plan, then run each table through the pipeline.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use scylla::client::session::Session;

use crate::cassandra::{self, CassandraEndpoint};
use crate::pipeline::{self, Counters, Mode, RejectLog, Settings, TableReport};
use crate::plan::{self, Plan};
use crate::progress::{job_key, Progress};
use crate::schema::{self, pg_ident, TableMapping};
use crate::sink::{self, TableWriter, TargetEndpoint, TargetFacts, YbOptions};

/// Which source tables to move, and where.
#[derive(Clone, Debug)]
pub enum TableSelection {
    /// `table.source.*` / `table.target.*`.
    One {
        keyspace: String,
        table: String,
        target_schema: String,
        target_table: String,
    },
    /// Every table of a keyspace (`--keyspace`), same names in `target_schema`.
    Keyspace {
        keyspace: String,
        target_schema: String,
    },
    /// `--tables ks.a,ks.b`, same names in `target_schema`.
    List {
        tables: Vec<(String, String)>,
        target_schema: String,
    },
}

/// Everything a migration needs, validated.
#[derive(Clone, Debug)]
pub struct Job {
    pub source: CassandraEndpoint,
    pub target: TargetEndpoint,
    pub tables: TableSelection,
    /// `table.columnMapping.*`: source column → target column.
    pub renames: HashMap<String, String>,
    /// `table.constantColumns.*`: target column → value.
    pub constants: Vec<(String, String)>,
    /// `table.primaryKey`.
    pub primary_key: Option<Vec<String>>,
    pub create_tables: bool,
    pub yb: YbOptions,
    pub settings: Settings,
    pub split_size_mb: u64,
    /// At least this many chunks per table, so small tables still read in parallel.
    pub min_chunks: usize,
    /// Schema of the progress tables in the target.
    pub progress_schema: String,
    /// Forget stored progress and start over (refused when the target has rows, unless
    /// `truncate`).
    pub fresh: bool,
    pub truncate: bool,
    /// Names this run in the progress table (`migration.runId`).
    pub run_id: String,
    /// Identifies this worker in chunk leases.
    pub owner: String,
}

/// One table, checked and planned.
pub struct PreparedTable {
    pub mapping: TableMapping,
    pub plan: Plan,
    /// The target table must be created first (`--create-tables`).
    pub create: Option<String>,
    pub ddl: String,
}

/// Both sides connected, every table checked and planned; nothing written yet.
pub struct Prepared {
    pub session: Session,
    pub facts: TargetFacts,
    pub tables: Vec<PreparedTable>,
    /// The connection `prepare` read the target with; `run` keeps using it.
    admin: tokio::sync::Mutex<tokio_postgres::Client>,
}

/// Connects, reads schemas, checks targets and plans. Writes nothing.
pub async fn prepare(job: &Job) -> Result<Prepared> {
    // Both sides at once: across a WAN each handshake is several round trips.
    let t0 = std::time::Instant::now();
    let (session, (facts, admin)) = tokio::try_join!(
        cassandra::connect(&job.source),
        sink::discover_connected(&job.target)
    )?;
    tracing::info!(
        ms = t0.elapsed().as_millis() as u64,
        "connected to both sides"
    );
    job.yb.check(&facts)?;
    crate::source::check_routing(&session, &job.source.routing)?;

    let pairs: Vec<(String, String, String, String)> = match &job.tables {
        TableSelection::One {
            keyspace,
            table,
            target_schema,
            target_table,
        } => vec![(
            keyspace.clone(),
            table.clone(),
            target_schema.clone(),
            target_table.clone(),
        )],
        TableSelection::Keyspace {
            keyspace,
            target_schema,
        } => schema::list_tables(&session, keyspace)
            .await?
            .into_iter()
            .map(|t| (keyspace.clone(), t.clone(), target_schema.clone(), t))
            .collect(),
        TableSelection::List {
            tables,
            target_schema,
        } => tables
            .iter()
            .map(|(k, t)| (k.clone(), t.clone(), target_schema.clone(), t.clone()))
            .collect(),
    };

    let constant_names: Vec<String> = job.constants.iter().map(|(n, _)| n.clone()).collect();
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    for (ks, t, tschema, ttable) in pairs {
        // Three independent reads, at once: across a WAN each is a round trip or more.
        let (source, existing, plan) = tokio::try_join!(
            schema::read_source_table(&session, &ks, &t),
            sink::existing_columns(&admin, &tschema, &ttable),
            plan::plan_table(&session, &ks, &t, job.split_size_mb, job.min_chunks),
        )?;
        let mapping = TableMapping::new(
            source,
            &tschema,
            &ttable,
            &job.renames,
            job.primary_key.as_deref(),
        )?;
        // Constant columns a created table gets: timestamps for CURRENT_TIMESTAMP, else text.
        let extra: Vec<(String, String)> = job
            .constants
            .iter()
            .filter(|(n, _)| !mapping.target_columns.iter().any(|t| &t.name == n))
            .map(|(n, v)| {
                let ty = if v.eq_ignore_ascii_case("CURRENT_TIMESTAMP")
                    || v.eq_ignore_ascii_case("CURRENTTIMESTAMP")
                {
                    "timestamp with time zone"
                } else {
                    "text"
                };
                (n.clone(), ty.to_string())
            })
            .collect();
        let ddl = mapping.create_table_ddl_with(facts.kind, &extra);
        let create = match existing {
            Some(cols) => {
                for p in mapping.check_existing(&cols, &constant_names) {
                    problems.push(format!("{tschema}.{ttable}: {p}"));
                }
                None
            }
            None if job.create_tables => Some(ddl.clone()),
            None => {
                problems.push(format!(
                    "target table {tschema}.{ttable} does not exist — rerun with --create-tables, or create it:\n{ddl};"
                ));
                None
            }
        };
        tracing::info!(ms = t0.elapsed().as_millis() as u64, table = %t, "checked and planned");
        tables.push(PreparedTable {
            mapping,
            plan,
            create,
            ddl,
        });
    }
    if !problems.is_empty() {
        bail!(
            "the target does not match the source; nothing was written:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(Prepared {
        session,
        facts,
        tables,
        admin: tokio::sync::Mutex::new(admin),
    })
}

/// Called as each table starts: its plan, its live counters, and how many chunks an earlier run
/// already finished (`None` for a new plan).
pub type OnTableStart<'a> = dyn Fn(&PreparedTable, &Arc<Counters>, Option<u64>) + Sync + 'a;

/// Runs a prepared job: creates missing tables, stores (or finds) each table's plan in the
/// progress tables, and runs the table. `on_start` sees each table's counters as it starts.
pub async fn run(
    job: &Job,
    prepared: &Prepared,
    stop: &AtomicBool,
    on_start: &OnTableStart<'_>,
) -> Result<Vec<TableReport>> {
    let t0 = std::time::Instant::now();
    let admin = prepared.admin.lock().await;
    let progress = Progress::new(&job.progress_schema);
    progress.ensure(&admin).await?;
    let rejects = RejectLog::new(job.settings.reject_file.clone());
    let mut reports = Vec::new();
    for t in &prepared.tables {
        let target = t.mapping.qualified_target();
        if let Some(ddl) = &t.create {
            // Several workers may start at once: one creates, the others find it made. Sent
            // together, the statements run as one transaction that holds the lock to its end.
            admin
                .batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock(hashtext('ferry ddl'));\n\
                     CREATE SCHEMA IF NOT EXISTS {};\n{}",
                    pg_ident(&t.mapping.target_schema),
                    ddl.replacen("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1)
                ))
                .await
                .with_context(|| format!("creating {target}"))?;
        }
        let mut key = job_key(&t.mapping.source.qualified(), &target);
        // Measurement modes keep their own progress and always start over.
        let mut chunks = t.plan.chunks.clone();
        match &job.settings.mode {
            Mode::Migrate => {}
            Mode::ScanOnly | Mode::Capture(_) => {
                key.push_str(" [scan]");
                progress.forget(&admin, &key).await?;
            }
            Mode::Replay(dir) => {
                key.push_str(" [replay]");
                progress.forget(&admin, &key).await?;
                admin.batch_execute(&format!("TRUNCATE {target}")).await?;
                chunks = captured_chunks(dir)?;
            }
        }
        if let Mode::Capture(dir) = &job.settings.mode {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the capture folder {}", dir.display()))?;
        }
        if job.fresh {
            let has_rows = admin
                .query_typed_opt(&format!("SELECT 1 FROM {target} LIMIT 1"), &[])
                .await?
                .is_some();
            if has_rows && !job.truncate {
                bail!(
                    "--fresh refuses to start over: {target} already has rows — add --truncate to empty it first, or drop --fresh to resume"
                );
            }
            if has_rows {
                admin.batch_execute(&format!("TRUNCATE {target}")).await?;
            }
            progress.forget(&admin, &key).await?;
        }
        let resumed = progress
            .store_plan(
                &admin,
                &key,
                &job.run_id,
                &t.mapping.source.qualified(),
                &target,
                &chunks,
            )
            .await?;
        let done_before = if resumed {
            Some(
                progress
                    .status(&admin, &key)
                    .await?
                    .map(|s| s.done)
                    .unwrap_or(0),
            )
        } else {
            None
        };
        let constants = sink::encode_constants(
            &admin,
            &t.mapping.target_schema,
            &t.mapping.target_table,
            &job.constants,
        )
        .await?;
        let names: Vec<String> = job.constants.iter().map(|(n, _)| n.clone()).collect();
        let writer = TableWriter::new(
            &t.mapping,
            &names,
            job.settings.insert_mode,
            job.yb,
            prepared.facts.kind,
        );
        let counters = Arc::new(Counters::default());
        tracing::info!(ms = t0.elapsed().as_millis() as u64, %target, "table ready to copy");
        on_start(t, &counters, done_before);
        let report = pipeline::run_table(
            &prepared.session,
            &t.mapping,
            &t.plan,
            &job.target,
            &prepared.facts,
            &writer,
            constants,
            &job.settings,
            &counters,
            &rejects,
            &progress,
            &key,
            &job.owner,
            stop,
        )
        .await?;
        progress.finish_if_done(&admin, &key).await?;
        reports.push(report);
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok(reports)
}

/// The chunks a capture left in `dir` (`chunk-<id>_<start>_<end>.pgcopy`), as a plan.
fn captured_chunks(dir: &std::path::Path) -> Result<Vec<crate::plan::Chunk>> {
    let mut chunks = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| {
        format!(
            "reading the capture folder {} — run with --capture first",
            dir.display()
        )
    })? {
        let name = entry?.file_name().to_string_lossy().to_string();
        let Some(stem) = name
            .strip_prefix("chunk-")
            .and_then(|n| n.strip_suffix(".pgcopy"))
        else {
            continue;
        };
        let parts: Vec<&str> = stem.split('_').collect();
        if let [id, start, end] = parts[..] {
            if let (Ok(id), Ok(start), Ok(end)) = (id.parse(), start.parse(), end.parse()) {
                chunks.push(crate::plan::Chunk {
                    id,
                    start,
                    end,
                    replica_set: 0,
                    est_partitions: 0,
                    est_bytes: 0,
                });
            }
        }
    }
    if chunks.is_empty() {
        bail!(
            "{} holds no captured chunks — run with --capture {} first",
            dir.display(),
            dir.display()
        );
    }
    chunks.sort_by_key(|c| c.id);
    Ok(chunks)
}
