//! Progress in the target database: the plan and each chunk's state live in a schema of the
//! target (`ferry` by default), so a rerun resumes, several workers share one plan by leasing
//! chunks (a row lock taken with `FOR UPDATE SKIP LOCKED` in the chunk's own transaction), and a chunk's done mark commits in the same transaction as
//! its rows. The target database is the coordinator; there is no ferry server.

use anyhow::{Context, Result};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::partition_split::{decode_bound, encode_bound};
use crate::plan::{Chunk, ClusteringRange};
use crate::rejects::{self, Reject};
use crate::schema::pg_ident;

/// The progress tables of one target schema.
#[derive(Clone, Debug)]
pub struct Progress {
    pub schema: String,
}

/// The per-chunk statements, prepared on one worker's connection.
pub struct ChunkStatements {
    lease: tokio_postgres::Statement,
    complete: tokio_postgres::Statement,
    rejects: tokio_postgres::Statement,
}

/// A chunk copied, about to be marked done: what its done mark records.
pub struct ChunkDone<'a> {
    pub job: &'a str,
    pub owner: &'a str,
    pub chunk_id: u32,
    /// `ks.table` in Cassandra, for the rejects.
    pub table: &'a str,
    pub rows: u64,
    /// The rows it could not write; they commit with it.
    pub rejects: &'a [Reject],
}

/// What a lease found ([`Progress::begin_lease`]). Either way the lease's transaction is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leased {
    /// A chunk, row-locked by the transaction.
    Chunk(Lease),
    /// No chunk free. `unfinished`: the chunks not done, those other workers hold included
    /// (0: the table is copied).
    Nothing { unfinished: u64 },
}

/// Rolls back the transaction a lease that found nothing left open, without waiting for the
/// reply: tokio-postgres queues a request on the connection when its future is first polled,
/// so the ROLLBACK goes out now, ahead of whatever the connection's next user sends, and its
/// reply is read and discarded. Across a WAN a table's end is one round trip sooner. A broken
/// connection is found so by its next user.
pub fn roll_back_unwaited(client: &Client) {
    use futures::FutureExt;
    let _ = client.batch_execute("ROLLBACK").now_or_never();
}

/// A chunk this worker holds a lease on: its row is locked by the worker's open transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub chunk_id: u32,
    pub start: i64,
    pub end: i64,
    pub replica_set: usize,
    /// A piece of a large partition: its clustering-key range (of partition token `end`).
    pub clustering: Option<ClusteringRange>,
}

/// Counts by state for `ferry status`.
#[derive(Clone, Debug, Default)]
pub struct StatusCounts {
    pub pending: u64,
    pub leased: u64,
    pub done: u64,
    pub rows: u64,
    pub rejected: u64,
    pub first_done: Option<f64>,
    pub last_done: Option<f64>,
}

/// The identities a stored plan describes. A plan's done chunks are rows in one particular
/// target table, read from one particular source table through one mapping: when any of these
/// is replaced, the done marks no longer say anything true about the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Cassandra's `system_schema.tables.id`: DROP + CREATE under the same name gives a new one
    /// (ALTER keeps it; the mapping below catches column changes).
    pub source_id: Option<String>,
    /// The target table's `pg_class.oid`: DROP + CREATE gives a new one.
    pub target_oid: i64,
    /// The target table's `pg_class.relfilenode`: TRUNCATE gives a new one on PostgreSQL (so do
    /// rewrites that keep the rows: VACUUM FULL, CLUSTER, some ALTERs — see [`judge`]).
    pub target_relfilenode: i64,
    /// The target DDL and the column mapping the plan was made for.
    pub mapping: String,
}

/// A plan about to be bound: its job key, names, chunks, and the source side of its binding
/// (the target side is read under the job's lock).
pub struct PlanToStore<'a> {
    pub job: &'a str,
    pub run_id: &'a str,
    /// `ks.table` in Cassandra.
    pub source: &'a str,
    /// The quoted, schema-qualified target table.
    pub target: &'a str,
    pub chunks: &'a [Chunk],
    pub source_id: Option<String>,
    pub mapping: &'a str,
}

impl PlanToStore<'_> {
    fn binding_for(&self, target: &TargetNow) -> Binding {
        Binding {
            source_id: self.source_id.clone(),
            target_oid: target.oid,
            target_relfilenode: target.relfilenode,
            mapping: self.mapping.to_string(),
        }
    }
}

/// A stored plan as found: the identities it was bound to (each `None` in a plan stored by a
/// ferry that did not record them) and what its chunks hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredPlan {
    pub source_id: Option<String>,
    pub target_oid: Option<i64>,
    pub target_relfilenode: Option<i64>,
    pub mapping: Option<String>,
    pub chunks: u64,
    pub done_chunks: u64,
    /// Rows the done chunks wrote: what the target holds from earlier runs.
    pub rows_done: u64,
    pub rows_rejected: u64,
}

impl StoredPlan {
    fn from_row(r: &tokio_postgres::Row) -> Result<Self> {
        let json: String = r.get(0);
        let v: serde_json::Value =
            serde_json::from_str(&json).context("reading a stored plan's row")?;
        Ok(StoredPlan {
            source_id: v["source_id"].as_str().map(str::to_string),
            target_oid: v["target_oid"].as_i64(),
            target_relfilenode: v["target_relfilenode"].as_i64(),
            mapping: v["mapping"].as_str().map(str::to_string),
            chunks: r.get::<_, i64>(1) as u64,
            done_chunks: r.get::<_, i64>(2) as u64,
            rows_done: r.get::<_, i64>(3) as u64,
            rows_rejected: r.get::<_, i64>(4) as u64,
        })
    }
}

/// How many rows the target table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowCount {
    /// The planner's figure (`pg_class.reltuples`) or the statistics' live-row count, whichever
    /// is higher: free to read, but late after bulk loads and lost after a crash.
    Estimate(u64),
    /// `count(*)`.
    Exact(u64),
}

/// The target table as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetNow {
    pub oid: i64,
    pub relfilenode: i64,
    /// Whether it has at least one row (exact, and cheap: one row is read).
    pub has_rows: bool,
    /// `None` when neither estimate is known.
    pub rows: Option<RowCount>,
}

/// Reads the target table's identity, whether it has a row, and its row estimate (or its exact
/// count), in one statement. `table` is quoted and schema-qualified.
pub async fn target_now(client: &Client, table: &str, count_exactly: bool) -> Result<TargetNow> {
    let sql = format!(
        "SELECT c.oid::int8, c.relfilenode::int8, EXISTS (SELECT 1 FROM {table}), \
           greatest(c.reltuples::int8, pg_stat_get_live_tuples(c.oid), -1)::int8, \
           {exact} \
         FROM pg_class c WHERE c.oid = to_regclass($1)",
        exact = if count_exactly {
            format!("(SELECT count(*) FROM {table})")
        } else {
            "NULL::int8".to_string()
        }
    );
    let row = client
        .query_typed_opt(&sql, &[(&table, Type::TEXT)])
        .await
        .with_context(|| format!("reading the identity of {table}"))?
        .with_context(|| format!("{table} does not exist"))?;
    let estimate: i64 = row.get(3);
    let exact: Option<i64> = row.get(4);
    Ok(TargetNow {
        oid: row.get(0),
        relfilenode: row.get(1),
        has_rows: row.get(2),
        rows: match exact {
            Some(n) => Some(RowCount::Exact(n as u64)),
            // A never-analysed table says -1; an empty or unread one 0 (and `has_rows` is exact).
            None if estimate > 0 => Some(RowCount::Estimate(estimate as u64)),
            None => None,
        },
    })
}

/// `count(*)` of the target table.
async fn count_rows(client: &Client, table: &str) -> Result<u64> {
    let n: i64 = client
        .query_typed_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .with_context(|| format!("counting the rows of {table}"))?
        .get(0);
    Ok(n as u64)
}

/// What replaced something a stored plan describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The target table's oid differs: dropped and created again (by hand or by a tool).
    TargetRecreated,
    /// The target lost rows the done chunks wrote: truncated, or emptied with DELETE.
    TargetEmptied,
    /// Cassandra's table id differs: the source table was dropped and created again.
    SourceRecreated,
    /// The column mapping or the target DDL differs from the one the plan was made for.
    MappingChanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::TargetRecreated => "the target table was dropped and recreated",
            Change::TargetEmptied => "the target table was truncated or emptied",
            Change::SourceRecreated => "the source table was dropped and recreated",
            Change::MappingChanged => "the column mapping or target DDL changed",
        })
    }
}

/// What to do with a table's stored plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No plan is stored: store this one.
    New,
    /// The stored plan describes what is there: resume it. `adopt`: record the current
    /// identities (a plan stored before ferry recorded them, or a rewrite that kept every row).
    Resume { adopt: bool },
    /// This run created the target table: whatever was stored for it is void; start over.
    Restart,
    /// The stored plan describes tables that are no longer there: refuse.
    Stale(Vec<Change>),
}

/// Whether the target's row count must be read exactly before judging: its file changed (a
/// TRUNCATE, or a rewrite such as VACUUM FULL) while it still has rows, so only the count tells
/// a truncate-and-partly-refill from a rewrite that kept every row.
pub fn needs_exact_count(stored: &StoredPlan, target: &TargetNow) -> bool {
    stored
        .target_relfilenode
        .is_some_and(|r| r != target.relfilenode)
        && stored.target_oid == Some(target.oid)
        && target.has_rows
        && stored.rows_done > 0
}

/// Judges a stored plan against what is there now. Pure: the caller reads both sides.
///
/// - No stored plan: [`Verdict::New`]. This run created the target table: [`Verdict::Restart`].
/// - A different source id, target oid or mapping: stale.
/// - Rows recorded as done but the target has none: stale (truncated or emptied). This check
///   needs no identity, so it also holds where TRUNCATE keeps the relfilenode (YugabyteDB's
///   in-place truncate) and for plans stored before ferry recorded identities.
/// - A different relfilenode on the same table: truncated if the exact count is below the rows
///   recorded as done, else a rewrite that kept the rows (resume, and record the new file).
pub fn judge(
    stored: Option<&StoredPlan>,
    now: &Binding,
    target: &TargetNow,
    created_now: bool,
) -> Verdict {
    let Some(s) = stored else {
        return Verdict::New;
    };
    if created_now {
        return Verdict::Restart;
    }
    let mut changes = Vec::new();
    if s.target_oid.is_some_and(|o| o != now.target_oid) {
        changes.push(Change::TargetRecreated);
    } else if s.rows_done > 0 && !target.has_rows {
        changes.push(Change::TargetEmptied);
    } else if s
        .target_relfilenode
        .is_some_and(|r| r != now.target_relfilenode)
    {
        if let Some(RowCount::Exact(n)) = target.rows {
            if n < s.rows_done {
                changes.push(Change::TargetEmptied);
            }
        }
    }
    if let (Some(was), Some(is)) = (&s.source_id, &now.source_id) {
        if was != is {
            changes.push(Change::SourceRecreated);
        }
    }
    if s.mapping.as_ref().is_some_and(|m| m != &now.mapping) {
        changes.push(Change::MappingChanged);
    }
    if !changes.is_empty() {
        return Verdict::Stale(changes);
    }
    let adopt = s.source_id.is_none() && now.source_id.is_some()
        || s.target_oid.is_none()
        || s.target_relfilenode != Some(now.target_relfilenode)
        || s.mapping.is_none();
    Verdict::Resume { adopt }
}

/// A table's plan, bound: what was decided, what was stored before, and the target now.
#[derive(Clone, Debug)]
pub struct Bound {
    pub verdict: Verdict,
    pub stored: Option<StoredPlan>,
    pub target: TargetNow,
}

impl Bound {
    /// When resuming: the target's row count disagrees with the rows the done chunks wrote
    /// (someone deleted or added rows since). Returns (rows there, exact?, rows recorded).
    /// Estimates only speak when they are under half of what was recorded: they run late.
    pub fn count_mismatch(&self) -> Option<(u64, bool, u64)> {
        let s = self.stored.as_ref()?;
        if !matches!(self.verdict, Verdict::Resume { .. }) {
            return None;
        }
        match self.target.rows? {
            RowCount::Exact(n) if n != s.rows_done => Some((n, true, s.rows_done)),
            RowCount::Estimate(n) if n.saturating_mul(2) < s.rows_done => {
                Some((n, false, s.rows_done))
            }
            _ => None,
        }
    }
}

/// A stored plan no longer describes the tables: the run refuses before writing a row.
#[derive(Debug, thiserror::Error)]
pub struct StaleProgress {
    /// `ks.table` in Cassandra.
    pub source_table: String,
    /// The quoted, schema-qualified target table.
    pub target_table: String,
    pub changes: Vec<Change>,
    pub done_chunks: u64,
    pub rows_done: u64,
    pub target_has_rows: bool,
}

impl std::fmt::Display for StaleProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what: Vec<String> = self.changes.iter().map(|c| c.to_string()).collect();
        write!(
            f,
            "{} → {}: stored progress no longer matches: {} after {} chunks ({} rows) were \
             copied; nothing was written — rerun with {} to copy this table again",
            self.source_table,
            self.target_table,
            what.join(" and "),
            self.done_chunks,
            self.rows_done,
            if self.target_has_rows {
                "--fresh --truncate"
            } else {
                "--fresh"
            }
        )
    }
}

impl Progress {
    pub fn new(schema: &str) -> Self {
        Progress {
            schema: schema.to_string(),
        }
    }

    fn t(&self, name: &str) -> String {
        format!("{}.{}", pg_ident(&self.schema), pg_ident(name))
    }

    /// The quoted, schema-qualified table of rejected rows (see [`crate::rejects`]).
    pub fn rejects_table(&self) -> String {
        self.t("ferry_rejects")
    }

    /// Whether the progress tables are there as [`Progress::ensure`] leaves them (a read):
    /// `prepare` asks beside the checks, and a run that finds them so does not wait a round
    /// trip for `ensure` before binding its tables.
    pub async fn is_current(&self, client: &Client) -> Result<bool> {
        let (runs, chunks, rejects) = (
            self.t("ferry_runs"),
            self.t("ferry_chunks"),
            self.rejects_table(),
        );
        let names: [(&(dyn ToSql + Sync), Type); 3] = [
            (&runs, Type::TEXT),
            (&chunks, Type::TEXT),
            (&rejects, Type::TEXT),
        ];
        let row = client
            .query_typed_one(
                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($3) IS NOT NULL AND EXISTS \
                 (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) \
                  AND attname = 'ck_hi' AND NOT attisdropped)",
                &names,
            )
            .await
            .context("reading whether the progress tables are there")?;
        Ok(row.get(0))
    }

    /// Creates the progress schema and tables when missing, in one round trip: statements sent
    /// together run as one transaction, which holds the DDL lock to its end. Progress tables
    /// made by a ferry that did not bind plans to table identities get those columns once (a
    /// second round trip, that time only: an ALTER on every run would take a table lock other
    /// workers wait on).
    pub async fn ensure(&self, client: &Client) -> Result<()> {
        let runs_name = self.t("ferry_runs");
        let chunks_name = self.t("ferry_chunks");
        let bound: [(&(dyn ToSql + Sync), Type); 1] = [(&chunks_name, Type::TEXT)];
        let (has_binding, ()) = tokio::try_join!(
            async {
                client
                    .query_typed_opt(
                        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) \
                         AND attname = 'ck_hi' AND NOT attisdropped",
                        &bound,
                    )
                    .await
                    .map_err(anyhow::Error::from)
            },
            async {
                client
                    .batch_execute(&format!(
                        "SELECT pg_advisory_xact_lock(hashtext('ferry ddl'));
                 CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {runs} (
                   job text PRIMARY KEY,
                   run_id text NOT NULL,
                   source text NOT NULL,
                   target text NOT NULL,
                   chunks integer NOT NULL,
                   created_at timestamptz NOT NULL DEFAULT now(),
                   finished_at timestamptz,
                   source_id text,
                   target_oid bigint,
                   target_relfilenode bigint,
                   mapping text
                 );
                 CREATE TABLE IF NOT EXISTS {chunks} (
                   job text NOT NULL,
                   chunk_id integer NOT NULL,
                   start_token bigint NOT NULL,
                   end_token bigint NOT NULL,
                   replica_set integer NOT NULL,
                   state text NOT NULL DEFAULT 'pending',
                   owner text,
                   lease_until timestamptz,
                   attempts integer NOT NULL DEFAULT 0,
                   rows_written bigint,
                   rows_rejected bigint,
                   done_at timestamptz,
                   ck_lo bytea,
                   ck_hi bytea,
                   PRIMARY KEY (job, chunk_id)
                 );
                 {rejects}",
                        schema = pg_ident(&self.schema),
                        runs = runs_name,
                        chunks = chunks_name,
                        rejects = rejects::create_sql(&self.rejects_table()),
                    ))
                    .await
                    .map_err(anyhow::Error::from)
            },
        )
        .with_context(|| format!("creating the progress tables in schema {}", self.schema))?;
        if has_binding.is_none() {
            client
                .batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock(hashtext('ferry ddl'));
                     ALTER TABLE {runs_name} ADD COLUMN IF NOT EXISTS source_id text,
                       ADD COLUMN IF NOT EXISTS target_oid bigint,
                       ADD COLUMN IF NOT EXISTS target_relfilenode bigint,
                       ADD COLUMN IF NOT EXISTS mapping text;
                     ALTER TABLE {chunks_name} ADD COLUMN IF NOT EXISTS ck_lo bytea,
                       ADD COLUMN IF NOT EXISTS ck_hi bytea;"
                ))
                .await
                .with_context(|| format!("upgrading {runs_name}"))?;
        }
        Ok(())
    }

    /// The plan stored for `job`, if any: the identities it was bound to and what its done
    /// chunks hold. Reads the row as JSON, so progress tables an older ferry made (without the
    /// identity columns) read too; `None` also when the progress tables do not exist yet.
    pub async fn stored_plan(&self, client: &Client, job: &str) -> Result<Option<StoredPlan>> {
        let by_job: [(&(dyn ToSql + Sync), Type); 1] = [(&job, Type::TEXT)];
        let exists = client
            .query_typed_opt(
                "SELECT 1 WHERE to_regclass($1) IS NOT NULL",
                &[(&self.t("ferry_chunks"), Type::TEXT)],
            )
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let row = client
            .query_typed_opt(&self.lookup_sql(), &by_job)
            .await
            .with_context(|| format!("reading the stored plan of {job}"))?;
        row.map(|r| StoredPlan::from_row(&r)).transpose()
    }

    /// One statement: the job's row (as JSON) and its chunks' totals.
    fn lookup_sql(&self) -> String {
        format!(
            "SELECT to_jsonb(r)::text, \
               (SELECT count(*) FROM {c} WHERE job = $1), \
               (SELECT count(*) FROM {c} WHERE job = $1 AND state = 'done'), \
               (SELECT coalesce(sum(rows_written), 0)::bigint FROM {c} WHERE job = $1), \
               (SELECT coalesce(sum(rows_rejected), 0)::bigint FROM {c} WHERE job = $1) \
             FROM {r} r WHERE job = $1",
            r = self.t("ferry_runs"),
            c = self.t("ferry_chunks")
        )
    }

    /// Binds the plan for one table: stores it when none is stored (or when the stored one is
    /// void because this run created the target table), or finds the stored one and checks it
    /// still describes both tables ([`judge`]). A stale plan is refused with [`StaleProgress`]
    /// and nothing is changed. Under the job's lock, so concurrent workers decide once: the
    /// first stores, the rest find it. Two round trips when the stored plan holds (BEGIN, lock,
    /// lookup and the target's identity together, then COMMIT), plus one when the target's
    /// file changed under rows and they must be counted. `before` (`--fresh --truncate`'s
    /// TRUNCATE and [`Progress::forget`], each its own transaction) goes out first in the
    /// first flight: when it fails, the transaction is rolled back and nothing is bound.
    pub async fn bind_plan(
        &self,
        client: &Client,
        plan: &PlanToStore<'_>,
        created_now: bool,
        count_exactly: bool,
        before: impl std::future::Future<Output = Result<()>>,
    ) -> Result<Bound> {
        let bound: Result<Bound> = async {
            let by_job: [(&(dyn ToSql + Sync), Type); 1] = [(&plan.job, Type::TEXT)];
            let lookup = self.lookup_sql();
            // The advisory lock serializes concurrent first runs of the same job.
            let ((), _, _, found, target) = tokio::try_join!(
                before,
                async {
                    client
                        .batch_execute("BEGIN")
                        .await
                        .map_err(anyhow::Error::from)
                },
                async {
                    client
                        .execute_typed("SELECT pg_advisory_xact_lock(hashtext($1))", &by_job)
                        .await
                        .map_err(anyhow::Error::from)
                },
                async {
                    client
                        .query_typed_opt(&lookup, &by_job)
                        .await
                        .map_err(anyhow::Error::from)
                },
                target_now(client, plan.target, false),
            )?;
            let stored = found.map(|r| StoredPlan::from_row(&r)).transpose()?;
            let mut target = target;
            if let Some(s) = &stored {
                if count_exactly || needs_exact_count(s, &target) {
                    target.rows = Some(RowCount::Exact(count_rows(client, plan.target).await?));
                }
            }
            let verdict = judge(
                stored.as_ref(),
                &plan.binding_for(&target),
                &target,
                created_now,
            );
            match &verdict {
                Verdict::Stale(changes) => {
                    client.batch_execute("ROLLBACK").await?;
                    let s = stored.as_ref().expect("a stale verdict has a stored plan");
                    return Err(StaleProgress {
                        source_table: plan.source.to_string(),
                        target_table: plan.target.to_string(),
                        changes: changes.clone(),
                        done_chunks: s.done_chunks,
                        rows_done: s.rows_done,
                        target_has_rows: target.has_rows,
                    }
                    .into());
                }
                Verdict::Resume { adopt: false } => {
                    client.batch_execute("COMMIT").await?;
                }
                Verdict::Resume { adopt: true } => {
                    let (_, ()) =
                        tokio::try_join!(self.write_binding(client, plan, &target), async {
                            client
                                .batch_execute("COMMIT")
                                .await
                                .map_err(anyhow::Error::from)
                        },)?;
                }
                Verdict::New | Verdict::Restart => {
                    let ((), ()) =
                        tokio::try_join!(self.insert_plan(client, plan, &target), async {
                            client
                                .batch_execute("COMMIT")
                                .await
                                .map_err(anyhow::Error::from)
                        },)?;
                }
            }
            Ok(Bound {
                verdict,
                stored,
                target,
            })
        }
        .await;
        if bound.is_err() {
            // The transaction may be left open after a failed statement.
            let _ = client.batch_execute("ROLLBACK").await;
        }
        bound
    }

    /// The binding columns of a stored plan set to what is there now (a plan stored before
    /// ferry recorded them, or a table rewritten with every row kept).
    async fn write_binding(
        &self,
        client: &Client,
        plan: &PlanToStore<'_>,
        target: &TargetNow,
    ) -> Result<()> {
        let b = plan.binding_for(target);
        let sql = format!(
            "UPDATE {} SET source_id = $2, target_oid = $3, target_relfilenode = $4, mapping = $5 \
             WHERE job = $1",
            self.t("ferry_runs")
        );
        client
            .execute_typed(
                &sql,
                &[
                    (&plan.job, Type::TEXT),
                    (&b.source_id, Type::TEXT),
                    (&b.target_oid, Type::INT8),
                    (&b.target_relfilenode, Type::INT8),
                    (&b.mapping, Type::TEXT),
                ],
            )
            .await?;
        Ok(())
    }

    /// Replaces whatever the job had with this plan, bound to what is there now.
    async fn insert_plan(
        &self,
        client: &Client,
        plan: &PlanToStore<'_>,
        target: &TargetNow,
    ) -> Result<()> {
        let b = plan.binding_for(target);
        let chunks = plan.chunks;
        let n = chunks.len() as i32;
        let ids: Vec<i32> = chunks.iter().map(|c| c.id as i32).collect();
        let starts: Vec<i64> = chunks.iter().map(|c| c.start).collect();
        let ends: Vec<i64> = chunks.iter().map(|c| c.end).collect();
        let sets: Vec<i32> = chunks.iter().map(|c| c.replica_set as i32).collect();
        let bound = |f: fn(&ClusteringRange) -> &Option<Vec<Vec<u8>>>| -> Vec<Option<Vec<u8>>> {
            chunks
                .iter()
                .map(|c| {
                    c.clustering
                        .as_ref()
                        .and_then(|r| f(r).as_deref().map(encode_bound))
                })
                .collect()
        };
        let los = bound(|r| &r.lo);
        let his = bound(|r| &r.hi);
        let by_job: [(&(dyn ToSql + Sync), Type); 1] = [(&plan.job, Type::TEXT)];
        let clear_chunks = format!("DELETE FROM {} WHERE job = $1", self.t("ferry_chunks"));
        let clear_runs = format!("DELETE FROM {} WHERE job = $1", self.t("ferry_runs"));
        let clear_rejects = format!("DELETE FROM {} WHERE job = $1", self.rejects_table());
        let runs_sql = format!(
            "INSERT INTO {} (job, run_id, source, target, chunks, source_id, target_oid, \
               target_relfilenode, mapping) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            self.t("ferry_runs")
        );
        let chunks_sql = format!(
            "INSERT INTO {} (job, chunk_id, start_token, end_token, replica_set, ck_lo, ck_hi) \
             SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::int[], \
               $6::bytea[], $7::bytea[])",
            self.t("ferry_chunks")
        );
        let run_row: [(&(dyn ToSql + Sync), Type); 9] = [
            (&plan.job, Type::TEXT),
            (&plan.run_id, Type::TEXT),
            (&plan.source, Type::TEXT),
            (&plan.target, Type::TEXT),
            (&n, Type::INT4),
            (&b.source_id, Type::TEXT),
            (&b.target_oid, Type::INT8),
            (&b.target_relfilenode, Type::INT8),
            (&b.mapping, Type::TEXT),
        ];
        let chunk_rows: [(&(dyn ToSql + Sync), Type); 7] = [
            (&plan.job, Type::TEXT),
            (&ids, Type::INT4_ARRAY),
            (&starts, Type::INT8_ARRAY),
            (&ends, Type::INT8_ARRAY),
            (&sets, Type::INT4_ARRAY),
            (&los, Type::BYTEA_ARRAY),
            (&his, Type::BYTEA_ARRAY),
        ];
        tokio::try_join!(
            client.execute_typed(&clear_chunks, &by_job),
            client.execute_typed(&clear_runs, &by_job),
            client.execute_typed(&clear_rejects, &by_job),
            client.execute_typed(&runs_sql, &run_row),
            client.execute_typed(&chunks_sql, &chunk_rows),
        )?;
        Ok(())
    }

    /// Forgets a job's plan and progress (`--fresh`).
    pub async fn forget(&self, client: &Client, job: &str) -> Result<()> {
        // Both in one round trip; each statement is its own transaction, and a rerun repeats
        // whichever did not happen.
        let chunks = format!("DELETE FROM {} WHERE job = $1", self.t("ferry_chunks"));
        let runs = format!("DELETE FROM {} WHERE job = $1", self.t("ferry_runs"));
        let rejects = format!("DELETE FROM {} WHERE job = $1", self.rejects_table());
        let by_job: [(&(dyn ToSql + Sync), Type); 1] = [(&job, Type::TEXT)];
        tokio::try_join!(
            client.execute_typed(&chunks, &by_job),
            client.execute_typed(&runs, &by_job),
            client.execute_typed(&rejects, &by_job),
        )?;
        Ok(())
    }

    /// Prepares, on one connection, the statements a worker runs for every chunk, so each
    /// costs one round trip (and those of a chunk's start and end go out together).
    pub async fn chunk_statements(&self, client: &Client) -> Result<ChunkStatements> {
        let c = self.t("ferry_chunks");
        // The row lock IS the lease: it lasts as long as the chunk's transaction, dies with its
        // connection, and no other worker can take the row meanwhile (SKIP LOCKED). One row
        // always: when no chunk is free, the chunks not done are counted instead (the count is
        // an InitPlan, run only when the CASE reaches it), so that the worker learns whether
        // the table is copied without another round trip.
        let lease_sql = format!(
            "SELECT l.chunk_id, l.start_token, l.end_token, l.replica_set, l.ck_lo, l.ck_hi, \
               CASE WHEN l.chunk_id IS NULL THEN \
                 (SELECT count(*) FROM {c} WHERE job = $1 AND state <> 'done') END \
             FROM (SELECT 1) AS one LEFT JOIN LATERAL \
               (SELECT chunk_id, start_token, end_token, replica_set, ck_lo, ck_hi FROM {c} \
                WHERE job = $1 AND state <> 'done' ORDER BY chunk_id LIMIT 1 \
                FOR UPDATE SKIP LOCKED) AS l ON true"
        );
        // Fails (division by zero) unless exactly this row turned done, so a COMMIT sent behind
        // it in the same flight can never commit rows without their done mark.
        let complete_sql = format!(
            "WITH u AS (UPDATE {c} SET state = 'done', done_at = now(), rows_written = $3, \
               rows_rejected = $4, owner = $5, attempts = attempts + 1, lease_until = NULL \
               WHERE job = $1 AND chunk_id = $2 AND state <> 'done' RETURNING 1) \
             SELECT 1 / count(*)::int FROM u"
        );
        let rejects_sql = rejects::insert_sql(&self.rejects_table());
        let (lease, complete, rejects) = tokio::try_join!(
            client.prepare(&lease_sql),
            client.prepare(&complete_sql),
            client.prepare(&rejects_sql),
        )
        .context("preparing the chunk statements")?;
        Ok(ChunkStatements {
            lease,
            complete,
            rejects,
        })
    }

    /// Opens the chunk's transaction and leases (row-locks) the next chunk not done and not
    /// held by another worker, in one round trip; when none is free, counts the chunks not
    /// done. The transaction is left open either way: on [`Leased::Nothing`] the caller rolls
    /// it back ([`roll_back_unwaited`]).
    pub async fn begin_lease(
        &self,
        client: &Client,
        st: &ChunkStatements,
        job: &str,
    ) -> Result<Leased, tokio_postgres::Error> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&job];
        let (begin, row) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.query_one(&st.lease, &params)
        );
        begin?;
        let r = row?;
        if r.get::<_, Option<i32>>(0).is_none() {
            let unfinished: Option<i64> = r.get(6);
            return Ok(Leased::Nothing {
                unfinished: unfinished.unwrap_or(0).max(0) as u64,
            });
        }
        Ok(Leased::Chunk({
            // A stored bound that does not decode comes back empty, which the reader refuses
            // (it has the wrong number of values) instead of reading a wider range.
            let bound = |i: usize| {
                r.get::<_, Option<Vec<u8>>>(i)
                    .map(|b| decode_bound(&b).unwrap_or_default())
            };
            let (lo, hi) = (bound(4), bound(5));
            Lease {
                chunk_id: r.get::<_, i32>(0) as u32,
                start: r.get(1),
                end: r.get(2),
                replica_set: r.get::<_, i32>(3) as usize,
                clustering: (lo.is_some() || hi.is_some()).then_some(ClusteringRange { lo, hi }),
            }
        }))
    }

    /// Records the chunk's rejected rows, marks the leased chunk done and commits its
    /// transaction, in one round trip. Exactly-once hinges on this: rows, rejects and done mark
    /// commit together or not at all.
    pub async fn complete_commit(
        &self,
        client: &Client,
        st: &ChunkStatements,
        done: &ChunkDone<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        let id = done.chunk_id as i32;
        let (rows, rejected) = (done.rows as i64, done.rejects.len() as i64);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&done.job, &id, &rows, &rejected, &done.owner];
        let columns = rejects::Columns::of(done.rejects);
        let insert_rejects = async {
            if done.rejects.is_empty() {
                return Ok(0);
            }
            let [a, b, c, d, e] = columns.params();
            let p: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
                [&done.job, &id, &done.table, a, b, c, d, e];
            client.execute(&st.rejects, &p).await
        };
        // Sent in this order in one flight: the rejects, the done mark, COMMIT.
        let (inserted, marked, commit) = tokio::join!(
            insert_rejects,
            client.query_one(&st.complete, &params),
            client.batch_execute("COMMIT")
        );
        // After a failed statement the server answers COMMIT with a rollback, not an error:
        // the statements' results decide.
        inserted?;
        marked?;
        commit
    }

    /// Marks the job finished when no chunk is left.
    pub async fn finish_if_done(&self, client: &Client, job: &str) -> Result<bool> {
        let n = client
            .execute_typed(
                &format!(
                    "UPDATE {r} SET finished_at = now() WHERE job = $1 AND finished_at IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM {c} WHERE job = $1 AND state <> 'done')",
                    r = self.t("ferry_runs"),
                    c = self.t("ferry_chunks")
                ),
                &[(&job, Type::TEXT)],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn status(&self, client: &Client, job: &str) -> Result<Option<StatusCounts>> {
        let exists = client
            .query_opt(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'ferry_chunks'",
                &[&self.schema],
            )
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let r = client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM (SELECT 1 FROM {c} WHERE job = $1 AND state <> 'done' \
                              FOR SHARE SKIP LOCKED) free), \
                            count(*) FILTER (WHERE state <> 'done'), \
                            count(*) FILTER (WHERE state = 'done'), \
                            coalesce(sum(rows_written), 0)::bigint, coalesce(sum(rows_rejected), 0)::bigint, \
                            extract(epoch FROM min(done_at))::float8, extract(epoch FROM max(done_at))::float8, \
                            count(*) \
                     FROM {c} WHERE job = $1",
                    c = self.t("ferry_chunks")
                ),
                &[&job],
            )
            .await?;
        if r.get::<_, i64>(7) == 0 {
            return Ok(None);
        }
        // A chunk in progress is one a worker's transaction holds locked; the rest not done
        // are pending.
        let free = r.get::<_, i64>(0) as u64;
        let not_done = r.get::<_, i64>(1) as u64;
        Ok(Some(StatusCounts {
            pending: free,
            leased: not_done.saturating_sub(free),
            done: r.get::<_, i64>(2) as u64,
            rows: r.get::<_, i64>(3) as u64,
            rejected: r.get::<_, i64>(4) as u64,
            first_done: r.get(5),
            last_done: r.get(6),
        }))
    }
}

impl Progress {
    /// Every job in the progress tables: (job key, source, target, chunks, finished).
    pub async fn jobs(&self, client: &Client) -> Result<Vec<(String, String, String, i32, bool)>> {
        let exists = client
            .query_opt(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'ferry_runs'",
                &[&self.schema],
            )
            .await?
            .is_some();
        if !exists {
            return Ok(vec![]);
        }
        let rows = client
            .query(
                &format!(
                    "SELECT job, source, target, chunks, finished_at IS NOT NULL FROM {} ORDER BY created_at",
                    self.t("ferry_runs")
                ),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }
}

/// Whether a stored plan still describes its tables, for `ferry status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Nothing it describes was replaced: a rerun resumes it.
    Current,
    /// The target table is not there: a rerun needs `--create-tables` (and then starts over).
    TargetMissing,
    /// A rerun refuses it (see [`StaleProgress`]).
    Stale(Vec<Change>),
}

impl Progress {
    /// Judges the stored plan of `job` against the target table `target` (quoted, qualified) as
    /// it is now, and against the source table's id when the caller could read it. The mapping
    /// is not checked here: that needs the source schema, which `ferry migrate` reads.
    pub async fn standing(
        &self,
        client: &Client,
        job: &str,
        target: &str,
        source_id: Option<String>,
    ) -> Result<Option<Standing>> {
        let Some(stored) = self.stored_plan(client, job).await? else {
            return Ok(None);
        };
        let exists = client
            .query_typed_opt(
                "SELECT 1 WHERE to_regclass($1) IS NOT NULL",
                &[(&target, Type::TEXT)],
            )
            .await?
            .is_some();
        if !exists {
            return Ok(Some(Standing::TargetMissing));
        }
        let mut now = target_now(client, target, false).await?;
        if needs_exact_count(&stored, &now) {
            now = target_now(client, target, true).await?;
        }
        let binding = Binding {
            source_id,
            target_oid: now.oid,
            target_relfilenode: now.relfilenode,
            mapping: stored.mapping.clone().unwrap_or_default(),
        };
        Ok(Some(match judge(Some(&stored), &binding, &now, false) {
            Verdict::Stale(changes) => Standing::Stale(changes),
            _ => Standing::Current,
        }))
    }
}

/// The job key: one source table into one target table. Rerunning the same command finds it.
pub fn job_key(source: &str, target: &str) -> String {
    format!("{source} -> {target}")
}

/// The key of a catch-up pass of the table `key` names, from `since_us` (the `--since` time
/// as given or resolved, before the clock-skew margin): each pass keeps its own plan and
/// progress, so a killed pass resumes and a completed one is a start for the next.
pub fn catch_up_key(key: &str, since_us: i64) -> String {
    format!("{key} [since {}]", crate::job::rfc3339_us(since_us))
}

impl Progress {
    /// When the table's latest completed pass (the bulk copy or a catch-up, `key` being the
    /// bulk copy's) started, in µs since the Unix epoch; `None` without one (or without
    /// progress tables).
    pub async fn last_pass_start(&self, client: &Client, key: &str) -> Result<Option<i64>> {
        let runs = self.t("ferry_runs");
        let exists: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&runs])
            .await?
            .get(0);
        if exists.is_none() {
            return Ok(None);
        }
        let row = client
            .query_one(
                &format!(
                    "SELECT floor(extract(epoch FROM max(created_at)) * 1000000)::int8 FROM {runs} \
                     WHERE (job = $1 OR starts_with(job, $1 || ' [since ')) AND finished_at IS NOT NULL"
                ),
                &[&key],
            )
            .await
            .context("reading the previous passes")?;
        Ok(row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredPlan {
        StoredPlan {
            source_id: Some("s1".into()),
            target_oid: Some(10),
            target_relfilenode: Some(20),
            mapping: Some("m".into()),
            chunks: 8,
            done_chunks: 8,
            rows_done: 1000,
            rows_rejected: 0,
        }
    }

    fn now() -> Binding {
        Binding {
            source_id: Some("s1".into()),
            target_oid: 10,
            target_relfilenode: 20,
            mapping: "m".into(),
        }
    }

    fn target(has_rows: bool, rows: Option<RowCount>) -> TargetNow {
        TargetNow {
            oid: 10,
            relfilenode: 20,
            has_rows,
            rows,
        }
    }

    #[test]
    fn judge_tells_each_change() {
        let full = target(true, None);
        let resume = Verdict::Resume { adopt: false };
        assert_eq!(judge(None, &now(), &full, false), Verdict::New);
        assert_eq!(judge(Some(&stored()), &now(), &full, false), resume);
        // A table this run created voids whatever was stored, whatever else changed.
        assert_eq!(
            judge(Some(&stored()), &now(), &target(false, None), true),
            Verdict::Restart
        );
        let stale = |c: Vec<Change>| Verdict::Stale(c);
        let recreated = Binding {
            target_oid: 11,
            target_relfilenode: 21,
            ..now()
        };
        assert_eq!(
            judge(Some(&stored()), &recreated, &full, false),
            stale(vec![Change::TargetRecreated])
        );
        // Emptied with the same file (DELETE, or YugabyteDB's in-place TRUNCATE).
        assert_eq!(
            judge(Some(&stored()), &now(), &target(false, None), false),
            stale(vec![Change::TargetEmptied])
        );
        // A new file: truncated and partly refilled vs a rewrite that kept every row.
        let new_file = Binding {
            target_relfilenode: 21,
            ..now()
        };
        assert_eq!(
            judge(
                Some(&stored()),
                &new_file,
                &target(true, Some(RowCount::Exact(10))),
                false
            ),
            stale(vec![Change::TargetEmptied])
        );
        assert_eq!(
            judge(
                Some(&stored()),
                &new_file,
                &target(true, Some(RowCount::Exact(1000))),
                false
            ),
            Verdict::Resume { adopt: true }
        );
        let source = Binding {
            source_id: Some("s2".into()),
            mapping: "m2".into(),
            ..now()
        };
        assert_eq!(
            judge(Some(&stored()), &source, &full, false),
            stale(vec![Change::SourceRecreated, Change::MappingChanged])
        );
    }

    #[test]
    fn plans_stored_before_binding_are_adopted_unless_emptied() {
        let legacy = StoredPlan {
            chunks: 8,
            done_chunks: 3,
            rows_done: 300,
            ..StoredPlan::default()
        };
        assert_eq!(
            judge(Some(&legacy), &now(), &target(true, None), false),
            Verdict::Resume { adopt: true }
        );
        assert_eq!(
            judge(Some(&legacy), &now(), &target(false, None), false),
            Verdict::Stale(vec![Change::TargetEmptied])
        );
        // Nothing done yet: an empty target is what the plan describes.
        let untouched = StoredPlan {
            rows_done: 0,
            done_chunks: 0,
            ..stored()
        };
        assert_eq!(
            judge(Some(&untouched), &now(), &target(false, None), false),
            Verdict::Resume { adopt: false }
        );
    }

    #[test]
    fn only_a_new_file_under_rows_needs_an_exact_count() {
        let t = target(true, None);
        assert!(!needs_exact_count(&stored(), &t));
        let moved = TargetNow {
            relfilenode: 21,
            ..t.clone()
        };
        assert!(needs_exact_count(&stored(), &moved));
        let empty = TargetNow {
            has_rows: false,
            ..moved
        };
        assert!(!needs_exact_count(&stored(), &empty));
    }

    #[test]
    fn a_resume_reports_counts_that_disagree() {
        let bound = |rows| Bound {
            verdict: Verdict::Resume { adopt: false },
            stored: Some(stored()),
            target: target(true, rows),
        };
        assert_eq!(bound(Some(RowCount::Exact(1000))).count_mismatch(), None);
        assert_eq!(
            bound(Some(RowCount::Exact(970))).count_mismatch(),
            Some((970, true, 1000))
        );
        // Estimates run late after bulk loads: only a big shortfall speaks.
        assert_eq!(bound(Some(RowCount::Estimate(700))).count_mismatch(), None);
        assert_eq!(
            bound(Some(RowCount::Estimate(400))).count_mismatch(),
            Some((400, false, 1000))
        );
        assert_eq!(bound(None).count_mismatch(), None);
    }

    #[test]
    fn the_refusal_is_one_line_naming_table_change_and_fix() {
        let e = StaleProgress {
            source_table: "ks.t".into(),
            target_table: "s.t".into(),
            changes: vec![Change::SourceRecreated],
            done_chunks: 5,
            rows_done: 500,
            target_has_rows: true,
        };
        let msg = e.to_string();
        assert_eq!(
            msg,
            "ks.t → s.t: stored progress no longer matches: the source table was dropped and \
             recreated after 5 chunks (500 rows) were copied; nothing was written — rerun with \
             --fresh --truncate to copy this table again"
        );
        assert!(!msg.contains('\n'));
    }
}
