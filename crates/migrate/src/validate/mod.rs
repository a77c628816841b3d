//! `ferry validate`: proves the target holds exactly the source's rows, or names the rows and
//! columns that differ.
//!
//! # Canonical form
//! Both sides reduce every row to the same bytes ([`canonical`]): the Cassandra side encodes
//! each cell with ferry's own encoder (exactly what `ferry migrate` writes into binary COPY),
//! the target side reads the same columns in binary form, and the few types PostgreSQL does not
//! send back byte for byte (`numeric`, `jsonb`, array headers) are normalized on both sides.
//! A row's hash is xxh3-64 of those bytes, primary key included.
//!
//! # Full mode: buckets, then rows
//! Cassandra scans by token range and PostgreSQL cannot compute a row's token, so rows are not
//! compared per chunk but per *key-hash bucket*: a hash of the row's canonical primary-key bytes,
//! which both sides compute identically, picks one of `N` buckets (`N` a power of two from 1,024
//! to 1,048,576, about 256 rows each by the size estimates). Pass one streams both sides in
//! parallel and keeps only a row count and an order-independent digest (the wrapping sum of row
//! hashes) per bucket — 16 bytes × `N` per side, whatever the table size. Equal tables (the
//! case that matters) are thus read once per side.
//!
//! Where buckets differ, pass two reads both sides again and keeps, for rows in the differing
//! buckets only, the key, the row hash and one hash per column; comparing those maps gives the
//! rows missing from the target, the extra rows, and the different rows with the columns that
//! differ. Neither side can filter by bucket in the query (the bucket is a hash computed here),
//! so pass two is a full read again; it only runs when something differs. Its memory is bounded
//! by `max_detail_rows`: buckets are narrowed in order until their rows reach it; the rest are
//! counted (buckets and rows) and reported as not narrowed.
//!
//! # Sample mode
//! Reads the first rows of chunks spread over the ring until `rows` source rows are taken, then
//! looks those keys up in the target with binary parameters. It finds missing and different
//! rows among the sampled ones; rows only in the target are out of its reach (that needs full
//! mode).
//!
//! # Rejected rows
//! A row `ferry migrate` rejected is missing from the target by design. It is reported as
//! missing with the reason from the reject file (matched by primary key); a missing row the
//! encoder would reject but that is not in the reject file gets the encoder's reason.

pub mod canonical;
pub mod repair;
mod source;
mod target;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;

use self::canonical::{bucket_of, BucketSet, Buckets, FieldKind, RowBuf};
use self::source::{Scanner, SourceRow, SourceSink};
use self::target::TargetSink;
use crate::cql::CqlType;
use crate::job::{Job, Prepared, PreparedTable};
use crate::pipeline::Settings;
use crate::schema::{pg_ident, ColumnKind};
use crate::sink::{TargetEndpoint, TargetFacts};

/// How much to compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Look up this many source rows in the target.
    Sample { rows: u64 },
    /// Every row of both sides.
    Full,
}

/// How to validate.
#[derive(Clone, Debug)]
pub struct Options {
    pub mode: Mode,
    /// Chunks scanned at once on Cassandra.
    pub source_concurrency: usize,
    /// Connections reading the target at once.
    pub target_streams: usize,
    /// Most rows (both sides) whose details pass two keeps per table.
    pub max_detail_rows: u64,
}

/// Rows reduced so far, for progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub source_rows: AtomicU64,
    pub target_rows: AtomicU64,
    /// Source pages read again after a failed read (the source's retry policy).
    pub pages_reread: AtomicU64,
}

/// What kind of difference a row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiffKind {
    /// In the source, not in the target.
    Missing,
    /// In the target, not in the source.
    Extra,
    /// In both, with different values.
    Different,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Extra => "extra",
            DiffKind::Different => "different",
        }
    }
}

/// Why a missing row is missing, when ferry rejected it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectNote {
    pub column: String,
    pub reason: String,
    /// Found in the reject file (else: the encoder rejects it now, but the file has no entry).
    pub in_reject_file: bool,
}

/// One row that differs.
#[derive(Clone, Debug)]
pub struct RowDiff {
    pub kind: DiffKind,
    /// The primary key by source column name (for extra rows, as PostgreSQL renders it).
    pub primary_key: serde_json::Value,
    /// Source names of the columns that differ (`Different` only).
    pub columns: Vec<String>,
    pub reject: Option<RejectNote>,
    /// A row the source has (missing, different): its key, for `--repair`.
    pub source_key: Option<SourceKey>,
}

/// A source row's primary key, as `--repair` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceKey {
    /// The key cells in CQL wire form, to read the row again.
    pub cql: Vec<Vec<u8>>,
    /// The key columns in PostgreSQL's binary form, to delete the target's row when the
    /// source no longer has it; `None` when a key value cannot be written to PostgreSQL.
    pub pg: Option<Vec<Vec<u8>>>,
}

/// The outcome for one table.
#[derive(Clone, Debug)]
pub struct TableValidation {
    pub source: String,
    pub target: String,
    pub mode: Mode,
    /// Rows read (full) or sampled (sample) from the source.
    pub source_rows: u64,
    /// Rows read (full) or found by key (sample) in the target.
    pub target_rows: u64,
    /// Buckets compared (full mode; 0 in sample mode).
    pub buckets: u32,
    pub buckets_differing: u32,
    pub buckets_narrowed: u32,
    /// Rows (both sides) in differing buckets that were not narrowed down to rows.
    pub rows_not_narrowed: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    /// Every row found to differ, sorted by kind and key.
    pub diffs: Vec<RowDiff>,
    pub elapsed: Duration,
    /// Time of the narrowing pass (zero when nothing differed).
    pub narrow_elapsed: Duration,
    /// Times the table's validation started over after a fault it rode through.
    pub restarts: u32,
}

impl TableValidation {
    pub fn equal(&self) -> bool {
        self.buckets_differing == 0 && self.diffs.is_empty()
    }

    /// Source rows compared per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.source_rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Missing rows explained by the reject file.
    pub fn missing_rejected(&self) -> u64 {
        self.diffs
            .iter()
            .filter(|d| d.reject.as_ref().is_some_and(|r| r.in_reject_file))
            .count() as u64
    }
}

/// The reject file, indexed by table and canonical primary key.
#[derive(Default)]
pub struct Rejects {
    by_table: HashMap<String, HashMap<Vec<u8>, RejectNote>>,
}

impl Rejects {
    /// Reads a reject file (JSON lines with `table`, `primary_key`, `column`, `reason`); a file
    /// that does not exist means no rejects.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Rejects::default()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the reject file {}", path.display()))
            }
        };
        let mut out = Rejects::default();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let Some(key) = v.get("primary_key") else {
                continue;
            };
            out.by_table.entry(field("table")).or_default().insert(
                key_bytes(key),
                RejectNote {
                    column: field("column"),
                    reason: field("reason"),
                    in_reject_file: true,
                },
            );
        }
        Ok(out)
    }

    pub fn for_table(&self, table: &str) -> usize {
        self.by_table.get(table).map_or(0, HashMap::len)
    }

    fn find(&self, table: &str, key: &serde_json::Value) -> Option<&RejectNote> {
        self.by_table.get(table)?.get(&key_bytes(key))
    }
}

/// A JSON key in canonical form, so key order and spacing do not matter.
fn key_bytes(v: &serde_json::Value) -> Vec<u8> {
    let text = serde_json::to_vec(v).unwrap_or_default();
    let mut out = Vec::new();
    match canonical::canonical_json(&text, &mut out) {
        Some(()) => out,
        None => text,
    }
}

/// What both sides need to know about one table.
pub(crate) struct Shape {
    /// Target rows past their expiry (`ferry.expiresColumn`) are absent, as in Cassandra:
    /// `"col" IS NULL OR "col" > now()`.
    pub live_filter: Option<String>,
    pub types: Vec<CqlType>,
    pub kinds: Vec<FieldKind>,
    /// The primary key is the first `key_cols` columns (partition key, then clustering).
    pub key_cols: usize,
    /// Source column names.
    pub names: Vec<String>,
    pub table: String,
    /// Quoted target column names, in source column order.
    pub target_cols: Vec<String>,
    /// The target's column names, unquoted.
    pub target_names: Vec<String>,
    pub partition_cols: Vec<String>,
    pub qualified_target: String,
    pub key_json_sql: String,
}

impl Shape {
    fn new(t: &PreparedTable, row_times: &crate::config::RowTimeColumns) -> Self {
        let m = &t.mapping;
        let key_cols = m
            .source
            .columns
            .iter()
            .take_while(|c| {
                matches!(
                    c.kind,
                    ColumnKind::PartitionKey | ColumnKind::Clustering { .. }
                )
            })
            .count();
        let names: Vec<String> = m.source.columns.iter().map(|c| c.name.clone()).collect();
        let target_names: Vec<String> = m.target_columns.iter().map(|c| c.name.clone()).collect();
        Shape {
            live_filter: row_times.expires.as_ref().map(|c| {
                let c = pg_ident(c);
                format!("({c} IS NULL OR {c} > now())")
            }),
            types: m.source.columns.iter().map(|c| c.ty.clone()).collect(),
            kinds: m
                .target_columns
                .iter()
                .map(|c| FieldKind::of(c.ty))
                .collect(),
            key_cols,
            key_json_sql: target::key_json_sql(&names[..key_cols], &target_names[..key_cols]),
            names,
            table: m.source.qualified(),
            target_cols: target_names.iter().map(|n| pg_ident(n)).collect(),
            target_names: target_names.clone(),
            partition_cols: m
                .source
                .columns
                .iter()
                .zip(&target_names)
                .filter(|(c, _)| c.kind == ColumnKind::PartitionKey)
                .map(|(_, n)| pg_ident(n))
                .collect(),
            qualified_target: m.qualified_target(),
        }
    }
}

/// Everything one table's validation borrows.
struct Ctx<'a> {
    session: &'a Session,
    table: &'a PreparedTable,
    target: &'a TargetEndpoint,
    facts: &'a TargetFacts,
    settings: &'a Settings,
    opts: &'a Options,
    counters: &'a Arc<Counters>,
    shape: Arc<Shape>,
}

/// Validates every prepared table of a job, one after the other.
pub async fn validate_job(
    job: &Job,
    prepared: &Prepared,
    opts: &Options,
    rejects: &Rejects,
    counters: &Arc<Counters>,
) -> Result<Vec<TableValidation>> {
    let mut out = Vec::new();
    for t in &prepared.tables {
        out.push(
            validate_table(
                &prepared.session,
                t,
                &job.target,
                &prepared.facts,
                &job.settings,
                opts,
                rejects,
                counters,
            )
            .await
            .with_context(|| format!("validating {}", t.mapping.source.qualified()))?,
        );
    }
    Ok(out)
}

/// Validates one table.
#[allow(clippy::too_many_arguments)]
pub async fn validate_table(
    session: &Session,
    table: &PreparedTable,
    target: &TargetEndpoint,
    facts: &TargetFacts,
    settings: &Settings,
    opts: &Options,
    rejects: &Rejects,
    counters: &Arc<Counters>,
) -> Result<TableValidation> {
    let ctx = Ctx {
        session,
        table,
        target,
        facts,
        settings,
        opts,
        counters,
        shape: Arc::new(Shape::new(table, &settings.row_times)),
    };
    let start = Instant::now();
    // A fault either side may ride through (a restart, a reset, a reply that never comes)
    // starts the table's validation over, until `ferry.outageDeadlineSecs`: it only reads, and
    // a pass cut short would have counted part of a side twice.
    let mut outage = crate::retry::Outage::rerun(settings.outage_deadline);
    let mut restarts = 0u32;
    let mut v = loop {
        let attempt = match opts.mode {
            Mode::Full => full(&ctx, rejects).await,
            Mode::Sample { rows } => sample(&ctx, rows, rejects).await,
        };
        match attempt {
            Ok(v) => break v,
            Err(e) => {
                restarts += 1;
                crate::retry::again(&mut outage, restarts, e, "validating").await?;
            }
        }
    };
    v.restarts = restarts;
    v.elapsed = start.elapsed();
    Ok(v)
}

fn empty_result(ctx: &Ctx<'_>) -> TableValidation {
    TableValidation {
        source: ctx.shape.table.clone(),
        target: format!(
            "{}.{}",
            ctx.table.mapping.target_schema, ctx.table.mapping.target_table
        ),
        mode: ctx.opts.mode,
        source_rows: 0,
        target_rows: 0,
        buckets: 0,
        buckets_differing: 0,
        buckets_narrowed: 0,
        rows_not_narrowed: 0,
        missing: 0,
        extra: 0,
        different: 0,
        diffs: Vec::new(),
        elapsed: Duration::ZERO,
        narrow_elapsed: Duration::ZERO,
        restarts: 0,
    }
}

/// Buckets for an estimated row count: about 256 rows each, 2^10 to 2^20.
pub fn bucket_count(est_rows: u64) -> u32 {
    (est_rows / 256).next_power_of_two().clamp(1 << 10, 1 << 20) as u32
}

async fn full(ctx: &Ctx<'_>, rejects: &Rejects) -> Result<TableValidation> {
    let (h, p) = &ctx.facts.nodes[0];
    let admin = ctx.target.connect(h, *p).await?;
    let reltuples: i64 = admin
        .query_one(
            "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = $1::text::regclass",
            &[&ctx.shape.qualified_target],
        )
        .await
        .context("reading the target's row estimate")?
        .get(0);
    let est = ctx.table.plan.est_partitions.max(reltuples as u64);
    let n = bucket_count(est);
    let slices =
        target::slices(&admin, ctx.facts.kind, &ctx.shape, ctx.opts.target_streams).await?;
    drop(admin);

    let src = Arc::new(DigestSink(Buckets::new(n)));
    let tgt = Arc::new(DigestSink(Buckets::new(n)));
    let (source_rows, target_rows) = tokio::try_join!(
        source_all(ctx, src.clone()),
        target_all(ctx, &slices, tgt.clone(), false)
    )?;
    let mut v = empty_result(ctx);
    v.source_rows = source_rows;
    v.target_rows = target_rows;
    v.buckets = n;
    let differing = src.0.differing(&tgt.0);
    v.buckets_differing = differing.len() as u32;
    if differing.is_empty() {
        return Ok(v);
    }

    // Pass two, over as many differing buckets as the detail budget allows.
    let narrow_start = Instant::now();
    let mut chosen = Vec::new();
    let mut rows = 0u64;
    for &b in &differing {
        let r = src.0.get(b).0 + tgt.0.get(b).0;
        if chosen.is_empty() || rows + r <= ctx.opts.max_detail_rows {
            chosen.push(b);
            rows += r;
        } else {
            v.rows_not_narrowed += r;
        }
    }
    v.buckets_narrowed = chosen.len() as u32;
    let set = BucketSet::new(n, &chosen);
    let s_detail = Arc::new(SourceDetails::new(Some((set, n))));
    let t_detail = Arc::new(TargetDetails::new(Some((BucketSet::new(n, &chosen), n))));
    tokio::try_join!(
        source_all(ctx, s_detail.clone()),
        target_all(ctx, &slices, t_detail.clone(), true)
    )?;
    let src_rows = std::mem::take(&mut *s_detail.rows.lock().expect("detail lock"));
    let (tgt_rows, dups) = {
        let mut g = t_detail.rows.lock().expect("detail lock");
        (std::mem::take(&mut g.0), std::mem::take(&mut g.1))
    };
    set_diffs(
        &mut v,
        compare(&ctx.shape, src_rows, tgt_rows, dups, rejects),
    );
    v.narrow_elapsed = narrow_start.elapsed();
    Ok(v)
}

fn set_diffs(v: &mut TableValidation, diffs: Vec<RowDiff>) {
    let count = |k| diffs.iter().filter(|d| d.kind == k).count() as u64;
    v.missing = count(DiffKind::Missing);
    v.extra = count(DiffKind::Extra);
    v.different = count(DiffKind::Different);
    v.diffs = diffs;
}

/// Scans every chunk of the table into `sink`, `source_concurrency` chunks at once.
async fn source_all(ctx: &Ctx<'_>, sink: Arc<dyn SourceSink>) -> Result<u64> {
    let scanner = Scanner::new(
        ctx.session,
        &ctx.table.mapping,
        &ctx.table.plan,
        ctx.settings,
        ctx.shape.clone(),
        None,
    )
    .await?;
    let scanner = &scanner;
    futures::stream::iter(&ctx.table.plan.chunks)
        .map(|c| scanner.chunk(c, u64::MAX, sink.clone(), ctx.counters))
        .buffer_unordered(ctx.opts.source_concurrency.max(1))
        .try_fold(0u64, |a, n| async move { Ok(a + n) })
        .await
}

/// Reads every slice of the target table into `sink`, one task and connection per slice,
/// spread over the target's nodes.
async fn target_all(
    ctx: &Ctx<'_>,
    slices: &[String],
    sink: Arc<dyn TargetSink>,
    with_key_json: bool,
) -> Result<u64> {
    let mut tasks = Vec::new();
    for (i, slice) in slices.iter().enumerate() {
        let endpoint = ctx.target.clone();
        let (host, port) = ctx.facts.nodes[i % ctx.facts.nodes.len()].clone();
        let sql = target::copy_sql(&ctx.shape, slice, with_key_json);
        let shape = ctx.shape.clone();
        let sink = sink.clone();
        let counters = ctx.counters.clone();
        tasks.push(tokio::spawn(async move {
            let node = format!("{host}:{port}");
            async {
                let client = endpoint.connect(&host, port).await?;
                let reply = crate::retry::reply_deadline(&endpoint);
                target::scan(
                    &client,
                    &node,
                    reply,
                    &sql,
                    &shape,
                    &*sink,
                    with_key_json,
                    &counters,
                )
                .await
            }
            .await
            .map_err(|e| crate::error::target_failure(e, &node, "reading the target"))
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.context("a target reader panicked")??;
    }
    Ok(total)
}

/// Pass one on either side: count and digest per bucket.
struct DigestSink(Buckets);

impl SourceSink for DigestSink {
    fn row(&self, shape: &Shape, r: &SourceRow<'_>) {
        let b = bucket_of(r.row.key(shape.key_cols), self.0.len());
        self.0.add(b, r.row.hash());
    }
}

impl TargetSink for DigestSink {
    fn row(&self, shape: &Shape, row: &RowBuf, _: Option<&[u8]>) {
        let b = bucket_of(row.key(shape.key_cols), self.0.len());
        self.0.add(b, row.hash());
    }
}

/// A source row kept for comparison.
struct SourceDetail {
    hash: u64,
    fields: Box<[u64]>,
    key: serde_json::Value,
    reject: Option<(usize, String)>,
    source_key: SourceKey,
}

impl SourceDetail {
    fn of(shape: &Shape, r: &SourceRow<'_>) -> Self {
        SourceDetail {
            hash: r.row.hash(),
            fields: r.row.field_hashes(),
            key: r.key_json(shape),
            reject: r.reject.as_ref().map(|(c, why)| (*c, why.reason.clone())),
            source_key: SourceKey {
                cql: r.cells[..shape.key_cols]
                    .iter()
                    .map(|c| c.unwrap_or_default().to_vec())
                    .collect(),
                pg: r.key_params(shape),
            },
        }
    }
}

/// A target row kept for comparison.
struct TargetDetail {
    hash: u64,
    fields: Box<[u64]>,
    key: serde_json::Value,
}

impl TargetDetail {
    fn of(row: &RowBuf, key_json: Option<&[u8]>) -> Self {
        TargetDetail {
            hash: row.hash(),
            fields: row.field_hashes(),
            key: key_json
                .and_then(|k| serde_json::from_slice(k).ok())
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Pass two on the source: the rows of the chosen buckets (all rows when `None`).
struct SourceDetails {
    only: Option<(BucketSet, u32)>,
    rows: Mutex<HashMap<Vec<u8>, SourceDetail>>,
}

impl SourceDetails {
    fn new(only: Option<(BucketSet, u32)>) -> Self {
        SourceDetails {
            only,
            rows: Mutex::new(HashMap::new()),
        }
    }
}

impl SourceSink for SourceDetails {
    fn row(&self, shape: &Shape, r: &SourceRow<'_>) {
        let key = r.row.key(shape.key_cols);
        if let Some((set, n)) = &self.only {
            if !set.contains(bucket_of(key, *n)) {
                return;
            }
        }
        let d = SourceDetail::of(shape, r);
        self.rows
            .lock()
            .expect("detail lock")
            .insert(key.to_vec(), d);
    }
}

/// Pass two on the target; a second row with the same key is kept aside as a duplicate.
struct TargetDetails {
    only: Option<(BucketSet, u32)>,
    #[allow(clippy::type_complexity)]
    rows: Mutex<(HashMap<Vec<u8>, TargetDetail>, Vec<TargetDetail>)>,
}

impl TargetDetails {
    fn new(only: Option<(BucketSet, u32)>) -> Self {
        TargetDetails {
            only,
            rows: Mutex::new((HashMap::new(), Vec::new())),
        }
    }
}

impl TargetSink for TargetDetails {
    fn row(&self, shape: &Shape, row: &RowBuf, key_json: Option<&[u8]>) {
        let key = row.key(shape.key_cols);
        if let Some((set, n)) = &self.only {
            if !set.contains(bucket_of(key, *n)) {
                return;
            }
        }
        let d = TargetDetail::of(row, key_json);
        let mut g = self.rows.lock().expect("detail lock");
        if g.0.contains_key(key) {
            g.1.push(d);
        } else {
            g.0.insert(key.to_vec(), d);
        }
    }
}

/// Matches source and target rows by canonical key.
fn compare(
    shape: &Shape,
    src: HashMap<Vec<u8>, SourceDetail>,
    mut tgt: HashMap<Vec<u8>, TargetDetail>,
    duplicates: Vec<TargetDetail>,
    rejects: &Rejects,
) -> Vec<RowDiff> {
    let mut diffs = Vec::new();
    for (key, s) in src {
        match tgt.remove(&key) {
            None => {
                let reject = rejects.find(&shape.table, &s.key).cloned().or_else(|| {
                    s.reject.as_ref().map(|(c, why)| RejectNote {
                        column: shape.names[*c].clone(),
                        reason: why.clone(),
                        in_reject_file: false,
                    })
                });
                diffs.push(RowDiff {
                    kind: DiffKind::Missing,
                    primary_key: s.key,
                    columns: Vec::new(),
                    reject,
                    source_key: Some(s.source_key),
                });
            }
            Some(t) if t.hash != s.hash => diffs.push(RowDiff {
                kind: DiffKind::Different,
                columns: (0..shape.names.len())
                    .filter(|&i| s.fields.get(i) != t.fields.get(i))
                    .map(|i| shape.names[i].clone())
                    .collect(),
                primary_key: s.key,
                reject: None,
                source_key: Some(s.source_key),
            }),
            Some(_) => {}
        }
    }
    for t in tgt.into_values().chain(duplicates) {
        diffs.push(RowDiff {
            kind: DiffKind::Extra,
            primary_key: t.key,
            columns: Vec::new(),
            reject: None,
            source_key: None,
        });
    }
    diffs.sort_by_cached_key(|d| (d.kind, key_bytes(&d.primary_key)));
    diffs
}

/// Sample mode: the first rows of chunks spread over the ring, looked up in the target by key.
async fn sample(ctx: &Ctx<'_>, rows: u64, rejects: &Rejects) -> Result<TableValidation> {
    let chunks = &ctx.table.plan.chunks;
    let spread = chunks.len().clamp(1, 32) as u64;
    let per_chunk = rows.div_ceil(spread).max(1);
    // A fixed pseudo-random order of the chunks: the same sample on every run.
    let mut order: Vec<&crate::plan::Chunk> = chunks.iter().collect();
    order.sort_by_key(|c| u64::from(c.id).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let scanner = Scanner::new(
        ctx.session,
        &ctx.table.mapping,
        &ctx.table.plan,
        ctx.settings,
        ctx.shape.clone(),
        Some(per_chunk.min(ctx.settings.fetch_size_rows.max(1) as u64) as i32),
    )
    .await?;
    let sink = Arc::new(SampleSink::default());
    {
        let scanner = &scanner;
        let sink = &sink;
        let mut stream = futures::stream::iter(order)
            .map(|c| scanner.chunk(c, per_chunk, sink.clone(), ctx.counters))
            .buffer_unordered(ctx.opts.source_concurrency.max(1));
        let mut taken = 0u64;
        while let Some(n) = stream.next().await {
            taken += n?;
            if taken >= rows {
                break;
            }
        }
    }
    let mut sampled = std::mem::take(&mut *sink.rows.lock().expect("sample lock"));
    sampled.truncate(rows as usize);

    let mut src: HashMap<Vec<u8>, SourceDetail> = HashMap::new();
    let mut keys: Vec<Vec<Vec<u8>>> = Vec::new();
    for (key, params, detail) in sampled {
        if let Some(p) = params {
            keys.push(p);
        }
        src.insert(key, detail);
    }
    let mut v = empty_result(ctx);
    v.source_rows = src.len() as u64;

    // Lookups in batches, spread over a few connections.
    let per_batch = (30_000 / ctx.shape.key_cols.max(1)).clamp(1, 500);
    let batches: Vec<Vec<Vec<Vec<u8>>>> = keys.chunks(per_batch).map(<[_]>::to_vec).collect();
    let streams = ctx.opts.target_streams.max(1);
    let mut tasks = Vec::new();
    for s in 0..streams.min(batches.len()) {
        let mine: Vec<_> = batches.iter().skip(s).step_by(streams).cloned().collect();
        let endpoint = ctx.target.clone();
        let (host, port) = ctx.facts.nodes[s % ctx.facts.nodes.len()].clone();
        let shape = ctx.shape.clone();
        tasks.push(tokio::spawn(async move {
            let client = endpoint.connect(&host, port).await?;
            let mut found: Vec<(Vec<u8>, TargetDetail)> = Vec::new();
            for batch in &mine {
                target::lookup(&client, &shape, batch, |row| {
                    found.push((
                        row.key(shape.key_cols).to_vec(),
                        TargetDetail::of(row, None),
                    ));
                })
                .await?;
            }
            anyhow::Ok(found)
        }));
    }
    let mut tgt = HashMap::new();
    let mut dups = Vec::new();
    for t in tasks {
        for (k, d) in t.await.context("a target lookup panicked")?? {
            if let std::collections::hash_map::Entry::Vacant(e) = tgt.entry(k) {
                e.insert(d);
            } else {
                dups.push(d);
            }
        }
    }
    v.target_rows = tgt.len() as u64;
    set_diffs(&mut v, compare(&ctx.shape, src, tgt, dups, rejects));
    Ok(v)
}

/// Sample mode's source side: every row handed over, with its lookup parameters.
#[derive(Default)]
struct SampleSink {
    #[allow(clippy::type_complexity)]
    rows: Mutex<Vec<(Vec<u8>, Option<Vec<Vec<u8>>>, SourceDetail)>>,
}

impl SourceSink for SampleSink {
    fn row(&self, shape: &Shape, r: &SourceRow<'_>) {
        let entry = (
            r.row.key(shape.key_cols).to_vec(),
            r.key_params(shape),
            SourceDetail::of(shape, r),
        );
        self.rows.lock().expect("sample lock").push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_count_follows_the_estimate_within_bounds() {
        assert_eq!(bucket_count(0), 1024);
        assert_eq!(bucket_count(100_000), 1024);
        assert_eq!(bucket_count(1_000_000), 4096);
        assert_eq!(bucket_count(u64::MAX / 2), 1 << 20);
    }

    #[test]
    fn reject_keys_match_whatever_the_key_order() {
        let dir = std::env::temp_dir().join(format!("ferry-rejects-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        std::fs::write(
            &path,
            "{\"table\":\"ks.t\",\"primary_key\":{\"pk\":1,\"ck\":2},\"column\":\"c\",\"reason\":\"why\"}\n",
        )
        .unwrap();
        let r = Rejects::load(&path).unwrap();
        assert_eq!(r.for_table("ks.t"), 1);
        let key = serde_json::json!({"ck": 2, "pk": 1});
        assert_eq!(r.find("ks.t", &key).unwrap().reason, "why");
        assert!(r
            .find("ks.t", &serde_json::json!({"ck": 3, "pk": 1}))
            .is_none());
        assert!(
            Rejects::load(&dir.join("none.jsonl"))
                .unwrap()
                .for_table("ks.t")
                == 0
        );
    }
}
