//! Issue 22: a large partition is split into clustering-key ranges read at once, each range a
//! chunk of the plan. The target must hold exactly the source's rows, value by value: with a
//! composite clustering key that has a DESC column, with a static column, and after a kill -9
//! in the middle of the partition and a rerun.

mod common;

use std::time::{Duration, Instant};

use scylla::client::session::Session;

/// Rows of the large partition: 24 splits of 1,000 rows at the tests' settings.
const BIG: i32 = 24_000;

/// The tests' settings: pages of 1,000 rows and partitions of 2,000 rows or more split.
fn properties(ks: &str, table: &str, schema: &str) -> String {
    common::testbed_properties(ks, table, schema).replace(
        "cassandra.fetchSizeInRows=5000",
        "cassandra.fetchSizeInRows=1000",
    ) + &format!(
        "ferry.largePartitionRows=2000\nmigration.checkpoint.keyspace={schema}_progress\n\
             ferry.leaseSecs=3\n"
    )
}

async fn create(session: &Session, ks: &str, ddl: &str) {
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            &[],
        )
        .await
        .expect("create keyspace");
    session
        .query_unpaged(ddl.replace("KS.", &format!("{ks}.")), &[])
        .await
        .expect("create table");
}

/// Inserts `rows` (bound to `insert`), 256 at a time.
async fn insert_all<R: scylla::serialize::row::SerializeRow + Sync>(
    session: &Session,
    insert: &str,
    rows: &[R],
) {
    let stmt = session.prepare(insert).await.expect("prepare insert");
    for chunk in rows.chunks(256) {
        futures::future::try_join_all(chunk.iter().map(|r| session.execute_unpaged(&stmt, r)))
            .await
            .expect("insert");
    }
}

/// The summary's `large_partitions` (migrate --json), asserting the partition was split.
fn split_ranges(out: &str) -> u64 {
    let start = out.find('{').expect("a JSON summary");
    let v: serde_json::Value = serde_json::Deserializer::from_str(&out[start..])
        .into_iter()
        .next()
        .expect("a JSON summary")
        .expect("summary JSON");
    let l = &v["large_partitions"];
    assert_eq!(
        l.as_array().map(Vec::len),
        Some(1),
        "one large partition: {v}"
    );
    assert_eq!(l[0]["rows"], serde_json::json!(BIG), "{v}");
    assert_eq!(l[0]["rows_exact"], serde_json::json!(true), "{v}");
    let ranges = l[0]["ranges"].as_u64().expect("ranges");
    // 24,000 rows, none of the ranges with 2,000 (ferry.largePartitionRows) or more.
    assert!(
        ranges >= 12,
        "the partition was split into {ranges} ranges: {v}"
    );
    ranges
}

/// Pieces of large partitions in the stored plan: (done, all).
async fn pieces(schema: &str) -> (i64, i64) {
    let pg = common::pg_connect(5433).await;
    let row = pg
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE state = 'done'), count(*) \
                 FROM {schema}_progress.ferry_chunks WHERE ck_lo IS NOT NULL OR ck_hi IS NOT NULL"
            ),
            &[],
        )
        .await
        .expect("progress");
    (row.get(0), row.get(1))
}

/// Token-range chunks (not pieces of a large partition) in the stored plan.
async fn token_chunks(schema: &str) -> i64 {
    let pg = common::pg_connect(5433).await;
    pg.query_one(
        &format!(
            "SELECT count(*) FROM {schema}_progress.ferry_chunks \
             WHERE ck_lo IS NULL AND ck_hi IS NULL"
        ),
        &[],
    )
    .await
    .expect("progress")
    .get(0)
}

fn validate(cfg: &std::path::Path) {
    let out = common::ferry()
        .args(["validate", "-c"])
        .arg(cfg)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("ferry validate");
    assert!(
        out.status.success(),
        "ferry validate found differences:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The composite-key table: (a ASC, b ASC, c DESC). The split bounds the (a, b) tuple; `a` has
/// only three values, so the ranges must cut inside them on `b`.
async fn composite(ks: &str) -> Vec<(i32, i32, String, i32, i64, Vec<u8>)> {
    let session = common::cassandra().await;
    create(
        &session,
        ks,
        "CREATE TABLE KS.ev (p int, a int, b text, c int, v bigint, payload blob, \
         PRIMARY KEY (p, a, b, c)) WITH CLUSTERING ORDER BY (a ASC, b ASC, c DESC)",
    )
    .await;
    let mut rows = Vec::new();
    // The large partition, and a few small ones around it in the ring.
    for i in 0..BIG {
        let (a, b, c) = (i % 3, format!("b{:05}", (i / 3) % 4000), i / 12_000);
        rows.push((
            7,
            a,
            b,
            c,
            i64::from(i) * 1_000_003,
            vec![(i % 251) as u8; (i % 7) as usize],
        ));
    }
    for p in 100..140 {
        for j in 0..5 {
            rows.push((p, j, format!("s{j}"), -j, i64::from(p * j), vec![]));
        }
    }
    insert_all(
        &session,
        &format!("INSERT INTO {ks}.ev (p, a, b, c, v, payload) VALUES (?, ?, ?, ?, ?, ?)"),
        &rows,
    )
    .await;
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_clustering_key_with_a_desc_column_splits_and_copies_exactly() {
    common::testbed();
    let ks = common::unique_name("lp_comp");
    let want = composite(&ks).await;
    let schema = common::unique_name("lp_comp");
    let cfg = common::write_config(&schema, &properties(&ks, "ev", &schema));

    // The plan names the partition and its split.
    let out = common::ferry()
        .args(["plan", "--create-tables", "-c"])
        .arg(&cfg)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("ferry plan");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ferry plan failed: {plan}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        plan.contains(&format!("{BIG} rows, read as"))
            && plan.contains("clustering-key ranges of (a, b)"),
        "{plan}"
    );

    let out = common::run_migrate(&cfg, &["--create-tables", "--json"]);
    let ranges = split_ranges(&out);
    assert_eq!(pieces(&schema).await, (ranges as i64, ranges as i64));
    // The 200 rows of the small partitions (under a page of 1,000) are in the token ranges
    // before and after the partition: each side's run of vnode ranges is one chunk.
    let around = token_chunks(&schema).await;
    assert!(
        (1..=2).contains(&around),
        "{around} token-range chunks around the partition"
    );

    let pg = common::pg_connect(5433).await;
    let got: Vec<(i32, i32, String, i32, i64, Vec<u8>)> = pg
        .query(
            &format!(
                "SELECT p, a, b, c, v, payload FROM {schema}.ev ORDER BY p, a, b COLLATE \"C\", c"
            ),
            &[],
        )
        .await
        .expect("read target")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the target differs from the source");
    validate(&cfg);
}

/// Both clustering columns DESC, and a static column: every row of the partition carries the
/// static value, exactly once per row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_column_is_written_once_per_row_of_a_split_partition() {
    common::testbed();
    let ks = common::unique_name("lp_static");
    let session = common::cassandra().await;
    create(
        &session,
        &ks,
        "CREATE TABLE KS.feed (p text, day int, seq int, s text static, body text, \
         PRIMARY KEY (p, day, seq)) WITH CLUSTERING ORDER BY (day DESC, seq DESC)",
    )
    .await;
    let mut rows: Vec<(String, i32, i32, String)> = (0..BIG)
        .map(|i| ("big".to_string(), i / 1000, i % 1000, format!("body {i}")))
        .collect();
    rows.extend((0..30).map(|i| (format!("small{i}"), 1, i, format!("small body {i}"))));
    insert_all(
        &session,
        &format!("INSERT INTO {ks}.feed (p, day, seq, body) VALUES (?, ?, ?, ?)"),
        &rows,
    )
    .await;
    for (p, s) in [("big", "the big one's static"), ("small3", "small static")] {
        session
            .query_unpaged(
                format!("UPDATE {ks}.feed SET s = ? WHERE p = ?"),
                (s.to_string(), p.to_string()),
            )
            .await
            .expect("set static");
    }
    let schema = common::unique_name("lp_static");
    let cfg = common::write_config(&schema, &properties(&ks, "feed", &schema));
    let out = common::run_migrate(&cfg, &["--create-tables", "--json"]);
    let ranges = split_ranges(&out);
    assert_eq!(pieces(&schema).await, (ranges as i64, ranges as i64));

    let pg = common::pg_connect(5433).await;
    let got: Vec<(String, i32, i32, Option<String>, String)> = pg
        .query(
            &format!(
                "SELECT p, day, seq, s, body FROM {schema}.feed ORDER BY p COLLATE \"C\", day, seq"
            ),
            &[],
        )
        .await
        .expect("read target")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let mut want: Vec<(String, i32, i32, Option<String>, String)> = rows
        .into_iter()
        .map(|(p, day, seq, body)| {
            let s = match p.as_str() {
                "big" => Some("the big one's static".to_string()),
                "small3" => Some("small static".to_string()),
                _ => None,
            };
            (p, day, seq, s, body)
        })
        .collect();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the target differs from the source");
    validate(&cfg);
}

/// A kill -9 while the partition's ranges are being copied (some done, some not), then a rerun:
/// the stored pieces resume and the target ends exactly equal to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_partition_then_rerun_is_exact() {
    common::testbed();
    let ks = common::unique_name("lp_kill");
    let want = composite(&ks).await;
    let schema = common::unique_name("lp_kill");
    // Slow reads (4,000 rows/s) and two workers for 12 or more ranges (none has 2,000 rows),
    // so the ranges finish one after another over seconds and the kill lands among them.
    let body = properties(&ks, "ev", &schema)
        + "cassandra.readsPerSec=4000\nferry.maxParallelChunks=2\nferry.adaptiveConcurrency=false\n";
    let cfg = common::write_config(&schema, &body);
    let mut child = common::spawn_migrate(&cfg, &["--create-tables"]);
    let t = Instant::now();
    let mut ended = None;
    while t.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(Some(status)) = child.try_wait() {
            ended = Some(status);
            break;
        }
        // Only once the plan is stored can its pieces be counted.
        let pg = common::pg_connect(5433).await;
        let stored: bool = pg
            .query_one(
                &format!("SELECT to_regclass('{schema}_progress.ferry_chunks') IS NOT NULL"),
                &[],
            )
            .await
            .expect("progress schema")
            .get(0);
        if stored && pieces(&schema).await.0 >= 2 {
            break;
        }
    }
    child.kill().expect("kill -9"); // SIGKILL: no cleanup at all
    child.wait().expect("reap");
    assert!(ended.is_none(), "the run ended ({ended:?}) before the kill");
    let at_kill = pieces(&schema).await;
    let (done, all) = at_kill;
    eprintln!("killed with {done} of {all} partition pieces done");
    assert!(
        done >= 2 && done < all,
        "the kill did not land mid-partition: {done} of {all} pieces done"
    );
    let (rows_then, _) = common::table_digest(&schema, "ev").await;
    assert!(
        rows_then > 0 && (rows_then as usize) < want.len(),
        "{rows_then} rows at the kill"
    );

    let rerun = common::write_config(&format!("{schema}_rerun"), &properties(&ks, "ev", &schema));
    common::run_migrate(&rerun, &["--create-tables"]);
    let (done, all2) = pieces(&schema).await;
    assert_eq!(
        (done, all2),
        (all, all),
        "every stored piece done after the rerun"
    );

    let pg = common::pg_connect(5433).await;
    let got: Vec<(i32, i32, String, i32, i64, Vec<u8>)> = pg
        .query(
            &format!(
                "SELECT p, a, b, c, v, payload FROM {schema}.ev ORDER BY p, a, b COLLATE \"C\", c"
            ),
            &[],
        )
        .await
        .expect("read target")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the target differs from the source");
    validate(&rerun);
}
