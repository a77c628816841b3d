//! Issue 20: chunk counts follow the table's measured size. A 1K-row table (and its 1K-row
//! counter table) is planned as one chunk, a bigger table as several; a `--keyspace` run copies
//! its tables side by side; a kill -9 in the middle of one, then a rerun, ends with every table
//! exact (`ferry validate` compares every value).

mod common;

use std::process::Output;

fn ferry(args: &[&str]) -> Output {
    common::run_ferry_env(args, &[("FERRY_CASSANDRA_PASSWORD", "cassandra")])
}

/// `ferry plan`'s chunk count for each table, by source table name.
fn chunks_by_table(plan: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut table = None;
    for line in plan.lines() {
        if let Some((source, _)) = line.split_once(" → ") {
            table = Some(source.trim().to_string());
        } else if let Some(rest) = line.trim().strip_prefix("chunks: ") {
            let n = rest.split_whitespace().next().unwrap().parse().unwrap();
            out.push((table.take().expect("a table line first"), n));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1k_row_table_is_one_chunk_and_a_bigger_one_several() {
    common::testbed();
    let ks = common::unique_name("sizing");
    // `small`: 1,000 rows, plus `small_counters`: 1,000 counter rows; `big`: 16,000 rows.
    common::gen(&ks, "small", 1_000, 3, 7);
    common::gen(&ks, "big", 16_000, 3, 8);
    let cfg = common::write_config(&ks, &common::testbed_properties(&ks, "small", &ks));
    let cfg = cfg.to_str().unwrap();

    let out = ferry(&["plan", "-c", cfg, "--keyspace", &ks, "--create-tables"]);
    assert!(out.status.success());
    let chunks = chunks_by_table(&String::from_utf8_lossy(&out.stdout));
    let of = |t: &str| {
        chunks
            .iter()
            .find(|(name, _)| name == &format!("{ks}.{t}"))
            .unwrap_or_else(|| panic!("no plan for {t}: {chunks:?}"))
            .1
    };
    assert_eq!(of("small"), 1, "{chunks:?}");
    assert_eq!(of("small_counters"), 1, "{chunks:?}");
    assert_eq!(of("big_counters"), 1, "{chunks:?}");
    // 16,000 rows at 5,000 rows a page: one chunk per page's worth, on loopback.
    assert!((3..=5).contains(&of("big")), "{chunks:?}");

    let args = [
        "migrate",
        "-c",
        cfg,
        "--keyspace",
        &ks,
        "--create-tables",
        "--json",
    ];
    let out = ferry(&args);
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let spans: Vec<(f64, f64)> = summary["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            let start = t["started_at"].as_f64().expect("started_at");
            (start, start + t["seconds"].as_f64().expect("seconds"))
        })
        .collect();
    assert_eq!(spans.len(), 4);
    // Four tables of one to five chunks, sixteen workers: they copy side by side, so some
    // table starts before another has ended.
    let overlapping = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans.iter().skip(i + 1).any(|b| a.0 < b.1 && b.0 < a.1));
    assert!(overlapping, "the tables ran one after another: {spans:?}");
    let out = ferry(&["validate", "-c", cfg, "--keyspace", &ks]);
    assert!(out.status.success(), "the keyspace differs after migrating");

    // Alone, the one-chunk table starts one worker, not the sixteen a run starts with: the
    // others would only open connections and find nothing to lease.
    let out = ferry(&["migrate", "-c", cfg, "--fresh", "--truncate", "--json"]);
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let t = &summary["tables"][0];
    assert_eq!(t["rows_written"], 1_000, "{t:#}");
    assert_eq!(t["chunks"], 1, "{t:#}");
    assert_eq!(t["workers"]["start"], 1, "{t:#}");
    assert_eq!(t["workers"]["peak"], 1, "{t:#}");
    let out = ferry(&["validate", "-c", cfg]);
    assert!(
        out.status.success(),
        "the table differs after migrating it alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_concurrent_keyspace_run_then_rerun_ends_exact() {
    common::testbed();
    let ks = common::unique_name("sizing_kill");
    for (i, t) in ["a", "b", "c"].iter().enumerate() {
        common::gen(&ks, t, 20_000, 3, 30 + i as u64);
    }
    let cfg = common::write_config(&ks, &common::testbed_properties(&ks, "a", &ks));
    let mut child = common::ferry()
        .args(["migrate", "-c"])
        .arg(&cfg)
        .args(["--keyspace", &ks, "--create-tables"])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ferry migrate");
    // Kill once rows have landed in some table, before the run is through.
    let pg = common::pg_connect(5433).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut landed = 0i64;
    while landed == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        landed = 0;
        for t in ["a", "b", "c"] {
            if let Ok(row) = pg
                .query_one(&format!("SELECT count(*) FROM {ks}.{t}"), &[])
                .await
            {
                landed += row.get::<_, i64>(0);
            }
        }
    }
    let finished = child.try_wait().expect("poll").is_some();
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(landed > 0, "no row landed before the deadline");
    assert!(!finished, "the run ended before the kill");
    let cfg = cfg.to_str().unwrap();
    let out = ferry(&["migrate", "-c", cfg, "--keyspace", &ks, "--create-tables"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming"));
    let out = ferry(&["validate", "-c", cfg, "--keyspace", &ks]);
    assert!(
        out.status.success(),
        "the keyspace differs after kill -9 and rerun"
    );
}

/// A run's target connections are the run's, not each table's: a keyspace of ten tables of
/// four chunks each (40 chunks, 16 workers) opens about as many sessions as one table would.
/// The count is PostgreSQL's own (`pg_stat_database.sessions` of a database only this test
/// uses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyspace_run_reuses_its_target_connections_across_tables() {
    common::testbed();
    let ks = common::unique_name("sizing_conns");
    for i in 0..10 {
        common::gen(&ks, &format!("t{i}"), 16_000, 3, 60 + i as u64);
    }
    let db = format!("{ks}_db");
    let pg = common::pg_connect(5433).await;
    pg.batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create database");
    let props = common::testbed_properties(&ks, "t0", &ks).replace(
        "yugabyte.database=ferry\n",
        &format!("yugabyte.database={db}\n"),
    ) + "ferry.adaptiveConcurrency=false\n"; // 16 workers, not raised while counting
    let cfg = common::write_config(&ks, &props);
    let cfg = cfg.to_str().unwrap();
    let sessions = || async {
        pg.query_one(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1",
            &[&db],
        )
        .await
        .expect("pg_stat_database")
        .get::<_, i64>(0)
    };
    let before = sessions().await;
    let out = ferry(&["plan", "-c", cfg, "--keyspace", &ks, "--create-tables"]);
    let chunks: usize = chunks_by_table(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .filter(|(t, _)| !t.ends_with("_counters"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        chunks >= 30,
        "the ten tables should plan several chunks each: {chunks}"
    );
    let planned = sessions().await;
    let out = ferry(&[
        "migrate",
        "-c",
        cfg,
        "--keyspace",
        &ks,
        "--create-tables",
        "--json",
    ]);
    assert!(out.status.success());
    // Statistics reach pg_stat_database when a backend ends; give the last ones a moment.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let opened = sessions().await - planned;
    eprintln!(
        "sessions: plan {} , migrate {opened} for {chunks} chunks",
        planned - before
    );
    // 16 workers' connections, the admin connection and the run's own few; one per table's
    // worker would be 40 or more.
    assert!(
        opened <= 24,
        "the run opened {opened} target sessions for {chunks} chunks in 20 tables"
    );
    let out = ferry(&["validate", "-c", cfg, "--keyspace", &ks]);
    assert!(out.status.success(), "the keyspace differs after migrating");
}

/// One worker copies a table of several chunks: each chunk's commit also leases the worker's
/// next chunk (one flight, after COMMIT, in a new transaction). Every chunk ends done, committed
/// once (its `attempts` count is 1: no chunk was copied twice or left to a retry), and the
/// table is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_leases_each_next_chunk_with_the_commit_and_copies_exactly() {
    common::testbed();
    let ks = common::unique_name("sizing_flight");
    common::gen(&ks, "t", 16_000, 3, 90);
    let props = common::testbed_properties(&ks, "t", &ks)
        + &format!(
            "ferry.maxParallelChunks=1\nferry.adaptiveConcurrency=false\n\
             migration.checkpoint.keyspace={ks}_p\n"
        );
    let cfg = common::write_config(&ks, &props);
    let cfg = cfg.to_str().unwrap();
    let out = ferry(&["migrate", "-c", cfg, "--create-tables", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pg = common::pg_connect(5433).await;
    let row = pg
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE state = 'done'), \
                        coalesce(sum(attempts), 0)::int8, coalesce(sum(rows_written), 0)::int8 \
                 FROM {ks}_p.ferry_chunks"
            ),
            &[],
        )
        .await
        .expect("the chunks' progress");
    let (chunks, done, attempts, rows): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert!(
        chunks >= 3,
        "16,000 rows should plan several chunks: {chunks}"
    );
    assert_eq!(done, chunks, "every chunk done");
    assert_eq!(attempts, chunks, "each chunk committed once");
    assert_eq!(rows, 16_000);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(summary["rows_written"], 16_000);
    let out = ferry(&["validate", "-c", cfg]);
    assert!(out.status.success(), "the table differs after migrating");
}
