//! Migrating a live table (issue 16), on the real test bed, following docs/live-migration.md:
//! a bulk copy while an application writes to the source, catch-up passes
//! (`ferry migrate --since last`) until the delta is small, the writes stopped, a last catch-up,
//! `ferry validate --repair`, and `ferry validate` equal. Then, value by value, the target's
//! write-time and expiry columns against what Cassandra's `WRITETIME()` and `TTL()` return.
//! Beside it: repair of a hand-corrupted target (each kind counted, a second repair a no-op,
//! `--dry-run` writing nothing) and a catch-up pass killed with SIGKILL mid-way, then rerun.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::writer::{self, Kind, Mix, Writer, WriterSpec};
use ferry_migrate::gen::Shape;
use futures::stream::{self, StreamExt};
use serde_json::Value;

/// Target columns the tests carry the row times in.
const WRITTEN_AT: &str = "written_at";
const EXPIRES_AT: &str = "expires_at";

/// The test bed's properties with the row-time columns, plus `extra` lines.
fn config(ks: &str, table: &str, schema: &str, extra: &str) -> PathBuf {
    let body = common::testbed_properties(ks, table, schema)
        + &format!("ferry.writetimeColumn={WRITTEN_AT}\nferry.expiresColumn={EXPIRES_AT}\n")
        + extra;
    common::write_config(schema, &body)
}

/// Runs `ferry ARGS` off the async workers (the writer keeps running meanwhile), echoing its
/// output.
async fn ferry(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run_ferry_env(&args, &[("FERRY_CASSANDRA_PASSWORD", "cassandra")])
    })
    .await
    .expect("the ferry task")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// `ferry migrate -c CFG ARGS --json`, which must succeed; its summary.
async fn migrate(cfg: &Path, args: &[&str]) -> Value {
    let mut all = vec!["migrate", "-c", path_str(cfg), "--json"];
    all.extend_from_slice(args);
    let out = ferry(&all).await;
    assert!(out.status.success(), "ferry {all:?} failed");
    json_of(&out)
}

/// A catch-up pass's `catch_up` object (of its only table).
fn catch_up(summary: &Value) -> &Value {
    let c = &summary["tables"][0]["catch_up"];
    assert!(c.is_object(), "no catch_up object in {summary:#}");
    c
}

fn u64_of(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {field} in {v:#}"))
}

/// `ferry validate -c CFG ARGS --json`: its exit code and summary.
async fn validate(cfg: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["validate", "-c", path_str(cfg), "--json"];
    all.extend_from_slice(args);
    let out = ferry(&all).await;
    (out.status.code(), json_of(&out))
}

/// What `validate --repair --json` changed (or would) in its only table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Repaired {
    upserted_missing: u64,
    upserted_different: u64,
    /// Rows only in the target.
    deleted_extra: u64,
    /// Rows the source no longer had when read again.
    deleted_gone: u64,
    /// Rows past their expiry.
    deleted_expired: u64,
}

impl Repaired {
    fn of(summary: &Value) -> Repaired {
        let r = &summary["repair"]["tables"][0];
        assert!(r.is_object(), "no repair object in {summary:#}");
        let got = Repaired {
            upserted_missing: u64_of(r, "upserted_missing"),
            upserted_different: u64_of(r, "upserted_different"),
            deleted_extra: u64_of(r, "deleted_extra"),
            deleted_gone: u64_of(r, "deleted_gone"),
            deleted_expired: u64_of(r, "deleted_expired"),
        };
        assert_eq!(u64_of(r, "rejected"), 0, "{summary:#}");
        assert_eq!(u64_of(r, "changed"), got.total(), "{summary:#}");
        got
    }

    fn total(&self) -> u64 {
        self.upserted_missing
            + self.upserted_different
            + self.deleted_extra
            + self.deleted_gone
            + self.deleted_expired
    }

    /// Exactly these missing, different and extra rows, nothing gone or expired.
    fn exactly(missing: u64, different: u64, extra: u64) -> Repaired {
        Repaired {
            upserted_missing: missing,
            upserted_different: different,
            deleted_extra: extra,
            deleted_gone: 0,
            deleted_expired: 0,
        }
    }
}

/// `ferry validate --repair ARGS --json`, which must exit `code` having changed (or, with
/// `--dry-run`, counted) exactly `want`; its summary.
async fn repair(cfg: &Path, args: &[&str], code: i32, want: Repaired) -> Value {
    let mut all = vec!["--repair"];
    all.extend_from_slice(args);
    let (got, summary) = validate(cfg, &all).await;
    assert_eq!(got, Some(code), "validate {all:?}: {summary:#}");
    assert_eq!(
        Repaired::of(&summary),
        want,
        "validate {all:?}: {summary:#}"
    );
    summary
}

/// The bench shape's regular columns: the write time is the largest `MAXWRITETIME()` over all
/// of them (a non-frozen collection's is its newest element's).
fn regular_columns() -> Vec<&'static str> {
    Shape::Bench
        .columns()
        .into_iter()
        .filter(|(n, _)| !["pk", "ck"].contains(n))
        .map(|(n, _)| n)
        .collect()
}

/// The regular columns of one cell (not the non-frozen collections, whose TTL is one per
/// element): the expiry is taken over their `TTL()`.
fn single_cell_columns() -> Vec<&'static str> {
    Shape::Bench
        .columns()
        .into_iter()
        .filter(|(n, t)| {
            !["pk", "ck"].contains(n) && !["list<", "set<", "map<"].iter().any(|c| t.starts_with(c))
        })
        .map(|(n, _)| n)
        .collect()
}

/// What Cassandra says of one row: its write time (µs) and, when every set single-cell column
/// has a TTL, when the longest of them runs out, in seconds since the epoch. Cassandra counts a
/// TTL in whole seconds from the query's own second, somewhere between when it was sent and
/// when it was answered: the expiry is known as a range `(earliest, latest)`, one second wide
/// unless the query straddled a second.
#[derive(Debug, Clone, PartialEq)]
struct SourceTimes {
    writetime_micros: Option<i64>,
    expires_secs: Option<(f64, f64)>,
}

/// The target row's times.
#[derive(Debug, Clone, PartialEq)]
struct TargetTimes {
    writetime_micros: Option<i64>,
    expires_secs: Option<f64>,
}

fn unix_secs() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Every row of these partitions in the source, with its times.
async fn source_times(
    session: &scylla::client::session::Session,
    ks: &str,
    table: &str,
    pks: &[i64],
) -> BTreeMap<(i64, i32), SourceTimes> {
    let (all, single) = (regular_columns(), single_cell_columns());
    let select: Vec<String> = all
        .iter()
        .map(|c| format!("maxwritetime({c})"))
        .chain(single.iter().map(|c| format!("writetime({c})")))
        .chain(single.iter().map(|c| format!("ttl({c})")))
        .collect();
    let stmt = session
        .prepare(format!(
            "SELECT pk, ck, {} FROM \"{ks}\".\"{table}\" WHERE pk = ?",
            select.join(", ")
        ))
        .await
        .expect("prepare the times query");
    let stmt = &stmt;
    let (na, n) = (all.len(), single.len());
    let parts: Vec<Vec<((i64, i32), SourceTimes)>> = stream::iter(pks.iter().copied())
        .map(|pk| async move {
            let sent = unix_secs();
            let rows = session
                .execute_unpaged(stmt, (pk,))
                .await
                .unwrap_or_else(|e| panic!("reading partition {pk}: {e}"))
                .into_rows_result()
                .expect("rows");
            let answered = unix_secs();
            rows.rows::<scylla::value::Row>()
                .expect("untyped rows")
                .map(|r| {
                    let r = r.expect("a row");
                    let int = |i: usize| -> Option<i64> {
                        match &r.columns[i] {
                            None => None,
                            Some(scylla::value::CqlValue::BigInt(v)) => Some(*v),
                            Some(scylla::value::CqlValue::Int(v)) => Some(*v as i64),
                            Some(other) => panic!("unexpected {other:?}"),
                        }
                    };
                    let key = (int(0).unwrap(), int(1).unwrap() as i32);
                    let newest = (0..na).filter_map(|i| int(2 + i)).max();
                    let writetimes: Vec<Option<i64>> = (0..n).map(|i| int(2 + na + i)).collect();
                    let ttls: Vec<Option<i64>> = (0..n).map(|i| int(2 + na + n + i)).collect();
                    // A column's TTL only counts when the column is set (it has a write time).
                    let set: Vec<usize> = (0..n).filter(|i| writetimes[*i].is_some()).collect();
                    let expires_secs =
                        if !set.is_empty() && set.iter().all(|i| ttls[*i].is_some()) {
                            set.iter().map(|i| ttls[*i].unwrap()).max().map(|ttl| {
                                (sent.floor() + ttl as f64, answered.floor() + ttl as f64)
                            })
                        } else {
                            None
                        };
                    (
                        key,
                        SourceTimes {
                            writetime_micros: newest,
                            expires_secs,
                        },
                    )
                })
                .collect()
        })
        .buffer_unordered(32)
        .collect()
        .await;
    parts.into_iter().flatten().collect()
}

/// Every row of these partitions in the target, with its times.
async fn target_times(schema: &str, table: &str, pks: &[i64]) -> BTreeMap<(i64, i32), TargetTimes> {
    let pg = common::pg_connect(5433).await;
    let pks: Vec<i64> = pks.to_vec();
    pg.query(
        &format!(
            "SELECT pk, ck, {WRITTEN_AT}, {EXPIRES_AT} FROM {schema}.{table} \
             WHERE pk = ANY($1::bigint[])"
        ),
        &[&pks],
    )
    .await
    .expect("reading the target's row times")
    .iter()
    .map(|r| {
        let w: Option<chrono::DateTime<chrono::Utc>> = r.get(2);
        let e: Option<chrono::DateTime<chrono::Utc>> = r.get(3);
        (
            (r.get(0), r.get(1)),
            TargetTimes {
                writetime_micros: w.map(|w| w.timestamp_micros()),
                expires_secs: e.map(|e| e.timestamp_micros() as f64 / 1e6),
            },
        )
    })
    .collect()
}

/// What the value-by-value comparison found.
#[derive(Debug, Default)]
struct TimesChecked {
    rows: u64,
    with_expiry: u64,
    expired_in_target: u64,
}

/// Compares, row by row, every row of these partitions: the same keys on both sides (a target
/// row whose expiry has passed counts as absent, as validate counts it), the write time to the
/// microsecond, the expiry within 2 s of the one Cassandra's TTL() gives.
async fn check_row_times(
    session: &scylla::client::session::Session,
    ks: &str,
    schema: &str,
    table: &str,
    pks: &[i64],
) -> TimesChecked {
    let source = source_times(session, ks, table, pks).await;
    let target = target_times(schema, table, pks).await;
    let now = unix_secs();
    let mut checked = TimesChecked::default();
    let mut wrong = Vec::new();
    let keys: BTreeSet<(i64, i32)> = source.keys().chain(target.keys()).copied().collect();
    for key in keys {
        match (source.get(&key), target.get(&key)) {
            (Some(s), Some(t)) => {
                checked.rows += 1;
                if s.writetime_micros != t.writetime_micros {
                    wrong.push(format!(
                        "{key:?}: write time {:?} in the target, {:?} in Cassandra",
                        t.writetime_micros, s.writetime_micros
                    ));
                }
                match (s.expires_secs, t.expires_secs) {
                    (None, None) => {}
                    (Some((lo, hi)), Some(te)) if te >= lo - 2.0 && te <= hi + 2.0 => {
                        checked.with_expiry += 1
                    }
                    (se, te) => wrong.push(format!(
                        "{key:?}: expires {te:?} in the target, Cassandra's TTL() gives {se:?}"
                    )),
                }
            }
            (None, Some(t)) if t.expires_secs.is_some_and(|e| e <= now) => {
                checked.expired_in_target += 1
            }
            (s, t) => wrong.push(format!("{key:?}: in Cassandra {s:?}, in the target {t:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ in their times, e.g.:\n{}",
        wrong.len(),
        checked.rows as usize + wrong.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
    checked
}

/// The writer's determinism and mix, without a server.
#[test]
fn the_writer_plans_the_same_writes_from_the_same_seed_in_the_mix_asked() {
    let spec = |seed| WriterSpec::live("ks", "t", 1000, 3, 1000, seed);
    let a = writer::planned(&spec(7), 5000);
    assert_eq!(a, writer::planned(&spec(7), 5000));
    assert_ne!(a, writer::planned(&spec(8), 5000));
    let mut counts = BTreeMap::new();
    for (kind, key, _) in &a {
        *counts.entry(*kind).or_insert(0i64) += 1;
        let new = key.0 >= writer::NEW_PK_BASE;
        match kind {
            Kind::Insert | Kind::ShortTtl | Kind::LongTtl => assert!(new, "{kind:?} {key:?}"),
            // An existing key: the writer's own, or one of gen's 1000 rows (334 partitions of 3).
            Kind::Update | Kind::Delete => {
                assert!(new || (key.0 < 334 && (0..3).contains(&key.1)), "{key:?}")
            }
        }
    }
    for (kind, weight) in [
        (Kind::Insert, Mix::LIVE.insert),
        (Kind::Update, Mix::LIVE.update),
        (Kind::Delete, Mix::LIVE.delete),
        (Kind::ShortTtl, Mix::LIVE.short_ttl),
        (Kind::LongTtl, Mix::LIVE.long_ttl),
    ] {
        let want = 5000 * weight as i64 / 100;
        let got = counts.get(&kind).copied().unwrap_or(0);
        assert!(
            (got - want).abs() < 200,
            "{kind:?}: {got} of 5000, want ~{want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_a_live_table_ends_equal_with_write_times_and_expiry_value_by_value() {
    const ROWS: u64 = 300_000;
    const PER_PARTITION: u64 = 3;
    const RATE: u32 = 1000;
    common::testbed();
    let ks = common::unique_name("live");
    common::gen_shaped(&ks, "t", ROWS, PER_PARTITION, 16, "bench");
    let schema = common::unique_name("live_t");
    let cfg = config(&ks, "t", &schema, "");
    let session = Arc::new(common::cassandra().await);

    // The application writes before the copy starts and all through it.
    let w = Writer::start(
        session.clone(),
        WriterSpec::live(&ks, "t", ROWS, PER_PARTITION, RATE, 16),
    )
    .await;
    while w.acked() < 500 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Step 1: the bulk copy.
    let before = w.acked();
    let bulk = migrate(&cfg, &["--create-tables"]).await;
    let during_bulk = w.acked() - before;
    eprintln!(
        "bulk copy: {} rows written; the writer wrote {during_bulk} times meanwhile",
        bulk["tables"][0]["rows_written"]
    );
    assert!(
        during_bulk >= 1000,
        "the writer wrote only {during_bulk} times during the bulk copy"
    );
    assert!(u64_of(&bulk["tables"][0], "rows_written") >= ROWS / 2);

    // Step 2: catch-up passes while the application still writes, until the delta stops
    // shrinking (at this write rate it cannot reach zero).
    let mut deltas: Vec<u64> = Vec::new();
    let mut since = Vec::new();
    loop {
        let pass = migrate(&cfg, &["--since", "last"]).await;
        let c = catch_up(&pass);
        let written = u64_of(c, "rows_written");
        assert!(u64_of(c, "rows_scanned") >= written);
        since.push(c["since"].as_str().expect("since").to_string());
        eprintln!("catch-up pass {}: {c}", deltas.len() + 1);
        deltas.push(written);
        let n = deltas.len();
        if n >= 4 || (n >= 2 && deltas[n - 1] >= deltas[n - 2]) {
            break;
        }
    }
    assert!(
        deltas.iter().all(|d| *d > 0),
        "a catch-up pass during writes wrote nothing: {deltas:?}"
    );
    // `--since last` moves forward: each pass starts from the start of the one before.
    let mut sorted = since.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, since, "--since last did not move forward");

    // Step 3: the application stops writing.
    let report = w.stop().await;
    eprintln!("{}", report.summary());
    for kind in writer::KINDS {
        assert!(report.count(kind) > 0, "the writer made no {kind:?}");
    }
    assert!(
        report.errors * 100 <= report.total(),
        "{} of the writer's writes failed",
        report.errors
    );
    assert!(
        (500.0..=2000.0).contains(&report.writes_per_sec()),
        "the writer was not steady in 500-2,000 writes/s: {}",
        report.summary()
    );

    // Step 4: past the short TTLs, a last catch-up, then repair.
    if let Some(t) = report.short_ttl_expire_by {
        if let Ok(left) = (t + Duration::from_secs(2)).duration_since(SystemTime::now()) {
            tokio::time::sleep(left).await;
        }
    }
    let last = migrate(&cfg, &["--since", "last"]).await;
    let last_written = u64_of(catch_up(&last), "rows_written");
    eprintln!("last catch-up: {}", catch_up(&last));
    assert!(last_written > 0, "the last catch-up found nothing to write");
    let (code, repaired) = validate(&cfg, &["--repair"]).await;
    assert_eq!(code, Some(0), "validate --repair: {repaired:#}");
    let r = Repaired::of(&repaired);
    eprintln!("repair: {r:?}");
    // Catch-up cannot see deletes: the rows deleted after the copy passed them are only in
    // the target.
    assert!(
        r.deleted_extra > 0,
        "nothing deleted by repair: {repaired:#}"
    );

    // Step 5: equal.
    let (code, equal) = validate(&cfg, &[]).await;
    assert_eq!(code, Some(0), "validate after repair: {equal:#}");
    assert_eq!(equal["equal"], Value::Bool(true));

    // Value by value: every partition the writer touched, and 2,000 more of gen's.
    let mut pks: BTreeSet<i64> = report.touched.keys().map(|k| k.0).collect();
    let writer_pks = pks.len();
    let partitions = ROWS.div_ceil(PER_PARTITION) as i64;
    pks.extend((0..2000).map(|i| i * partitions / 2000));
    let pks: Vec<i64> = pks.into_iter().collect();
    let checked = check_row_times(&session, &ks, &schema, "t", &pks).await;
    eprintln!(
        "row times equal on {} rows of {} partitions ({writer_pks} the writer's): {} with an \
         expiry, {} expired in the target",
        checked.rows,
        pks.len(),
        checked.with_expiry,
        checked.expired_in_target
    );
    assert!(checked.rows >= 6000, "{checked:?}");
    assert!(checked.with_expiry > 0, "no row with a TTL compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_fixes_missing_changed_and_extra_rows_each_counted_and_twice_is_a_no_op() {
    const MISSING: u64 = 37;
    const DIFFERENT: u64 = 23;
    const EXTRA: u64 = 11;
    common::testbed();
    let ks = common::unique_name("repair");
    common::gen_shaped(&ks, "t", 20_000, 3, 17, "bench");
    let schema = common::unique_name("repair_t");
    let cfg = config(&ks, "t", &schema, "");
    migrate(&cfg, &["--create-tables"]).await;
    let clean = common::table_digest(&schema, "t").await;
    assert_eq!(clean.0, 20_000);

    let pg = common::pg_connect(5433).await;
    let t = format!("{schema}.t");
    for (sql, want) in [
        (
            format!(
                "DELETE FROM {t} WHERE (pk, ck) IN \
                 (SELECT pk, ck FROM {t} ORDER BY pk, ck LIMIT {MISSING})"
            ),
            MISSING,
        ),
        (
            format!(
                "UPDATE {t} SET c_text = 'changed in the target' WHERE (pk, ck) IN \
                 (SELECT pk, ck FROM {t} ORDER BY pk DESC, ck LIMIT {DIFFERENT})"
            ),
            DIFFERENT,
        ),
        (
            format!(
                "INSERT INTO {t} (pk, ck, c_text, {WRITTEN_AT}) \
                 SELECT -g, 0, 'only in the target', now() FROM generate_series(1, {EXTRA}) g"
            ),
            EXTRA,
        ),
    ] {
        let n = pg
            .execute(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(n, want, "{sql}");
    }
    let corrupted = common::table_digest(&schema, "t").await;

    // --dry-run: counts what it would do, writes nothing, and the target is not equal.
    let dry = repair(
        &cfg,
        &["--dry-run"],
        1,
        Repaired::exactly(MISSING, DIFFERENT, EXTRA),
    )
    .await;
    assert_eq!(dry["repair"]["dry_run"], Value::Bool(true), "{dry:#}");
    assert_eq!(common::table_digest(&schema, "t").await, corrupted);

    repair(&cfg, &[], 0, Repaired::exactly(MISSING, DIFFERENT, EXTRA)).await;
    // Exactly the clean copy again, write times included.
    assert_eq!(common::table_digest(&schema, "t").await, clean);

    repair(&cfg, &[], 0, Repaired::exactly(0, 0, 0)).await;
    assert_eq!(common::table_digest(&schema, "t").await, clean);

    let (code, equal) = validate(&cfg, &["--full"]).await;
    assert_eq!(code, Some(0), "validate --full after repair: {equal:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_killed_mid_way_then_rerun_ends_exact() {
    const ROWS: u64 = 200_000;
    common::testbed();
    let ks = common::unique_name("catchkill");
    common::gen_shaped(&ks, "t", ROWS, 3, 18, "bench");
    let schema = common::unique_name("catchkill_t");
    // Small chunks, so the catch-up commits many times, and short leases, so the rerun takes
    // the killed pass's chunks back at once.
    let cfg = config(
        &ks,
        "t",
        &schema,
        "cassandra.inputSplitSizeMb.override=1\nferry.leaseSecs=3\n",
    );
    migrate(&cfg, &["--create-tables"]).await;

    // Writes after the bulk copy: inserts and updates only, so a catch-up alone makes the
    // target equal again.
    let session = Arc::new(common::cassandra().await);
    let mut spec = WriterSpec::live(&ks, "t", ROWS, 3, 2000, 19);
    spec.mix = Mix::UPSERTS;
    // Setting a column to null leaves a tombstone, which has no write time: no catch-up can
    // see it (validate --repair does). This test is about the catch-up alone.
    spec.null_updates = false;
    spec.max_writes = Some(6000);
    let report = Writer::start(session.clone(), spec).await.finish().await;
    eprintln!("{}", report.summary());
    assert_eq!(report.errors, 0, "{}", report.summary());
    let changed = report.touched.len() as i64;
    let started: chrono::DateTime<chrono::Utc> = report.started_at.into();

    // Rows the catch-up has carried: those whose write time is the writer's.
    let pg = common::pg_connect(5433).await;
    let carried_sql = format!("SELECT count(*) FROM {schema}.t WHERE {WRITTEN_AT} >= $1");
    let carried = || async {
        let n: i64 = pg
            .query_one(&carried_sql, &[&started])
            .await
            .expect("count carried rows")
            .get(0);
        n
    };
    assert_eq!(carried().await, 0);
    let (code, _) = validate(&cfg, &[]).await;
    assert_eq!(
        code,
        Some(1),
        "the target should differ before the catch-up"
    );

    let mut child = common::spawn_migrate(&cfg, &["--since", "last", "--json"]);
    loop {
        if let Some(status) = child.try_wait().expect("poll the catch-up") {
            let out = child.wait_with_output().expect("its output");
            panic!(
                "the catch-up ended ({status}) before a quarter of its rows were in the target:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // A quarter in: some chunks committed, most not.
        if carried().await >= changed / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9"); // SIGKILL: no cleanup at all
    child.wait().expect("reap");
    let at_kill = carried().await;
    eprintln!("catch-up killed with {at_kill} of {changed} changed rows carried");
    assert!(
        at_kill > 0 && at_kill < changed,
        "the kill did not land mid-way: {at_kill} of {changed}"
    );

    let rerun = migrate(&cfg, &["--since", "last"]).await;
    eprintln!("rerun: {}", catch_up(&rerun));
    assert_eq!(carried().await, changed);
    let (code, equal) = validate(&cfg, &["--full"]).await;
    assert_eq!(code, Some(0), "validate after the rerun: {equal:#}");
    let pks: BTreeSet<i64> = report.touched.keys().map(|k| k.0).collect();
    let pks: Vec<i64> = pks.into_iter().collect();
    let checked = check_row_times(&session, &ks, &schema, "t", &pks).await;
    assert!(checked.rows >= changed as u64, "{checked:?}");
}
