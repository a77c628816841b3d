//! Progress in the target database: the plan and each chunk's state live in a schema of the
//! target (`ferry` by default), so a rerun resumes, several workers share one plan by leasing
//! chunks (a row lock taken with `FOR UPDATE SKIP LOCKED` in the chunk's own transaction), and a chunk's done mark commits in the same transaction as
//! its rows. The target database is the coordinator; there is no ferry server.

use anyhow::{Context, Result};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::plan::Chunk;
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
    unfinished: tokio_postgres::Statement,
}

/// A chunk this worker holds a lease on: its row is locked by the worker's open transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub chunk_id: u32,
    pub start: i64,
    pub end: i64,
    pub replica_set: usize,
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

impl Progress {
    pub fn new(schema: &str) -> Self {
        Progress {
            schema: schema.to_string(),
        }
    }

    fn t(&self, name: &str) -> String {
        format!("{}.{}", pg_ident(&self.schema), pg_ident(name))
    }

    /// Creates the progress schema and tables when missing, in one round trip: statements sent
    /// together run as one transaction, which holds the DDL lock to its end.
    pub async fn ensure(&self, client: &Client) -> Result<()> {
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
                   finished_at timestamptz
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
                   PRIMARY KEY (job, chunk_id)
                 );",
                schema = pg_ident(&self.schema),
                runs = self.t("ferry_runs"),
                chunks = self.t("ferry_chunks"),
            ))
            .await
            .with_context(|| format!("creating the progress tables in schema {}", self.schema))?;
        Ok(())
    }

    /// Stores the plan for `job` unless one is stored already (then the stored plan wins, so a
    /// rerun or a second worker sees the same chunks). Returns whether a stored plan was found.
    /// Two round trips: BEGIN, the job's lock and the lookup go out together, then the inserts
    /// and COMMIT (which rolls back if an insert failed).
    pub async fn store_plan(
        &self,
        client: &Client,
        job: &str,
        run_id: &str,
        source: &str,
        target: &str,
        chunks: &[Chunk],
    ) -> Result<bool> {
        let stored: Result<bool> = async {
            // The advisory lock serializes concurrent first runs of the same job.
            let by_job: [(&(dyn ToSql + Sync), Type); 1] = [(&job, Type::TEXT)];
            let lookup = format!("SELECT 1 FROM {} WHERE job = $1", self.t("ferry_runs"));
            let (_, _, found) = tokio::try_join!(
                client.batch_execute("BEGIN"),
                client.execute_typed("SELECT pg_advisory_xact_lock(hashtext($1))", &by_job),
                client.query_typed_opt(&lookup, &by_job),
            )?;
            if found.is_some() {
                client.batch_execute("COMMIT").await?;
                return Ok(true);
            }
            let n = chunks.len() as i32;
            let ids: Vec<i32> = chunks.iter().map(|c| c.id as i32).collect();
            let starts: Vec<i64> = chunks.iter().map(|c| c.start).collect();
            let ends: Vec<i64> = chunks.iter().map(|c| c.end).collect();
            let sets: Vec<i32> = chunks.iter().map(|c| c.replica_set as i32).collect();
            let runs_sql = format!(
                "INSERT INTO {} (job, run_id, source, target, chunks) VALUES ($1, $2, $3, $4, $5)",
                self.t("ferry_runs")
            );
            let chunks_sql = format!(
                "INSERT INTO {} (job, chunk_id, start_token, end_token, replica_set) \
                 SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::int[])",
                self.t("ferry_chunks")
            );
            let run_row: [(&(dyn ToSql + Sync), Type); 5] = [
                (&job, Type::TEXT),
                (&run_id, Type::TEXT),
                (&source, Type::TEXT),
                (&target, Type::TEXT),
                (&n, Type::INT4),
            ];
            let chunk_rows: [(&(dyn ToSql + Sync), Type); 5] = [
                (&job, Type::TEXT),
                (&ids, Type::INT4_ARRAY),
                (&starts, Type::INT8_ARRAY),
                (&ends, Type::INT8_ARRAY),
                (&sets, Type::INT4_ARRAY),
            ];
            tokio::try_join!(
                client.execute_typed(&runs_sql, &run_row),
                client.execute_typed(&chunks_sql, &chunk_rows),
                client.batch_execute("COMMIT"),
            )?;
            Ok(false)
        }
        .await;
        if stored.is_err() {
            // The transaction may be left open after a failed statement.
            let _ = client.batch_execute("ROLLBACK").await;
        }
        stored
    }

    /// Forgets a job's plan and progress (`--fresh`).
    pub async fn forget(&self, client: &Client, job: &str) -> Result<()> {
        // Both in one round trip; each statement is its own transaction, and a rerun repeats
        // whichever did not happen.
        let chunks = format!("DELETE FROM {} WHERE job = $1", self.t("ferry_chunks"));
        let runs = format!("DELETE FROM {} WHERE job = $1", self.t("ferry_runs"));
        let by_job: [(&(dyn ToSql + Sync), Type); 1] = [(&job, Type::TEXT)];
        tokio::try_join!(
            client.execute_typed(&chunks, &by_job),
            client.execute_typed(&runs, &by_job),
        )?;
        Ok(())
    }

    /// Prepares, on one connection, the statements a worker runs for every chunk, so each
    /// costs one round trip (and those of a chunk's start and end go out together).
    pub async fn chunk_statements(&self, client: &Client) -> Result<ChunkStatements> {
        let c = self.t("ferry_chunks");
        // The row lock IS the lease: it lasts as long as the chunk's transaction, dies with its
        // connection, and no other worker can take the row meanwhile (SKIP LOCKED).
        let lease_sql = format!(
            "SELECT chunk_id, start_token, end_token, replica_set FROM {c} \
             WHERE job = $1 AND state <> 'done' ORDER BY chunk_id LIMIT 1 FOR UPDATE SKIP LOCKED"
        );
        // Fails (division by zero) unless exactly this row turned done, so a COMMIT sent behind
        // it in the same flight can never commit rows without their done mark.
        let complete_sql = format!(
            "WITH u AS (UPDATE {c} SET state = 'done', done_at = now(), rows_written = $3, \
               rows_rejected = $4, owner = $5, attempts = attempts + 1, lease_until = NULL \
               WHERE job = $1 AND chunk_id = $2 AND state <> 'done' RETURNING 1) \
             SELECT 1 / count(*)::int FROM u"
        );
        let unfinished_sql = format!("SELECT count(*) FROM {c} WHERE job = $1 AND state <> 'done'");
        let (lease, complete, unfinished) = tokio::try_join!(
            client.prepare(&lease_sql),
            client.prepare(&complete_sql),
            client.prepare(&unfinished_sql),
        )
        .context("preparing the chunk statements")?;
        Ok(ChunkStatements {
            lease,
            complete,
            unfinished,
        })
    }

    /// Opens the chunk's transaction and leases (row-locks) the next chunk not done and not
    /// held by another worker, in one round trip. On `Ok(None)` the transaction is still open:
    /// the caller rolls it back.
    pub async fn begin_lease(
        &self,
        client: &Client,
        st: &ChunkStatements,
        job: &str,
    ) -> Result<Option<Lease>, tokio_postgres::Error> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&job];
        let (begin, row) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.query_opt(&st.lease, &params)
        );
        begin?;
        Ok(row?.map(|r| Lease {
            chunk_id: r.get::<_, i32>(0) as u32,
            start: r.get(1),
            end: r.get(2),
            replica_set: r.get::<_, i32>(3) as usize,
        }))
    }

    /// Marks the leased chunk done and commits its transaction, in one round trip. Exactly-once
    /// hinges on this: rows and done mark commit together or not at all.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_commit(
        &self,
        client: &Client,
        st: &ChunkStatements,
        job: &str,
        owner: &str,
        chunk_id: u32,
        rows: u64,
        rejected: u64,
    ) -> Result<(), tokio_postgres::Error> {
        let (id, rows, rejected) = (chunk_id as i32, rows as i64, rejected as i64);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&job, &id, &rows, &rejected, &owner];
        let (done, commit) = tokio::join!(
            client.query_one(&st.complete, &params),
            client.batch_execute("COMMIT")
        );
        // After a failed statement the server answers COMMIT with a rollback, not an error:
        // the done mark's result decides.
        done?;
        commit
    }

    /// Chunks not done yet, including those other workers hold right now.
    pub async fn unfinished(
        &self,
        client: &Client,
        st: &ChunkStatements,
        job: &str,
    ) -> Result<u64, tokio_postgres::Error> {
        let n: i64 = client.query_one(&st.unfinished, &[&job]).await?.get(0);
        Ok(n as u64)
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

/// The job key: one source table into one target table. Rerunning the same command finds it.
pub fn job_key(source: &str, target: &str) -> String {
    format!("{source} -> {target}")
}
