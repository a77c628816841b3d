//! A migration job end to end: connect both sides, check everything that can be checked before
//! a row moves (tables exist, target columns match, no YugabyteDB-only option on PostgreSQL),
//! plan, then run each table through the pipeline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::cluster::metadata::Strategy;

use crate::adapt;
use crate::budget::Budget;
use crate::cassandra::{self, CassandraEndpoint};
use crate::pipeline::{self, Counters, Mode, Settings, TableReport};
use crate::plan::{self, Plan};
use crate::progress::{self as progress, job_key, Bound, PlanToStore, Progress, Verdict};
use crate::retry::Admin;
use crate::schema::{self, pg_ident, TableMapping};
use crate::sink::{self, TableWriter, TargetEndpoint, TargetFacts, YbOptions};
use crate::source;

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
    /// At least this many chunks per table, so small tables still read in parallel; with
    /// `measure_chunks`, only when the table's sample cannot be read.
    pub min_chunks: usize,
    /// Size each table's chunk count from its sampled rows and the measured round trips
    /// (`cassandra.inputSplitSizeMb.autoDetermine`, on by default).
    pub measure_chunks: bool,
    /// Partitions with at least this many rows are split into clustering-key ranges
    /// (`ferry.largePartitionRows`; 0 = never; see [`crate::partition_split`]).
    pub large_partition_rows: u64,
    /// Schema of the progress tables in the target.
    pub progress_schema: String,
    /// Forget stored progress and start over (refused when the target has rows, unless
    /// `truncate`).
    pub fresh: bool,
    pub truncate: bool,
    /// Count the target's rows exactly when checking a resume (`--validate`); otherwise the
    /// statistics' estimate is used.
    pub exact_counts: bool,
    /// Names this run in the progress table (`migration.runId`).
    pub run_id: String,
    /// Identifies this worker in chunk leases.
    pub owner: String,
    /// A catch-up pass (`ferry migrate --since`): rows written since then, as upserts.
    pub since: Option<Since>,
    /// `ferry.clockSkewSecs`: a catch-up also takes rows written this long before its time.
    pub clock_skew_secs: u64,
}

/// Where a catch-up pass starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// This time, in microseconds since the Unix epoch.
    At(i64),
    /// When the table's previous completed pass started (the progress tables know).
    Last,
}

impl Since {
    /// `last`, or an RFC 3339 time (`2026-12-02T21:00:00Z`, `2026-12-02 21:00:00+01:00`); a
    /// time later than now is refused.
    pub fn parse(text: &str) -> Result<Since> {
        if text.eq_ignore_ascii_case("last") {
            return Ok(Since::Last);
        }
        let t = chrono::DateTime::parse_from_rfc3339(text)
            .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
            .map_err(|_| {
                anyhow::anyhow!(
                    "--since '{text}' is not a time — give an RFC 3339 time such as 2026-12-02T21:00:00Z, or 'last' for the start of the previous completed pass"
                )
            })?;
        let us = t.timestamp_micros();
        let now = chrono::Utc::now().timestamp_micros();
        if us > now {
            bail!(
                "--since {text} is in the future (now is {}) — give the time the previous pass started, or 'last'",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        Ok(Since::At(us))
    }
}

/// A time in microseconds since the Unix epoch, as RFC 3339 (UTC, microseconds).
pub fn rfc3339_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| us.to_string())
}

/// One table, checked and planned.
pub struct PreparedTable {
    pub mapping: TableMapping,
    pub plan: Plan,
    /// The target table must be created first (`--create-tables`).
    pub create: Option<String>,
    pub ddl: String,
    /// Cassandra's id of the source table, bound to the stored plan.
    pub source_id: Option<String>,
    /// The target DDL and column mapping, bound to the stored plan.
    pub binding: String,
    /// A catch-up pass: its time (µs since the Unix epoch, before the clock-skew margin).
    pub since_us: Option<i64>,
}

/// Both sides connected, every table checked and planned; nothing written yet.
pub struct Prepared {
    pub session: Session,
    pub facts: TargetFacts,
    pub tables: Vec<PreparedTable>,
    /// The run's own target connection, which `prepare` read the target with and `run` keeps
    /// using (plan storage, done marks, the reject export); it reconnects after a fault.
    admin: Admin,
    /// Options that have no effect on this target, for the user to see.
    pub notes: Vec<String>,
    /// The source's round trip, when chunk sizing measured it: where the run's adaptive
    /// controller starts ([`adapt::start_level`]).
    pub source_rtt: Option<std::time::Duration>,
    /// Target connections opened while the tables were checked ([`prepare_to_copy`]), for
    /// `run` to take.
    ahead: std::sync::Mutex<Option<Ahead>>,
    /// The progress tables were there, as `run` needs them, when the tables were checked
    /// ([`Progress::is_current`]): `run` does not create them first.
    progress_current: bool,
    /// The source's frame limit, read while the tables were checked ([`prepare_to_copy`]).
    frame_bytes: Option<u64>,
}

/// The connections a run starts with, opened while `prepare` checks the
/// tables: across a WAN a connection is several round trips, and the checks take as long.
#[derive(Default)]
struct Ahead {
    /// For binding the tables' plans beside the admin connection.
    binders: Option<Opening>,
    /// For the first workers ([`pipeline::warm_connections`]).
    workers: Option<Opening>,
}

/// Connections being opened in a task of their own, so that `prepare` does not wait for them
/// (a connection can take longer than one table's checks); `run` takes them when it needs
/// them. Dropped unused (a refused run), the task is aborted and what it opened is closed.
struct Opening {
    n: usize,
    task: Option<tokio::task::JoinHandle<Vec<pipeline::OpenedConn>>>,
}

impl Opening {
    fn start(target: &sink::TargetEndpoint, facts: &TargetFacts, first: usize, n: usize) -> Self {
        let (target, facts) = (target.clone(), facts.clone());
        Opening {
            n,
            task: Some(tokio::spawn(async move {
                pipeline::open_connections(&target, &facts, first, n).await
            })),
        }
    }

    async fn opened(mut self) -> Vec<pipeline::OpenedConn> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Prepared {
    /// How often the run's own target connection was opened again after a fault, and the
    /// longest outage it rode through.
    pub fn admin_faults(&self) -> crate::retry::Recovered {
        self.admin.recovered()
    }
}

/// Connects, reads schemas, checks targets and plans. Writes nothing.
pub async fn prepare(job: &Job) -> Result<Prepared> {
    prepare_with(job, false).await
}

/// [`prepare`] for [`run`]: the target connections the run starts with (its binders, when it
/// has several tables, and its first workers') are opened while the tables are checked. Connecting
/// writes nothing; a refused run closes them unused.
pub async fn prepare_to_copy(job: &Job) -> Result<Prepared> {
    prepare_with(job, true).await
}

async fn prepare_with(job: &Job, to_copy: bool) -> Result<Prepared> {
    // Both sides at once: across a WAN each handshake is several round trips.
    let t0 = std::time::Instant::now();
    let (session, (facts, admin)) = tokio::try_join!(
        cassandra::connect(&job.source),
        sink::discover_connected(&job.target)
    )?;
    let admin = Admin::new(
        admin,
        0,
        &job.target,
        &facts.nodes,
        job.settings.outage_deadline,
    );
    tracing::info!(
        ms = t0.elapsed().as_millis() as u64,
        "connected to both sides"
    );
    let notes = job.yb.notes(&facts);
    crate::source::check_routing(&session, &job.source.routing)?;

    let pair = |keyspace: &str, table: &str, target_schema: &str, target_table: &str| TablePair {
        keyspace: keyspace.to_string(),
        table: table.to_string(),
        target_schema: target_schema.to_string(),
        target_table: target_table.to_string(),
    };
    // The tables are listed while the round trips are measured: both are round trips.
    let listing = async {
        Ok::<Vec<TablePair>, anyhow::Error>(match &job.tables {
            TableSelection::One {
                keyspace,
                table,
                target_schema,
                target_table,
            } => vec![pair(keyspace, table, target_schema, target_table)],
            TableSelection::Keyspace {
                keyspace,
                target_schema,
            } => schema::list_tables(&session, keyspace)
                .await?
                .into_iter()
                .map(|t| pair(keyspace, &t, target_schema, &t))
                .collect(),
            TableSelection::List {
                tables,
                target_schema,
            } => tables
                .iter()
                .map(|(k, t)| pair(k, t, target_schema, t))
                .collect(),
        })
    };

    let constant_names: Vec<String> = job.constants.iter().map(|(n, _)| n.clone()).collect();
    let progress = Progress::new(&job.progress_schema);
    // A resume is checked against what its plan describes before anything is written; `--fresh`
    // forgets the plan and the measurement modes keep their own.
    let check_stored = !job.fresh && matches!(job.settings.mode, Mode::Migrate);
    let measuring = async {
        if !job.measure_chunks {
            return (plan::ChunkSizing::AtLeast(job.min_chunks), None);
        }
        let (source_rtt, target_rtt) = tokio::join!(
            pipeline::source_rtt(&session),
            admin.call("measuring the round trip", |c, _| Box::pin(async move {
                Ok(target_rtt(c).await)
            }))
        );
        let target_rtt = target_rtt.ok().flatten();
        tracing::info!(
            source_rtt_us = source_rtt.map(|d| d.as_micros() as u64),
            target_rtt_us = target_rtt.map(|d| d.as_micros() as u64),
            "round trips for chunk sizing"
        );
        let sizing = match (source_rtt, target_rtt) {
            // A table big enough gets a chunk per worker the run may use, not only per worker
            // it starts with: across a WAN the controller raises the workers to hide the round
            // trip, and a table of as many chunks as its first workers leaves it nothing to
            // give the new ones.
            (Some(source_rtt), Some(target_rtt)) => plan::ChunkSizing::Measured {
                workers: job
                    .settings
                    .adaptive
                    .map_or(job.settings.writers, |(_, max)| {
                        max.max(job.settings.writers)
                    }),
                fetch_rows: job.settings.fetch_size_rows.max(1) as u64,
                source_rtt,
                target_rtt,
                fallback: job.min_chunks,
            },
            _ => plan::ChunkSizing::AtLeast(job.min_chunks),
        };
        (sizing, source_rtt)
    };
    // Each keyspace's replication, for its tables' replicas: the session holds no schema.
    let keyspaces: std::collections::BTreeSet<&str> = match &job.tables {
        TableSelection::One { keyspace, .. } | TableSelection::Keyspace { keyspace, .. } => {
            [keyspace.as_str()].into()
        }
        TableSelection::List { tables, .. } => tables.iter().map(|(k, _)| k.as_str()).collect(),
    };
    let replications =
        futures::future::try_join_all(keyspaces.into_iter().map(|k| {
            let session = &session;
            async move {
                Ok::<_, anyhow::Error>((k.to_string(), source::replication(session, k).await?))
            }
        }));
    // The tables' columns too: a keyspace's in one read, else each named table's. Each table's
    // check then starts from them (a read that fails here is made again there, and reported).
    let column_reads: Vec<(&str, Option<&str>)> = match &job.tables {
        TableSelection::One {
            keyspace, table, ..
        } => vec![(keyspace.as_str(), Some(table.as_str()))],
        TableSelection::Keyspace { keyspace, .. } => vec![(keyspace.as_str(), None)],
        TableSelection::List { tables, .. } => tables
            .iter()
            .map(|(k, t)| (k.as_str(), Some(t.as_str())))
            .collect(),
    };
    let columns = futures::future::join_all(column_reads.into_iter().map(|(k, t)| {
        let session = &session;
        async move {
            schema::read_columns(session, k, t)
                .await
                .map(|by_table| {
                    by_table
                        .into_iter()
                        .map(|(t, c)| ((k.to_string(), t), c))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    }));
    let (pairs, (sizing, source_rtt), strategies, columns) =
        tokio::join!(listing, measuring, replications, columns);
    let columns: HashMap<(String, String), Vec<schema::ColumnRow>> =
        columns.into_iter().flatten().collect();
    let pairs = pairs?;
    let strategies: HashMap<String, Option<Strategy>> = strategies?.into_iter().collect();
    // Tables are checked and planned several at once: across a WAN each costs round trips,
    // and these reads are independent (the admin connection pipelines them). Every table is
    // planned on the ring the session read as it connected, moments ago: the driver refreshes
    // its metadata one request at a time, several round trips each, so a refresh per table
    // serialised a keyspace's planning (`plan_table_refreshed`).
    // A fault on either side while checking is retried, the checks (reads only) again.
    // The run's first connections, opened beside the checks (as `run` would open them): its
    // binders (none for one table), and a worker's for as many tables as there are, up to
    // where it starts.
    let opening = async {
        if !to_copy {
            return (Ahead::default(), None);
        }
        let start = run_start(job, pairs.len(), source_rtt);
        let binders = binders_for(pairs.len());
        let ahead = Ahead {
            binders: (binders > 0).then(|| Opening::start(&job.target, &facts, 1, binders)),
            workers: Some(Opening::start(
                &job.target,
                &facts,
                0,
                start.min(pairs.len()),
            )),
        };
        // The source's frame limit too, which every table's page sizes need.
        (ahead, Some(crate::page_size::frame_bytes(&session).await))
    };
    let checking = admin.call("reading the tables' schemas and plans", |c, _| {
        let ctx = CheckCtx {
            job,
            session: &session,
            admin: c,
            facts: &facts,
            progress: &progress,
            strategies: &strategies,
            columns: &columns,
            sizing,
            check_stored,
            constant_names: &constant_names,
            t0,
        };
        let pairs = pairs.clone();
        let progress = &progress;
        Box::pin(async move {
            tokio::try_join!(
                futures::stream::iter(pairs)
                    .map(|pair| check_table(&ctx, pair))
                    .buffered(CHECKS)
                    .try_collect::<Vec<Checked>>(),
                // Only an answer of yes skips `ensure`: a failed look is no reason to refuse.
                async { Ok(to_copy && progress.is_current(c).await.unwrap_or(false)) }
            )
        })
    });
    let (checked, (ahead, frame_bytes)) = tokio::join!(checking, opening);
    let (checked, progress_current) = checked?;
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    let mut stale = Vec::new();
    for c in checked {
        problems.extend(c.problems);
        stale.extend(c.stale);
        tables.extend(c.table);
    }
    if !problems.is_empty() {
        bail!(
            "the target does not match the source; nothing was written:\n  {}",
            problems.join("\n  ")
        );
    }
    match stale.len() {
        0 => {}
        1 => return Err(stale.remove(0).into()),
        _ => bail!(
            "{}",
            stale
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
    Ok(Prepared {
        session,
        facts,
        tables,
        admin,
        notes,
        source_rtt,
        ahead: std::sync::Mutex::new(Some(ahead)),
        progress_current,
        frame_bytes,
    })
}

/// How many connections besides the admin one bind a run's tables' plans.
fn binders_for(tables: usize) -> usize {
    if tables > 1 {
        tables.min(BINDERS) - 1
    } else {
        0
    }
}

/// Where a run's workers start: a run of several tables starts its controller a step up
/// across a WAN ([`adapt::start_level`]); one table keeps its own controller's start (measured
/// alone at 100 ms, the 300K-row table was no faster from 24 workers: 67-70K rows/s against
/// 71-79K).
fn run_start(job: &Job, tables: usize, source_rtt: Option<std::time::Duration>) -> usize {
    match job.settings.adaptive {
        Some((_, max)) if tables > 1 => adapt::start_level(
            job.settings.writers,
            max,
            source_rtt,
            job.settings.source_latency_target_ms.is_some(),
        ),
        _ => job.settings.writers.max(1),
    }
}

/// One table's workers and controller bounds when it has `left` chunks to copy: a chunk is one
/// worker's at a time, so workers past the chunks would only open connections (across a WAN,
/// several round trips each) and, finding nothing to lease, delay the table's end. The
/// controller keeps its floor, within the new ceiling; with no room to move it is off.
fn capped_to_chunks(
    writers: usize,
    adaptive: Option<(usize, usize)>,
    left: usize,
) -> (usize, Option<(usize, usize)>) {
    let cap = left.max(1);
    let adaptive = adaptive.and_then(|(min, max)| {
        let max = max.min(cap);
        let min = min.min(max);
        (min < max).then_some((min, max))
    });
    (writers.clamp(1, cap), adaptive)
}

/// The most tables checked and planned at once: their reads are small (a table's schema on both
/// sides, one page of partition tokens), and across a WAN each table's are a few round trips.
const CHECKS: usize = 32;

/// What `prepare` shares with each table's check.
struct CheckCtx<'a> {
    job: &'a Job,
    session: &'a Session,
    admin: &'a tokio_postgres::Client,
    facts: &'a TargetFacts,
    progress: &'a Progress,
    /// Each keyspace's replication ([`source::replication`]).
    strategies: &'a HashMap<String, Option<Strategy>>,
    /// The tables' columns, by keyspace and table ([`schema::read_columns`]).
    columns: &'a HashMap<(String, String), Vec<schema::ColumnRow>>,
    sizing: plan::ChunkSizing,
    check_stored: bool,
    constant_names: &'a [String],
    t0: std::time::Instant,
}

/// A source table and the target table it goes to.
#[derive(Clone, Debug)]
struct TablePair {
    keyspace: String,
    table: String,
    target_schema: String,
    target_table: String,
}

/// One table checked: its plan, or the problems that stop the run.
#[derive(Default)]
struct Checked {
    table: Option<PreparedTable>,
    problems: Vec<String>,
    stale: Option<progress::StaleProgress>,
}

/// Reads one table's schema on both sides, plans it, and checks its stored plan.
async fn check_table(
    ctx: &CheckCtx<'_>,
    TablePair {
        keyspace: ks,
        table: t,
        target_schema: tschema,
        target_table: ttable,
    }: TablePair,
) -> Result<Checked> {
    let CheckCtx {
        job,
        session,
        admin,
        facts,
        progress,
        strategies,
        columns,
        sizing,
        check_stored,
        constant_names,
        t0,
    } = *ctx;
    let mut checked = Checked::default();
    let base_key = job_key(
        &format!("{ks}.{t}"),
        &format!("{}.{}", pg_ident(&tschema), pg_ident(&ttable)),
    );
    // A catch-up pass keeps its own progress, under its own key.
    let since_us = match job.since {
        None => None,
        Some(Since::At(us)) => Some(us),
        Some(Since::Last) => match progress.last_pass_start(admin, &base_key).await? {
            Some(us) => Some(us),
            None => bail!(
                "--since last: {ks}.{t} has no completed pass into {tschema}.{ttable} to catch up from — run ferry migrate without --since first, or give --since a time"
            ),
        },
    };
    let key = match since_us {
        Some(us) => progress::catch_up_key(&base_key, us),
        None => base_key,
    };
    // Independent reads, at once: across a WAN each is a round trip or more.
    let cols = columns.get(&(ks.clone(), t.clone())).cloned();
    let partition_key = cols.as_deref().map(schema::partition_key_of);
    let (source, existing, plan, source_id, stored) = tokio::try_join!(
        schema::read_source_table_with(session, &ks, &t, cols),
        sink::existing_columns(admin, &tschema, &ttable),
        plan::plan_table_refreshed(
            session,
            &ks,
            &t,
            strategies.get(&ks).and_then(|s| s.as_ref()),
            job.split_size_mb,
            sizing,
            partition_key
        ),
        schema::source_table_id(session, &ks, &t),
        async {
            if check_stored {
                progress.stored_plan(admin, &key).await
            } else {
                Ok(None)
            }
        },
    )?;
    let mapping = TableMapping::new(
        source,
        &tschema,
        &ttable,
        &job.renames,
        job.primary_key.as_deref(),
    )?;
    let mut plan = plan;
    split_large_partitions(job, session, &mapping, &mut plan, sizing).await?;
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
    // The row time columns come first, before the constants.
    let times = time_columns(job);
    for name in &times {
        if mapping.target_columns.iter().any(|t| &t.name == name)
            || constant_names.contains(name)
            || times.iter().filter(|n| *n == name).count() > 1
        {
            checked.problems.push(format!(
                "{tschema}.{ttable}: column {name} (ferry.writetimeColumn / ferry.expiresColumn) is also written from another source — give it a name of its own"
            ));
        }
    }
    let extra: Vec<(String, String)> = times
        .iter()
        .map(|n| (n.clone(), TIMESTAMPTZ.to_string()))
        .chain(extra)
        .collect();
    let ddl = mapping.create_table_ddl_with(facts.kind, &extra);
    let upsert = since_us.is_some() || job.settings.insert_mode == sink::InsertMode::Upsert;
    let create = match &existing {
        Some(cols) => {
            let mut written = times.clone();
            written.extend(constant_names.iter().cloned());
            for p in mapping.check_existing(cols, &written) {
                checked.problems.push(format!("{tschema}.{ttable}: {p}"));
            }
            for name in &times {
                match cols.iter().find(|(n, _, _)| n == name) {
                    Some((_, ty, _)) if ty != TIMESTAMPTZ => checked.problems.push(format!(
                        "{tschema}.{ttable}: column {name} is {ty}, but a row time column must be {TIMESTAMPTZ} — alter it or name another column"
                    )),
                    _ => {}
                }
            }
            if upsert {
                let have = sink::primary_key_columns(admin, &mapping.qualified_target()).await?;
                let mut a = have.clone();
                let mut b = mapping.primary_key.clone();
                a.sort();
                b.sort();
                if a != b {
                    checked.problems.push(format!(
                        "{tschema}.{ttable}: upserts replace rows by the source's primary key ({}), but the target's is {} — give the target table that primary key",
                        mapping.primary_key.join(", "),
                        if have.is_empty() { "missing".to_string() } else { format!("({})", have.join(", ")) }
                    ));
                }
            }
            None
        }
        None if job.create_tables => Some(ddl.clone()),
        None => {
            checked.problems.push(format!(
                "target table {tschema}.{ttable} does not exist — rerun with --create-tables, or create it:\n{ddl};"
            ));
            None
        }
    };
    let binding = binding_text(&mapping, &ddl, &times);
    // A table this run creates voids its old progress (the run says so); an existing one
    // must still be what its stored plan describes.
    if let (Some(stored), Some(_)) = (&stored, &existing) {
        let target = mapping.qualified_target();
        let mut now = progress::target_now(admin, &target, false).await?;
        if progress::needs_exact_count(stored, &now) {
            now = progress::target_now(admin, &target, true).await?;
        }
        let binding_now = progress::Binding {
            source_id: source_id.clone(),
            target_oid: now.oid,
            target_relfilenode: now.relfilenode,
            mapping: binding.clone(),
        };
        if let Verdict::Stale(changes) = progress::judge(Some(stored), &binding_now, &now, false) {
            checked.stale = Some(progress::StaleProgress {
                source_table: mapping.source.qualified(),
                target_table: target,
                changes,
                done_chunks: stored.done_chunks,
                rows_done: stored.rows_done,
                target_has_rows: now.has_rows,
            });
        }
    }
    tracing::info!(ms = t0.elapsed().as_millis() as u64, table = %t, "checked and planned");
    checked.table = Some(PreparedTable {
        mapping,
        plan,
        create,
        ddl,
        source_id,
        binding,
        since_us,
    });
    Ok(checked)
}

/// Cuts the table's large partitions into clustering-key ranges ([`crate::partition_split`]),
/// each partition into as many ranges as the chunk sizing gives a table of its rows.
async fn split_large_partitions(
    job: &Job,
    session: &Session,
    mapping: &TableMapping,
    plan: &mut Plan,
    sizing: plan::ChunkSizing,
) -> Result<()> {
    let plan::ChunkSizing::Measured {
        fetch_rows,
        source_rtt,
        target_rtt,
        ..
    } = sizing
    else {
        return Ok(());
    };
    // As many ranges as the workers the run starts with (the tables' sizing counts the
    // controller's ceiling; ranges for it measured no faster at 100 ms: 44K against 50K
    // rows/s, one noisy run).
    let workers = job.settings.writers;
    let ranges_for = move |rows: u64| {
        crate::sizing::chunk_count(&crate::sizing::Inputs {
            rows,
            workers,
            fetch_rows,
            source_rtt,
            target_rtt,
        })
    };
    crate::partition_split::split_large_partitions(
        session,
        &mapping.source,
        plan,
        &job.settings.read_settings(),
        job.large_partition_rows,
        &ranges_for,
    )
    .await
}

/// The target's round trip: the fastest of three trivial statements sent at once.
async fn target_rtt(client: &tokio_postgres::Client) -> Option<std::time::Duration> {
    let ping = || async {
        let t = std::time::Instant::now();
        client
            .simple_query("SELECT 1")
            .await
            .ok()
            .map(|_| t.elapsed())
    };
    let (a, b, c) = tokio::join!(ping(), ping(), ping());
    [a, b, c].into_iter().flatten().min()
}

/// What a plan's binding is made of: the target DDL, and each source column with the target
/// column it goes to. A stored plan made for another is stale.
fn binding_text(mapping: &TableMapping, ddl: &str, times: &[String]) -> String {
    let columns: Vec<String> = mapping
        .source
        .columns
        .iter()
        .zip(&mapping.target_columns)
        .map(|(s, t)| format!("{} -> {}", s.name, t.name))
        .collect();
    let mut text = format!(
        "{ddl}\n-- from {}: {}",
        mapping.source.qualified(),
        columns.join(", ")
    );
    // Only when carried, so plans stored before row times existed still match.
    if !times.is_empty() {
        text.push_str(&format!("\n-- row times: {}", times.join(", ")));
    }
    text
}

/// The SQL type of the row time columns, as `format_type` names it.
const TIMESTAMPTZ: &str = "timestamp with time zone";

/// The row time columns the job writes, in COPY order (write time, then expiry).
pub fn time_columns(job: &Job) -> Vec<String> {
    let t = &job.settings.row_times;
    t.writetime.iter().chain(&t.expires).cloned().collect()
}

/// Called as each table starts: its plan, its live counters, and how its plan was bound (new,
/// resumed with what earlier runs did, or restarted because this run created the table).
pub type OnTableStart<'a> = dyn Fn(&PreparedTable, &Arc<Counters>, &Bound) + Sync + 'a;

/// Runs a prepared job: creates missing tables, stores (or finds) each table's plan in the
/// progress tables, and runs the tables, several at once. `on_start` sees each table's counters
/// as it starts.
///
/// The run's workers are one budget of slots ([`crate::budget`]): every table starts workers
/// for the chunks it has left, and a worker copies while it holds a slot, so a keyspace of
/// small tables copies many at a time, a big table gets every slot the others leave, and a
/// table's tail leaves its slots to the next tables. The target connections are the run's too.
/// With several tables, the adaptive controller steers the number of slots from the run's
/// total rate; with one, that table's workers. A table's set-up (DDL, plan binding) happens
/// while earlier tables copy. Reports come back in table order.
pub async fn run(
    job: &Job,
    prepared: &Prepared,
    stop: &AtomicBool,
    on_start: &OnTableStart<'_>,
) -> Result<Vec<TableReport>> {
    let t0 = std::time::Instant::now();
    let progress = Progress::new(&job.progress_schema);
    let many = prepared.tables.len() > 1;
    // Binding a table's plan is a transaction of a few round trips; across a WAN, tables bound
    // one after another on the admin connection would wait on each other. Up to 7 more
    // connections, opened while the progress schema is checked, bind tables side by side.
    let extra = binders_for(prepared.tables.len());
    let ahead = prepared
        .ahead
        .lock()
        .ok()
        .and_then(|mut a| a.take())
        .unwrap_or_default();
    let nodes = &prepared.facts.nodes;
    let most = job
        .settings
        .adaptive
        .map_or(job.settings.writers, |(_, max)| {
            max.max(job.settings.writers)
        })
        .max(1);
    let start = run_start(job, prepared.tables.len(), prepared.source_rtt);
    // One table: its own workers (and controller) are the limit.
    let budget = Budget::new(if many { start } else { most });
    // The workers' first connections are opened beside the progress tables' check and the
    // binders' connections, and join the run's pool once those tables are there: a
    // connection is several round trips, which the first chunks then do not wait for. As
    // many as the run starts with (never more than its chunks).
    let chunks: usize = prepared.tables.iter().map(|t| t.plan.chunks.len()).sum();
    let warm = chunks.min(start);
    let (warmed, warm_done) = tokio::sync::watch::channel(false);
    let ensured_now = tokio::sync::Notify::new();
    let ensured_ok = AtomicBool::new(false);
    let ensure = async {
        let r = if prepared.progress_current {
            Ok(())
        } else {
            prepared
                .admin
                .call("creating the progress tables", |c, _| {
                    Box::pin(progress.ensure(c))
                })
                .await
        };
        ensured_ok.store(r.is_ok(), Ordering::Release);
        ensured_now.notify_one();
        r
    };
    let warming = pipeline::warm_connections(
        &job.target,
        &prepared.facts,
        &progress,
        job.settings.lease,
        &budget,
        warm,
        (ahead.workers.as_ref().map_or(0, |o| o.n), async {
            match ahead.workers {
                Some(o) => o.opened().await,
                None => Vec::new(),
            }
        }),
        async {
            ensured_now.notified().await;
            ensured_ok.load(Ordering::Acquire)
        },
        warmed,
    );
    // Ok(the tables' outcome) once the progress tables are there; Err when they cannot be.
    let copied = async {
        let (ensured, more) = tokio::join!(ensure, async {
            match ahead.binders {
                Some(o) => o.opened().await,
                None => pipeline::open_connections(&job.target, &prepared.facts, 1, extra).await,
            }
        });
        ensured?;
        let binders: Vec<Admin> = more
            .into_iter()
            .filter_map(|(at, _, c)| {
                c.map_err(|e| tracing::warn!(error = %format!("{e:#}"), "a binding connection"))
                    .ok()
                    .map(|c| Admin::new(c, at, &job.target, nodes, job.settings.outage_deadline))
            })
            .collect();
        let all_counters = std::sync::Mutex::new(Vec::<Arc<Counters>>::new());
        let shared = RunShared {
            job,
            prepared,
            progress: &progress,
            budget: &budget,
            binders: &binders,
            most,
            all_counters: &all_counters,
            stop,
            on_start,
            t0,
            warm_done,
        };
        // The tables with the most chunks are bound first (each binder takes its tables in
        // the order they ask): they keep most workers busy, and across a WAN the small ones
        // bound after them add little to the run's end. Reports come back in table order.
        let mut order: Vec<usize> = (0..prepared.tables.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(prepared.tables[i].plan.chunks.len()));
        let tables = futures::future::try_join_all(
            order
                .iter()
                .enumerate()
                .map(|(rank, &i)| run_one(&shared, rank, &prepared.tables[i])),
        );
        let reports = match job.settings.adaptive {
            Some((min, max)) if many => {
                let sum = |f: fn(&Counters) -> u64| {
                    all_counters
                        .lock()
                        .map(|cs| cs.iter().map(|c| f(c)).sum())
                        .unwrap_or(0)
                };
                let target = job.settings.source_latency_target_ms.map(|ms| ms as f64);
                let steer = adapt::steer(
                    adapt::Controller::new(start, min, max).with_latency_target(target),
                    || sum(|c| c.rows_read.load(Ordering::Relaxed)),
                    || sum(|c| c.retries()),
                    || {
                        let mut all = crate::latency::Snapshot::default();
                        if let Ok(cs) = all_counters.lock() {
                            for c in cs.iter() {
                                all.add(&c.source_pages.snapshot());
                            }
                        }
                        all
                    },
                    |level, p99| {
                        budget.set_level(level);
                        if let Ok(cs) = all_counters.lock() {
                            for c in cs.iter() {
                                c.workers_active.store(level as u64, Ordering::Relaxed);
                                c.source_p99_window_us
                                    .store(p99.map_or(0, |p| (p * 1e3) as u64), Ordering::Relaxed);
                            }
                        }
                    },
                );
                tokio::select! {
                    r = tables => r,
                    _ = steer => unreachable!("the controller never ends"),
                }
            }
            _ => tables.await,
        };
        // Back in table order.
        let reports = reports.map(|rs| {
            let mut by_table: Vec<(usize, Option<TableReport>)> =
                order.iter().copied().zip(rs).collect();
            by_table.sort_by_key(|(i, _)| *i);
            by_table.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
        });
        anyhow::Ok(reports)
    };
    let ((), copied) = tokio::join!(warming, copied);
    let reports = copied?;
    tracing::info!(
        idle_connections = budget.idle_conns(),
        slots = budget.level(),
        "run copied"
    );
    let exported = export_rejects(job, prepared, &progress).await;
    let reports = reports?;
    exported?;
    Ok(reports.into_iter().flatten().collect())
}

/// The reject file is exported from the reject table, whatever the run's end: it holds every
/// reject committed for these tables, by this run and the runs it resumed. It describes what
/// the target lacks, so the measurement modes leave it alone.
async fn export_rejects(job: &Job, prepared: &Prepared, progress: &Progress) -> Result<()> {
    if !matches!(job.settings.mode, Mode::Migrate) {
        return Ok(());
    }
    let keys: Vec<String> = prepared.tables.iter().map(|t| table_key(job, t)).collect();
    let (table, keys, file) = (progress.rejects_table(), &keys, &job.settings.reject_file);
    prepared
        .admin
        .call("exporting the rejected rows", |c, _| {
            let table = &table;
            Box::pin(async move {
                crate::rejects::export(c, table, keys, file)
                    .await
                    .map(|_| ())
            })
        })
        .await
}

/// The most connections that bind tables' plans at once (the admin connection included).
const BINDERS: usize = 8;

/// What every table of a run shares.
struct RunShared<'a> {
    job: &'a Job,
    prepared: &'a Prepared,
    progress: &'a Progress,
    budget: &'a Budget,
    /// Connections besides the admin one that bind tables' plans (table i uses number
    /// i mod (n + 1), the admin connection being number 0).
    binders: &'a [Admin],
    /// The most workers one table starts.
    most: usize,
    /// Every started table's counters, for the run's controller.
    all_counters: &'a std::sync::Mutex<Vec<Arc<Counters>>>,
    stop: &'a AtomicBool,
    on_start: &'a OnTableStart<'a>,
    t0: std::time::Instant,
    /// True once the connections opened ahead are in the pool ([`pipeline::warm_connections`]).
    warm_done: tokio::sync::watch::Receiver<bool>,
}

/// One table of a run: bind its plan (on the admin connection or a binder, one table at a time
/// each: binding is a transaction; the `rank`-th table to bind takes connection `rank` mod
/// their number), wait for its share of the workers, copy. `None` when the run was stopped
/// before the table started.
async fn run_one(r: &RunShared<'_>, rank: usize, t: &PreparedTable) -> Result<Option<TableReport>> {
    let job = r.job;
    let target = t.mapping.qualified_target();
    let key = table_key(job, t);
    let admin = match rank % (r.binders.len() + 1) {
        0 => &r.prepared.admin,
        n => &r.binders[n - 1],
    };
    let lock_key = job_key(&t.mapping.source.qualified(), &target);
    let mut settings = job.settings.clone();
    // A catch-up writes as upserts, and only rows written since its time (less the margin).
    if let Some(us) = t.since_us {
        settings.insert_mode = sink::InsertMode::Upsert;
        settings.since_us =
            Some(us.saturating_sub((job.clock_skew_secs as i64).saturating_mul(1_000_000)));
    }
    // The table's scan is prepared while its plan is bound: across a WAN, one round trip
    // less before its first page. A failed prepare is left to the copy, which prepares again
    // and says why.
    let scan = async {
        r.prepared
            .session
            .prepare(settings.scanned(&t.mapping.source).range_select())
            .await
            .ok()
    };
    // One call: the lock, the binding and the constants run again together on a new
    // connection after a fault (the lock is the session's, so it went with the old one).
    let binding = admin.call("storing the table's plan", |admin, _| {
        let (lock_key, key) = (&lock_key, &key);
        Box::pin(async move {
            // While one worker creates the table and binds its plan, another must not
            // judge the old plan against the new table: the job's lock spans both (the
            // plan's own transaction takes it again, which a session holding it may).
            if t.create.is_some() {
                admin
                    .execute_typed(
                        "SELECT pg_advisory_lock(hashtext($1))",
                        &[(lock_key, tokio_postgres::types::Type::TEXT)],
                    )
                    .await?;
            }
            let bound = bind_table(job, admin, r.progress, t, key).await;
            if t.create.is_some() {
                admin
                    .execute_typed(
                        "SELECT pg_advisory_unlock(hashtext($1))",
                        &[(lock_key, tokio_postgres::types::Type::TEXT)],
                    )
                    .await?;
            }
            let bound = bound?;
            let constants = sink::encode_constants(
                admin,
                &t.mapping.target_schema,
                &t.mapping.target_table,
                &job.constants,
            )
            .await?;
            Ok((bound, constants))
        })
    });
    let (binding, scan) = tokio::join!(binding, scan);
    let (bound, constants) = binding?;
    let left = match (&bound.verdict, &bound.stored) {
        (Verdict::Resume { .. }, Some(s)) => s.chunks.saturating_sub(s.done_chunks) as usize,
        _ => t.plan.chunks.len(),
    };
    if r.stop.load(Ordering::Relaxed) {
        return Ok(None);
    }
    // A table starts a worker per chunk left, up to what one table may run; beside other
    // tables, the run's slots (and controller) decide how many work at once.
    if r.prepared.tables.len() > 1 {
        settings.writers = left.clamp(1, r.most);
        settings.adaptive = None;
    } else {
        (settings.writers, settings.adaptive) =
            capped_to_chunks(settings.writers, settings.adaptive, left);
    }
    let share = settings.writers;
    let mut names = time_columns(job);
    names.extend(job.constants.iter().map(|(n, _)| n.clone()));
    let writer = TableWriter::new(
        &t.mapping,
        &names,
        settings.insert_mode,
        job.yb,
        r.prepared.facts.kind,
        job.settings.row_times.writetime.as_deref(),
    );
    // The connections opened ahead are usually in the pool long before a table is bound (a
    // binding is several round trips, preparing them one); waiting makes sure the workers take
    // them instead of opening more.
    let _ = r.warm_done.clone().wait_for(|w| *w).await;
    let counters = Arc::new(Counters::default());
    if let Ok(mut all) = r.all_counters.lock() {
        all.push(counters.clone());
    }
    tracing::info!(ms = r.t0.elapsed().as_millis() as u64, %target, workers = share, "table ready to copy");
    (r.on_start)(t, &counters, &bound);
    let started_at = std::time::SystemTime::now();
    let mut report = pipeline::run_table(
        &r.prepared.session,
        &t.mapping,
        &t.plan,
        &job.target,
        &r.prepared.facts,
        &writer,
        constants,
        &settings,
        &counters,
        r.progress,
        &key,
        &job.owner,
        r.stop,
        r.budget,
        pipeline::SourceReady {
            scan,
            rtt: r.prepared.source_rtt,
            frame_bytes: r.prepared.frame_bytes,
        },
    )
    .await?;
    r.prepared
        .admin
        .call("marking the table done", |c, _| {
            let key = &key;
            Box::pin(async move { r.progress.finish_if_done(c, key).await.map(|_| ()) })
        })
        .await?;
    if matches!(bound.verdict, Verdict::Resume { .. }) {
        report.rows_before = bound.stored.as_ref().map_or(0, |s| s.rows_done);
    }
    report.started_at = Some(started_at);
    report.since_us = t.since_us;
    Ok(Some(report))
}

/// A table's key in the progress tables: its source and target, and for the measurement modes
/// (which keep their own progress) the mode.
fn table_key(job: &Job, t: &PreparedTable) -> String {
    let mut key = job_key(&t.mapping.source.qualified(), &t.mapping.qualified_target());
    if let Some(us) = t.since_us {
        key = progress::catch_up_key(&key, us);
    }
    match &job.settings.mode {
        Mode::Migrate => key,
        Mode::ScanOnly | Mode::Capture(_) => key + " [scan]",
        Mode::Replay(_) => key + " [replay]",
    }
}

/// Creates the table when this run must, applies `--fresh` and the measurement modes, and binds
/// the table's plan in the progress tables under `key` ([`table_key`]).
async fn bind_table(
    job: &Job,
    admin: &tokio_postgres::Client,
    progress: &Progress,
    t: &PreparedTable,
    key: &str,
) -> Result<Bound> {
    let target = t.mapping.qualified_target();
    let mut created_now = false;
    if let Some(ddl) = &t.create {
        // Several workers may start at once: one creates, the others find it made. The DDL
        // lock is held to the transaction's end, so "was it missing" is answered once.
        let named: [(
            &(dyn tokio_postgres::types::ToSql + Sync),
            tokio_postgres::types::Type,
        ); 1] = [(&target, tokio_postgres::types::Type::TEXT)];
        let create = format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n{}",
            pg_ident(&t.mapping.target_schema),
            ddl.replacen("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1)
        );
        let (_, _, missing, _, _) = tokio::try_join!(
            admin.batch_execute("BEGIN"),
            admin.batch_execute("SELECT pg_advisory_xact_lock(hashtext('ferry ddl'))"),
            admin.query_typed_one("SELECT to_regclass($1) IS NULL", &named),
            admin.batch_execute(&create),
            admin.batch_execute("COMMIT"),
        )
        .with_context(|| format!("creating {target}"))?;
        created_now = missing.get(0);
    }
    // Measurement modes keep their own progress and always start over.
    let mut chunks = t.plan.chunks.clone();
    match &job.settings.mode {
        Mode::Migrate => {}
        Mode::ScanOnly | Mode::Capture(_) => {
            progress.forget(admin, key).await?;
        }
        Mode::Replay(dir) => {
            // A replay loads every captured chunk again: into an empty table, or one the user
            // asked to empty (`--truncate`); never by surprise.
            chunks = captured_chunks(dir)?;
            let has_rows = rows_allowed(
                admin,
                &target,
                job.truncate,
                "--replay refuses to load into",
                "",
            )
            .await?;
            progress.forget(admin, key).await?;
            if has_rows {
                admin.batch_execute(&format!("TRUNCATE {target}")).await?;
            }
        }
    }
    if let Mode::Capture(dir) = &job.settings.mode {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the capture folder {}", dir.display()))?;
    }
    // `--fresh --truncate` empties whatever the table holds, and forgets its stored progress,
    // in the binding's first flight.
    let emptied = job.fresh && job.truncate;
    if job.fresh && !emptied {
        rows_allowed(
            admin,
            &target,
            false,
            "--fresh refuses to start over in",
            ", or drop --fresh to resume",
        )
        .await?;
        progress.forget(admin, key).await?;
    }
    let source = t.mapping.source.qualified();
    progress
        .bind_plan(
            admin,
            &PlanToStore {
                job: key,
                run_id: &job.run_id,
                source: &source,
                target: &target,
                chunks: &chunks,
                source_id: t.source_id.clone(),
                mapping: &t.binding,
            },
            created_now,
            job.exact_counts,
            async {
                if !emptied {
                    return Ok(());
                }
                tokio::try_join!(
                    async {
                        admin
                            .batch_execute(&format!("TRUNCATE {target}"))
                            .await
                            .with_context(|| format!("emptying {target}"))
                    },
                    progress.forget(admin, key)
                )?;
                Ok(())
            },
        )
        .await
}

/// Whether `target` has rows; an error naming `refusal` when it has and `--truncate` was not
/// given (a start-over or a replay never empties a table by surprise).
async fn rows_allowed(
    admin: &tokio_postgres::Client,
    target: &str,
    truncate: bool,
    refusal: &str,
    other_fix: &str,
) -> Result<bool> {
    let has_rows = admin
        .query_typed_opt(&format!("SELECT 1 FROM {target} LIMIT 1"), &[])
        .await?
        .is_some();
    if has_rows && !truncate {
        bail!(
            "{refusal} {target}: it already has rows — add --truncate to empty it first{other_fix}"
        );
    }
    Ok(has_rows)
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
                    clustering: None,
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

#[cfg(test)]
mod tests {
    use super::capped_to_chunks;

    #[test]
    fn one_table_never_starts_more_workers_than_chunks() {
        // A one-chunk table: one worker, no controller.
        assert_eq!(capped_to_chunks(16, Some((4, 48)), 1), (1, None));
        assert_eq!(capped_to_chunks(16, None, 1), (1, None));
        // Fewer chunks than the start: started at the chunks, the floor kept below them.
        assert_eq!(capped_to_chunks(16, Some((4, 48)), 10), (10, Some((4, 10))));
        // More chunks than the controller's ceiling: unchanged.
        assert_eq!(capped_to_chunks(16, Some((4, 48)), 61), (16, Some((4, 48))));
        // More than the start, fewer than the ceiling: the ceiling comes down to the chunks.
        assert_eq!(capped_to_chunks(16, Some((4, 48)), 30), (16, Some((4, 30))));
        // A floor at or above the chunks: fixed at the chunks.
        assert_eq!(capped_to_chunks(16, Some((4, 48)), 3), (3, None));
        // Nothing left (a finished table run again) still has its one worker to find that out.
        assert_eq!(capped_to_chunks(16, Some((4, 48)), 0), (1, None));
    }
}
