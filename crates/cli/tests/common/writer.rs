//! A steady application writer for live-migration tests: while ferry copies a table of the
//! `ferry gen --shape bench` shape, it inserts new keys, updates and deletes existing rows, and
//! inserts rows with a short and a long TTL, at a fixed rate, until told to stop.
//!
//! Deterministic: the sequence of operations (kind, key, values) is a pure function of the seed.
//! Only timing decides when each runs. It paces itself against a schedule (write `n` is due at
//! `start + n / rate`), sending every 10 ms what is due, and never bursts: after a stall it
//! makes up at no more than 1.5 times its rate, and when it falls more than [`MAX_LAG`]
//! behind it gives those writes up and moves the schedule, which the report counts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferry_migrate::gen::{sample_row_shaped, Shape, BENCH_COLUMNS};
use futures::stream::{FuturesUnordered, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlValue;

/// How far behind its schedule the writer may fall before it gives the missed writes up and
/// moves the schedule.
pub const MAX_LAG: Duration = Duration::from_secs(2);

/// The writer sends once a tick what is due by then.
const TICK: Duration = Duration::from_millis(10);

/// After a stall (a busy machine) it makes up the missed writes at up to this multiple of its
/// rate, never faster.
const CATCH_UP: f64 = 1.5;

/// Partition keys of the rows the writer inserts start here, far above any `ferry gen` key.
pub const NEW_PK_BASE: i64 = 1 << 40;

/// Rows the writer inserts per partition of its own.
const NEW_ROWS_PER_PARTITION: u64 = 4;

/// One kind of write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A new key, every column set, no TTL.
    Insert,
    /// Some columns of an existing row (from `ferry gen` or inserted by the writer), no TTL.
    Update,
    /// An existing row, whole.
    Delete,
    /// A new key with every column set, `USING TTL short_ttl_secs`.
    ShortTtl,
    /// A new key with every column set, `USING TTL long_ttl_secs`.
    LongTtl,
}

pub const KINDS: [Kind; 5] = [
    Kind::Insert,
    Kind::Update,
    Kind::Delete,
    Kind::ShortTtl,
    Kind::LongTtl,
];

/// Relative weights of the kinds.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub insert: u32,
    pub update: u32,
    pub delete: u32,
    pub short_ttl: u32,
    pub long_ttl: u32,
}

impl Mix {
    /// An application's mix: mostly inserts and updates, some deletes and expiring rows.
    pub const LIVE: Mix = Mix {
        insert: 35,
        update: 35,
        delete: 10,
        short_ttl: 10,
        long_ttl: 10,
    };
    /// Writes a catch-up pass can carry on its own (no deletes, nothing that expires).
    pub const UPSERTS: Mix = Mix {
        insert: 50,
        update: 50,
        delete: 0,
        short_ttl: 0,
        long_ttl: 0,
    };

    fn weight(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Insert => self.insert,
            Kind::Update => self.update,
            Kind::Delete => self.delete,
            Kind::ShortTtl => self.short_ttl,
            Kind::LongTtl => self.long_ttl,
        }
    }

    fn pick(&self, rng: &mut StdRng) -> Kind {
        let total: u32 = KINDS.iter().map(|k| self.weight(*k)).sum();
        assert!(total > 0, "a writer mix needs some weight");
        let mut x = rng.random_range(0..total);
        for k in KINDS {
            if x < self.weight(k) {
                return k;
            }
            x -= self.weight(k);
        }
        unreachable!("x < total")
    }
}

/// What to write where.
#[derive(Clone, Debug)]
pub struct WriterSpec {
    pub keyspace: String,
    pub table: String,
    /// Writes per second the writer aims at.
    pub writes_per_sec: u32,
    pub seed: u64,
    /// The `ferry gen` table's rows and rows per partition: the keys updates and deletes pick
    /// from (besides the writer's own).
    pub gen_rows: u64,
    pub gen_partition_rows: u64,
    pub mix: Mix,
    pub short_ttl_secs: i32,
    pub long_ttl_secs: i32,
    /// Whether an update may set a column to null (or a collection to empty), as `ferry gen`'s
    /// values sometimes are. Cassandra keeps only a tombstone then, which has no write time,
    /// so a catch-up pass cannot see such an update; `validate --repair` can.
    pub null_updates: bool,
    /// Stop by itself after this many writes.
    pub max_writes: Option<u64>,
    /// Requests in flight at most.
    pub in_flight: usize,
}

impl WriterSpec {
    /// The live mix at `writes_per_sec` against a `ferry gen --shape bench` table.
    pub fn live(
        keyspace: &str,
        table: &str,
        gen_rows: u64,
        gen_partition_rows: u64,
        writes_per_sec: u32,
        seed: u64,
    ) -> WriterSpec {
        WriterSpec {
            keyspace: keyspace.to_string(),
            table: table.to_string(),
            writes_per_sec,
            seed,
            gen_rows,
            gen_partition_rows,
            mix: Mix::LIVE,
            short_ttl_secs: 20,
            long_ttl_secs: 3600,
            null_updates: true,
            max_writes: None,
            in_flight: 256,
        }
    }
}

/// What the writer did.
#[derive(Clone, Debug)]
pub struct WriterReport {
    /// Writes Cassandra acknowledged, per kind.
    pub done: BTreeMap<Kind, u64>,
    /// Writes that failed (they may or may not have been applied).
    pub errors: u64,
    pub first_error: Option<String>,
    /// Every key written, with the last kind of write sent to it.
    pub touched: BTreeMap<(i64, i32), Kind>,
    pub started_at: SystemTime,
    pub stopped_at: SystemTime,
    pub elapsed: Duration,
    /// Times the writer fell more than [`MAX_LAG`] behind and moved its schedule.
    pub schedule_moves: u64,
    /// Times a write waited for one of the `in_flight` slots (Cassandra answering slowly).
    pub full_waits: u64,
    /// When the last short-TTL row sent expires at the latest (the send time plus the TTL).
    pub short_ttl_expire_by: Option<SystemTime>,
    pub target_writes_per_sec: u32,
}

impl WriterReport {
    pub fn total(&self) -> u64 {
        self.done.values().sum()
    }

    pub fn count(&self, kind: Kind) -> u64 {
        self.done.get(&kind).copied().unwrap_or(0)
    }

    /// Acknowledged writes per second over the writer's whole run.
    pub fn writes_per_sec(&self) -> f64 {
        self.total() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for the test's output.
    pub fn summary(&self) -> String {
        format!(
            "writer: {} writes in {:.1}s = {:.0}/s (aimed at {}/s; schedule moved {} times, {} waits for a slot): \
             {} inserts, {} updates, {} deletes, {} short-TTL, {} long-TTL; {} errors{}; {} keys",
            self.total(),
            self.elapsed.as_secs_f64(),
            self.writes_per_sec(),
            self.target_writes_per_sec,
            self.schedule_moves,
            self.full_waits,
            self.count(Kind::Insert),
            self.count(Kind::Update),
            self.count(Kind::Delete),
            self.count(Kind::ShortTtl),
            self.count(Kind::LongTtl),
            self.errors,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            self.touched.len(),
        )
    }
}

/// A running writer.
pub struct Writer {
    stop: tokio::sync::watch::Sender<bool>,
    acked: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<WriterReport>,
}

impl Writer {
    /// Prepares the statements and starts writing.
    pub async fn start(session: Arc<Session>, spec: WriterSpec) -> Writer {
        assert!(spec.writes_per_sec > 0 && spec.in_flight > 0);
        let statements = Arc::new(Statements::prepare(&session, &spec).await);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let acked = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(session, statements, spec, stopped, acked.clone()));
        Writer { stop, acked, task }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops sending, waits for the writes in flight, and reports.
    pub async fn stop(self) -> WriterReport {
        let _ = self.stop.send(true);
        self.task.await.expect("the writer task panicked")
    }

    /// Waits until the writer has sent `max_writes` and they are answered.
    pub async fn finish(self) -> WriterReport {
        self.task.await.expect("the writer task panicked")
    }
}

struct Statements {
    insert: PreparedStatement,
    insert_ttl: PreparedStatement,
    delete: PreparedStatement,
    /// Each sets a few columns (indexes into [`BENCH_COLUMNS`]).
    updates: Vec<(Vec<usize>, PreparedStatement)>,
}

/// Column sets the updates write: scalar ones alone, with a non-frozen collection, and a
/// non-frozen collection alone (its write time is its newest element's, which Cassandra 5's
/// `MAXWRITETIME()` gives and a catch-up must see).
const UPDATE_SETS: &[&[&str]] = &[
    &["c_text", "c_int"],
    &["c_double", "c_list"],
    &["c_bigint", "c_boolean", "c_map"],
    &["c_timestamp"],
    &["c_map"],
];

impl Statements {
    async fn prepare(session: &Session, spec: &WriterSpec) -> Statements {
        let table = format!("\"{}\".\"{}\"", spec.keyspace, spec.table);
        let names = BENCH_COLUMNS.join(", ");
        let marks = vec!["?"; BENCH_COLUMNS.len()].join(", ");
        let prepare = |cql: String| async move {
            session
                .prepare(cql.clone())
                .await
                .unwrap_or_else(|e| panic!("preparing {cql}: {e}"))
        };
        let insert = prepare(format!("INSERT INTO {table} ({names}) VALUES ({marks})")).await;
        let insert_ttl = prepare(format!(
            "INSERT INTO {table} ({names}) VALUES ({marks}) USING TTL ?"
        ))
        .await;
        let delete = prepare(format!("DELETE FROM {table} WHERE pk = ? AND ck = ?")).await;
        let mut updates = Vec::new();
        for set in UPDATE_SETS {
            let idx: Vec<usize> = set.iter().map(|c| column_index(c)).collect();
            let assignments: Vec<String> = set.iter().map(|c| format!("{c} = ?")).collect();
            let stmt = prepare(format!(
                "UPDATE {table} SET {} WHERE pk = ? AND ck = ?",
                assignments.join(", ")
            ))
            .await;
            updates.push((idx, stmt));
        }
        Statements {
            insert,
            insert_ttl,
            delete,
            updates,
        }
    }
}

fn column_index(name: &str) -> usize {
    BENCH_COLUMNS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("{name} is not a bench column"))
}

/// One planned write: everything but when it runs.
struct Op {
    kind: Kind,
    key: (i64, i32),
    statement: usize,
    values: Vec<Option<CqlValue>>,
}

/// The deterministic source of operations.
struct Planner {
    rng: StdRng,
    seed: u64,
    spec_mix: Mix,
    gen_rows: u64,
    gen_partition_rows: u64,
    short_ttl: i32,
    long_ttl: i32,
    null_updates: bool,
    /// Keys the writer inserted, in order.
    own: Vec<(i64, i32)>,
    next_new: u64,
    next_values: u64,
}

/// Statement slots: 0 insert, 1 insert with TTL, 2 delete, 3.. the updates.
const ST_INSERT: usize = 0;
const ST_INSERT_TTL: usize = 1;
const ST_DELETE: usize = 2;
const ST_UPDATE: usize = 3;

impl Planner {
    fn new(spec: &WriterSpec) -> Planner {
        Planner {
            rng: StdRng::seed_from_u64(spec.seed),
            seed: spec.seed,
            spec_mix: spec.mix,
            gen_rows: spec.gen_rows,
            gen_partition_rows: spec.gen_partition_rows.max(1),
            short_ttl: spec.short_ttl_secs,
            long_ttl: spec.long_ttl_secs,
            null_updates: spec.null_updates,
            own: Vec::new(),
            next_new: 0,
            next_values: 0,
        }
    }

    /// A full row of bench values (as `ferry gen` makes them, from the writer's own seed).
    fn values(&mut self) -> Vec<Option<CqlValue>> {
        // Past gen's edge rows, so every value is an ordinary random one.
        let i = 1_000 + self.next_values;
        self.next_values += 1;
        sample_row_shaped(self.seed ^ 0x5772_6974_6572, i, 1, Shape::Bench)
    }

    fn new_key(&mut self) -> (i64, i32) {
        let n = self.next_new;
        self.next_new += 1;
        let key = (
            NEW_PK_BASE + (n / NEW_ROWS_PER_PARTITION) as i64,
            (n % NEW_ROWS_PER_PARTITION) as i32,
        );
        self.own.push(key);
        key
    }

    fn existing_key(&mut self) -> (i64, i32) {
        if !self.own.is_empty() && (self.gen_rows == 0 || self.rng.random_bool(0.5)) {
            self.own[self.rng.random_range(0..self.own.len())]
        } else {
            assert!(self.gen_rows > 0, "no existing keys to update or delete");
            let i = self.rng.random_range(0..self.gen_rows);
            (
                (i / self.gen_partition_rows) as i64,
                (i % self.gen_partition_rows) as i32,
            )
        }
    }

    fn next(&mut self) -> Op {
        let kind = self.spec_mix.pick(&mut self.rng);
        match kind {
            Kind::Insert | Kind::ShortTtl | Kind::LongTtl => {
                let key = self.new_key();
                let mut values = self.values();
                values[0] = Some(CqlValue::BigInt(key.0));
                values[1] = Some(CqlValue::Int(key.1));
                let statement = match kind {
                    Kind::ShortTtl => {
                        values.push(Some(CqlValue::Int(self.short_ttl)));
                        ST_INSERT_TTL
                    }
                    Kind::LongTtl => {
                        values.push(Some(CqlValue::Int(self.long_ttl)));
                        ST_INSERT_TTL
                    }
                    _ => ST_INSERT,
                };
                Op {
                    kind,
                    key,
                    statement,
                    values,
                }
            }
            Kind::Update => {
                let key = self.existing_key();
                let which = self.rng.random_range(0..UPDATE_SETS.len());
                let mut values: Vec<Option<CqlValue>> = loop {
                    let row = self.values();
                    let values: Vec<Option<CqlValue>> = UPDATE_SETS[which]
                        .iter()
                        .map(|c| row[column_index(c)].clone())
                        .collect();
                    // gen's empty collections are nulls already.
                    if self.null_updates || values.iter().all(Option::is_some) {
                        break values;
                    }
                };
                values.push(Some(CqlValue::BigInt(key.0)));
                values.push(Some(CqlValue::Int(key.1)));
                Op {
                    kind,
                    key,
                    statement: ST_UPDATE + which,
                    values,
                }
            }
            Kind::Delete => {
                let key = self.existing_key();
                Op {
                    kind,
                    key,
                    statement: ST_DELETE,
                    values: vec![Some(CqlValue::BigInt(key.0)), Some(CqlValue::Int(key.1))],
                }
            }
        }
    }
}

async fn execute(
    session: Arc<Session>,
    statements: Arc<Statements>,
    op: Op,
) -> (Kind, Result<(), String>) {
    let stmt = match op.statement {
        ST_INSERT => &statements.insert,
        ST_INSERT_TTL => &statements.insert_ttl,
        ST_DELETE => &statements.delete,
        n => &statements.updates[n - ST_UPDATE].1,
    };
    let res = session
        .execute_unpaged(stmt, op.values)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    (op.kind, res)
}

async fn run(
    session: Arc<Session>,
    statements: Arc<Statements>,
    spec: WriterSpec,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    acked: Arc<AtomicU64>,
) -> WriterReport {
    let mut planner = Planner::new(&spec);
    let mut report = WriterReport {
        done: KINDS.iter().map(|k| (*k, 0)).collect(),
        errors: 0,
        first_error: None,
        touched: BTreeMap::new(),
        started_at: SystemTime::now(),
        stopped_at: SystemTime::now(),
        elapsed: Duration::ZERO,
        schedule_moves: 0,
        full_waits: 0,
        short_ttl_expire_by: None,
        target_writes_per_sec: spec.writes_per_sec,
    };
    let started = Instant::now();
    let rate = spec.writes_per_sec as f64;
    // Writes due by `t`: `(t - origin) * rate`. Each tick sends what is due, but at most
    // CATCH_UP times the rate's share of the time since the last tick (ticks come late on a
    // busy machine), so a stall is made up smoothly, not at once.
    let mut origin = tokio::time::Instant::now();
    let mut last_tick = origin;
    let mut sent: u64 = 0;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = FuturesUnordered::new();
    let record = |report: &mut WriterReport, (kind, res): (Kind, Result<(), String>)| match res {
        Ok(()) => {
            *report.done.entry(kind).or_insert(0) += 1;
            acked.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            report.errors += 1;
            report.first_error.get_or_insert(e);
        }
    };
    'run: loop {
        tokio::select! {
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    break;
                }
                continue;
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                record(&mut report, done);
                continue;
            }
            _ = ticks.tick() => {}
        }
        let now = tokio::time::Instant::now();
        let most = (rate * CATCH_UP * (now - last_tick).as_secs_f64()).ceil() as u64;
        last_tick = now;
        let mut owed = (((now - origin).as_secs_f64() * rate) as u64).saturating_sub(sent);
        if owed as f64 > rate * MAX_LAG.as_secs_f64() {
            // Too far behind to make up: move the schedule instead.
            origin = now - Duration::from_secs_f64(sent as f64 / rate);
            report.schedule_moves += 1;
            owed = 0;
        }
        for _ in 0..owed.min(most) {
            if spec.max_writes.is_some_and(|m| sent >= m) {
                break 'run;
            }
            while in_flight.len() >= spec.in_flight {
                report.full_waits += 1;
                let done = in_flight.next().await.expect("non-empty");
                record(&mut report, done);
            }
            let op = planner.next();
            report.touched.insert(op.key, op.kind);
            if op.kind == Kind::ShortTtl {
                report.short_ttl_expire_by =
                    Some(SystemTime::now() + Duration::from_secs(spec.short_ttl_secs as u64));
            }
            in_flight.push(execute(session.clone(), statements.clone(), op));
            sent += 1;
        }
    }
    while let Some(done) = in_flight.next().await {
        record(&mut report, done);
    }
    report.elapsed = started.elapsed();
    report.stopped_at = SystemTime::now();
    report
}

/// The first `n` writes a writer with this spec sends, as (kind, key, statement values printed):
/// what the determinism test compares.
pub fn planned(spec: &WriterSpec, n: usize) -> Vec<(Kind, (i64, i32), String)> {
    let mut p = Planner::new(spec);
    (0..n)
        .map(|_| {
            let op = p.next();
            (op.kind, op.key, format!("{}:{:?}", op.statement, op.values))
        })
        .collect()
}
