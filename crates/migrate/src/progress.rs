//! Progress in the target database: the plan and each chunk's state live in a schema of the
//! target (`ferry` by default), so a rerun resumes, several workers share one plan by leasing
//! chunks (`FOR UPDATE SKIP LOCKED`), and a chunk's done mark commits in the same transaction as
//! its rows. The target database is the coordinator; there is no ferry server.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio_postgres::{Client, Transaction};

use crate::plan::Chunk;
use crate::schema::pg_ident;

/// The progress tables of one target schema.
#[derive(Clone, Debug)]
pub struct Progress {
    pub schema: String,
}

/// A chunk this worker holds a lease on.
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

    /// Creates the progress schema and tables when missing.
    pub async fn ensure(&self, client: &mut Client) -> Result<()> {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('ferry ddl'))", &[])
            .await?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
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
        tx.commit().await?;
        Ok(())
    }

    /// Stores the plan for `job` unless one is stored already (then the stored plan wins, so a
    /// rerun or a second worker sees the same chunks). Returns whether a stored plan was found.
    pub async fn store_plan(
        &self,
        client: &mut Client,
        job: &str,
        run_id: &str,
        source: &str,
        target: &str,
        chunks: &[Chunk],
    ) -> Result<bool> {
        let tx = client.transaction().await?;
        // Serialize concurrent first runs of the same job.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&job])
            .await?;
        let exists = tx
            .query_opt(
                &format!("SELECT 1 FROM {} WHERE job = $1", self.t("ferry_runs")),
                &[&job],
            )
            .await?
            .is_some();
        if exists {
            tx.commit().await?;
            return Ok(true);
        }
        tx.execute(
            &format!(
                "INSERT INTO {} (job, run_id, source, target, chunks) VALUES ($1, $2, $3, $4, $5)",
                self.t("ferry_runs")
            ),
            &[&job, &run_id, &source, &target, &(chunks.len() as i32)],
        )
        .await?;
        let stmt = tx
            .prepare(&format!(
                "INSERT INTO {} (job, chunk_id, start_token, end_token, replica_set) \
                 SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::int[])",
                self.t("ferry_chunks")
            ))
            .await?;
        let ids: Vec<i32> = chunks.iter().map(|c| c.id as i32).collect();
        let starts: Vec<i64> = chunks.iter().map(|c| c.start).collect();
        let ends: Vec<i64> = chunks.iter().map(|c| c.end).collect();
        let sets: Vec<i32> = chunks.iter().map(|c| c.replica_set as i32).collect();
        tx.execute(&stmt, &[&job, &ids, &starts, &ends, &sets])
            .await?;
        tx.commit().await?;
        Ok(false)
    }

    /// Forgets a job's plan and progress (`--fresh`).
    pub async fn forget(&self, client: &Client, job: &str) -> Result<()> {
        client
            .execute(
                &format!("DELETE FROM {} WHERE job = $1", self.t("ferry_chunks")),
                &[&job],
            )
            .await?;
        client
            .execute(
                &format!("DELETE FROM {} WHERE job = $1", self.t("ferry_runs")),
                &[&job],
            )
            .await?;
        Ok(())
    }

    /// Leases the next chunk that is pending, or whose lease expired (its worker died).
    pub async fn lease(
        &self,
        client: &Client,
        job: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Lease>> {
        let row = client
            .query_opt(
                &format!(
                    "UPDATE {c} SET state = 'leased', owner = $2, attempts = attempts + 1, \
                       lease_until = now() + make_interval(secs => $3) \
                     WHERE (job, chunk_id) = (\
                       SELECT job, chunk_id FROM {c} \
                       WHERE job = $1 AND (state = 'pending' OR (state = 'leased' AND lease_until < now())) \
                       ORDER BY chunk_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING chunk_id, start_token, end_token, replica_set",
                    c = self.t("ferry_chunks")
                ),
                &[&job, &owner, &lease.as_secs_f64()],
            )
            .await
            .context("leasing a chunk")?;
        Ok(row.map(|r| Lease {
            chunk_id: r.get::<_, i32>(0) as u32,
            start: r.get(1),
            end: r.get(2),
            replica_set: r.get::<_, i32>(3) as usize,
        }))
    }

    /// Extends every lease `owner` holds on `job`.
    pub async fn renew(
        &self,
        client: &Client,
        job: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<u64> {
        Ok(client
            .execute(
                &format!(
                    "UPDATE {} SET lease_until = now() + make_interval(secs => $3) \
                     WHERE job = $1 AND owner = $2 AND state = 'leased'",
                    self.t("ferry_chunks")
                ),
                &[&job, &owner, &lease.as_secs_f64()],
            )
            .await?)
    }

    /// Marks a chunk done inside the transaction that wrote its rows. Returns false when the
    /// lease was lost (another worker took the chunk over): the caller must roll back.
    pub async fn complete(
        &self,
        tx: &Transaction<'_>,
        job: &str,
        owner: &str,
        chunk_id: u32,
        rows: u64,
        rejected: u64,
    ) -> Result<bool> {
        let n = tx
            .execute(
                &format!(
                    "UPDATE {} SET state = 'done', done_at = now(), rows_written = $4, rows_rejected = $5, \
                       lease_until = NULL \
                     WHERE job = $1 AND chunk_id = $2 AND owner = $3 AND state = 'leased'",
                    self.t("ferry_chunks")
                ),
                &[&job, &(chunk_id as i32), &owner, &(rows as i64), &(rejected as i64)],
            )
            .await?;
        Ok(n == 1)
    }

    /// Locks this worker's chunk row for the duration of the chunk's transaction. While the lock
    /// is held no other worker can lease the chunk, even after the lease expires (leasing skips
    /// locked rows), so a slow but live worker is never overtaken; a killed one's connection
    /// dies, the lock goes with it, and the lease expiry hands the chunk on. Returns false when
    /// the lease is no longer this worker's.
    pub async fn hold(
        &self,
        tx: &Transaction<'_>,
        job: &str,
        owner: &str,
        chunk_id: u32,
    ) -> Result<bool> {
        Ok(tx
            .query_opt(
                &format!(
                    "SELECT 1 FROM {} WHERE job = $1 AND chunk_id = $2 AND owner = $3 AND state = 'leased' FOR UPDATE",
                    self.t("ferry_chunks")
                ),
                &[&job, &(chunk_id as i32), &owner],
            )
            .await?
            .is_some())
    }

    /// Chunks not done yet: pending, or leased (by anyone).
    pub async fn unfinished(&self, client: &Client, job: &str) -> Result<u64> {
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE job = $1 AND state <> 'done'",
                    self.t("ferry_chunks")
                ),
                &[&job],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// Puts a chunk back to pending (a graceful stop or a failure this worker gives up on).
    pub async fn release(
        &self,
        client: &Client,
        job: &str,
        owner: &str,
        chunk_id: u32,
    ) -> Result<()> {
        client
            .execute(
                &format!(
                    "UPDATE {} SET state = 'pending', owner = NULL, lease_until = NULL \
                     WHERE job = $1 AND chunk_id = $2 AND owner = $3 AND state = 'leased'",
                    self.t("ferry_chunks")
                ),
                &[&job, &(chunk_id as i32), &owner],
            )
            .await?;
        Ok(())
    }

    /// Marks the job finished when no chunk is left.
    pub async fn finish_if_done(&self, client: &Client, job: &str) -> Result<bool> {
        let n = client
            .execute(
                &format!(
                    "UPDATE {r} SET finished_at = now() WHERE job = $1 AND finished_at IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM {c} WHERE job = $1 AND state <> 'done')",
                    r = self.t("ferry_runs"),
                    c = self.t("ferry_chunks")
                ),
                &[&job],
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
                    "SELECT count(*) FILTER (WHERE state = 'pending' OR (state = 'leased' AND lease_until < now())), \
                            count(*) FILTER (WHERE state = 'leased' AND lease_until >= now()), \
                            count(*) FILTER (WHERE state = 'done'), \
                            coalesce(sum(rows_written), 0)::bigint, coalesce(sum(rows_rejected), 0)::bigint, \
                            extract(epoch FROM min(done_at))::float8, extract(epoch FROM max(done_at))::float8, \
                            count(*) \
                     FROM {} WHERE job = $1",
                    self.t("ferry_chunks")
                ),
                &[&job],
            )
            .await?;
        if r.get::<_, i64>(7) == 0 {
            return Ok(None);
        }
        Ok(Some(StatusCounts {
            pending: r.get::<_, i64>(0) as u64,
            leased: r.get::<_, i64>(1) as u64,
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
