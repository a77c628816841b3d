//! `ferry validate --repair`: makes the target equal to the source where a validation found
//! them apart.
//!
//! - A row missing from the target, or different there, is read again from Cassandra by its
//!   key and written as an upsert that replaces whatever the target holds (no write time
//!   guard: the source, read now, is right), through the migration's own encoder and writer.
//! - A row the source no longer has when read again (deleted or expired since the
//!   validation) is deleted from the target.
//! - A row only in the target (deleted at the source during the copy) is deleted.
//! - With `ferry.expiresColumn`, target rows past their expiry are deleted.
//!
//! Each batch of rows is one transaction, so a repair stopped midway leaves whole batches,
//! and running it again (it validates first) repairs what is left: it is idempotent. Memory is
//! bounded by the rows one validation narrows (`max_detail_rows`) and one batch's rows.

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use scylla::client::session::Session;

use super::{target, DiffKind, RowDiff, Shape};
use crate::encode;
use crate::job::{time_columns, Job, PreparedTable};
use crate::pipeline::RowEncoder;
use crate::row_times::RowTimes;
use crate::sink::{self, InsertMode, TableWriter, TargetFacts};
use crate::source::RangeReader;

/// What a repair changed in one table (with `dry_run`: would change).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// Rows missing from the target, read again and written.
    pub upserted_missing: u64,
    /// Rows that differed, read again and written over the target's.
    pub upserted_different: u64,
    /// Rows only in the target, deleted.
    pub deleted_extra: u64,
    /// Rows the source no longer had when read again, deleted from the target.
    pub deleted_gone: u64,
    /// Target rows past their expiry (`ferry.expiresColumn`), deleted.
    pub deleted_expired: u64,
    /// Rows ferry cannot write as they are (the migration rejects them too): left alone.
    pub rejected: u64,
}

impl Repair {
    /// Rows changed in all.
    pub fn changed(&self) -> u64 {
        self.upserted_missing
            + self.upserted_different
            + self.deleted_extra
            + self.deleted_gone
            + self.deleted_expired
    }

    pub fn add(&mut self, o: &Repair) {
        self.upserted_missing += o.upserted_missing;
        self.upserted_different += o.upserted_different;
        self.deleted_extra += o.deleted_extra;
        self.deleted_gone += o.deleted_gone;
        self.deleted_expired += o.deleted_expired;
        self.rejected += o.rejected;
    }
}

/// Rows read again and written per transaction.
const BATCH: usize = 1_000;
/// Key reads in flight at once.
const READS: usize = 32;

/// Repairs one table from a validation's `diffs` (see the module docs).
pub async fn repair_table(
    session: &Session,
    table: &PreparedTable,
    job: &Job,
    facts: &TargetFacts,
    diffs: &[RowDiff],
    dry_run: bool,
) -> Result<Repair> {
    let m = &table.mapping;
    let shape = Shape::new(table, &job.settings.row_times);
    let (host, port) = &facts.nodes[0];
    let client = job.target.connect(host, *port).await?;
    let mut scanned = m.source.clone();
    scanned.times = RowTimes {
        writetime: job.settings.row_times.writetime.is_some(),
        ttl: job.settings.row_times.expires.is_some(),
    };
    let reader = RangeReader::for_keys(session, &scanned, &job.settings.read_settings()).await?;
    let constants =
        sink::encode_constants(&client, &m.target_schema, &m.target_table, &job.constants).await?;
    let encoder = RowEncoder::new(&scanned, constants, job.settings.row_times.clone(), None);
    let mut names = time_columns(job);
    names.extend(job.constants.iter().map(|(n, _)| n.clone()));
    // The source as read now is right: no write time guard.
    let writer = TableWriter::new(m, &names, InsertMode::Upsert, job.yb, facts.kind, None);

    let mut out = Repair::default();
    let from_source: Vec<&RowDiff> = diffs
        .iter()
        .filter(|d| d.kind != DiffKind::Extra && d.source_key.is_some())
        .collect();
    for batch in from_source.chunks(BATCH) {
        let pages: Vec<_> = futures::stream::iter(batch.iter().map(|d| {
            let key = &d.source_key.as_ref().expect("filtered").cql;
            let reader = &reader;
            async move {
                let asked = crate::row_times::now_secs();
                (reader.key_page(key).await, asked)
            }
        }))
        .buffered(READS)
        .collect()
        .await;
        let mut buf = BytesMut::new();
        encode::copy_header(&mut buf);
        let mut rejected = Vec::new();
        let mut gone: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut part = Repair::default();
        for (d, (page, asked)) in batch.iter().zip(pages) {
            let page = page.with_context(|| format!("reading {} again", m.source.qualified()))?;
            let before = rejected.len();
            let n = encoder.encode_page(page.result, asked, &mut buf, &mut rejected)?;
            if n.written > 0 {
                match d.kind {
                    DiffKind::Missing => part.upserted_missing += 1,
                    _ => part.upserted_different += 1,
                }
            } else if rejected.len() > before {
                part.rejected += 1;
            } else if d.kind == DiffKind::Different {
                // Gone from the source (deleted or expired) since the validation read it.
                match &d.source_key.as_ref().expect("filtered").pg {
                    Some(k) => {
                        gone.push(k.clone());
                        part.deleted_gone += 1;
                    }
                    None => part.rejected += 1,
                }
            }
        }
        encode::copy_trailer(&mut buf);
        if !dry_run && (part.upserted_missing + part.upserted_different + part.deleted_gone) > 0 {
            let written = part.upserted_missing + part.upserted_different;
            in_transaction(&client, async {
                if written > 0 {
                    writer.prepare_tx(&client).await?;
                    let sink = client.copy_in::<_, Bytes>(&writer.copy_sql).await?;
                    futures::pin_mut!(sink);
                    sink.send(buf.freeze()).await?;
                    sink.finish().await?;
                    writer.finish_tx(&client).await?;
                }
                target::delete_keys(&client, &shape, &gone).await?;
                Ok(())
            })
            .await
            .with_context(|| format!("repairing {}", m.qualified_target()))?;
        }
        out.add(&part);
    }

    let extra: Vec<serde_json::Value> = diffs
        .iter()
        .filter(|d| d.kind == DiffKind::Extra)
        .map(|d| d.primary_key.clone())
        .collect();
    for batch in extra.chunks(BATCH) {
        out.deleted_extra += if dry_run {
            batch.len() as u64
        } else {
            in_transaction(&client, target::delete_json_keys(&client, &shape, batch))
                .await
                .with_context(|| format!("deleting rows only in {}", m.qualified_target()))?
        };
    }

    if let Some(col) = &job.settings.row_times.expires {
        let col = crate::schema::pg_ident(col);
        let q = m.qualified_target();
        out.deleted_expired = if dry_run {
            let n: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM {q} WHERE {col} <= now()"),
                    &[],
                )
                .await?
                .get(0);
            n as u64
        } else {
            client
                .execute(&format!("DELETE FROM {q} WHERE {col} <= now()"), &[])
                .await
                .with_context(|| format!("deleting the expired rows of {q}"))?
        };
    }
    Ok(out)
}

/// Runs `f` between BEGIN and COMMIT (ROLLBACK when it fails).
async fn in_transaction<T>(
    client: &tokio_postgres::Client,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    client.batch_execute("BEGIN").await?;
    match f.await {
        Ok(v) => {
            client.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// A repair of every table of a job: validations and repairs until the tables are equal.
pub struct RepairRun {
    /// The last validation of each table (equal, unless something could not be repaired).
    pub tables: Vec<super::TableValidation>,
    /// What was changed in each table (dry run: what would be), over every round.
    pub repairs: Vec<Repair>,
    /// Validations that were followed by a repair.
    pub rounds: u32,
}

/// Most repair rounds: one normally does it; more when a validation could not narrow every
/// differing bucket (`max_detail_rows`), or the source changed meanwhile.
const MAX_ROUNDS: u32 = 5;

/// Validates every table in full, repairs what differs, and validates again, until every
/// table is equal or a round changes nothing; with `dry_run`, validates once and counts what a
/// repair would change. Refused (nothing written) when a target table's primary key is not the
/// source's: rows are replaced and deleted by key.
pub async fn repair_job(
    job: &Job,
    prepared: &crate::job::Prepared,
    opts: &super::Options,
    rejects: &super::Rejects,
    counters: &std::sync::Arc<super::Counters>,
    dry_run: bool,
) -> Result<RepairRun> {
    let (host, port) = &prepared.facts.nodes[0];
    let client = job.target.connect(host, *port).await?;
    for t in &prepared.tables {
        let q = t.mapping.qualified_target();
        let have = sink::primary_key_columns(&client, &q).await?;
        let (mut a, mut b) = (have.clone(), t.mapping.primary_key.clone());
        a.sort();
        b.sort();
        if a != b {
            anyhow::bail!(
                "--repair replaces and deletes rows of {q} by the source's primary key ({}), but {q} has {} — give it that primary key, or validate without --repair",
                t.mapping.primary_key.join(", "),
                if have.is_empty() {
                    "none".to_string()
                } else {
                    format!("({})", have.join(", "))
                }
            );
        }
    }
    drop(client);
    let mut repairs = vec![Repair::default(); prepared.tables.len()];
    let mut rounds = 0;
    loop {
        let tables = super::validate_job(job, prepared, opts, rejects, counters).await?;
        let done = tables.iter().all(super::TableValidation::equal);
        if done || rounds >= MAX_ROUNDS {
            return Ok(RepairRun {
                tables,
                repairs,
                rounds,
            });
        }
        rounds += 1;
        let mut changed = 0;
        for (i, (t, v)) in prepared.tables.iter().zip(&tables).enumerate() {
            if v.equal() {
                continue;
            }
            let r = repair_table(
                &prepared.session,
                t,
                job,
                &prepared.facts,
                &v.diffs,
                dry_run,
            )
            .await
            .with_context(|| format!("repairing {}", t.mapping.source.qualified()))?;
            changed += r.changed();
            repairs[i].add(&r);
        }
        // A dry run changed nothing; a round that changed nothing has nothing left it can
        // change (rows ferry cannot write): either way, this validation is the answer.
        if dry_run || changed == 0 {
            return Ok(RepairRun {
                tables,
                repairs,
                rounds,
            });
        }
    }
}
