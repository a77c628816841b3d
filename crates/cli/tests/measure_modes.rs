//! The measurement modes `bench/migration` builds its limits on, on the real test bed:
//! `--scan-only` reads every row and writes none, `--capture` writes each chunk's COPY payload to
//! a folder and nothing to the target, and `--replay` loads those payloads into the emptied
//! target table, which then holds exactly what a normal migration writes.

mod common;

fn summary(out: &str) -> serde_json::Value {
    let start = out.find('{').expect("a JSON summary");
    let end = out.rfind('}').expect("a JSON summary");
    serde_json::from_str(&out[start..=end]).expect("summary JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_capture_and_replay_measure_without_changing_what_lands() {
    common::testbed();
    let ks = common::unique_name("modes");
    let rows = 6_000u64;
    common::gen(&ks, "t", rows, 3, 11);
    let cfg = common::write_config(&ks, &common::testbed_properties(&ks, "t", &ks));

    // The reference: a normal migration (its values are checked one by one in migrate.rs).
    common::run_migrate(&cfg, &["--create-tables"]);
    let migrated = common::table_digest(&ks, "t").await;
    assert_eq!(migrated.0, rows as i64);

    // Scan only: every row read, none written; the target keeps what it had.
    let s = summary(&common::run_migrate(&cfg, &["--scan-only", "--json"]));
    assert_eq!(s["tables"][0]["rows_read"].as_u64(), Some(rows), "{s}");
    assert_eq!(common::table_digest(&ks, "t").await, migrated);

    // Capture: payload files, nothing written to the target.
    let dir = std::env::temp_dir().join(common::unique_name("ferry-capture"));
    let dir_s = dir.to_str().expect("utf-8 path");
    common::run_migrate(&cfg, &["--capture", dir_s]);
    let files = std::fs::read_dir(&dir)
        .expect("capture folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pgcopy"))
        })
        .count();
    assert!(files > 0, "no captured chunk in {dir_s}");
    assert_eq!(common::table_digest(&ks, "t").await, migrated);

    // Replay refuses a table with rows unless told to empty it (issue 17): nothing changes.
    let pg = common::pg_connect(5433).await;
    pg.batch_execute(&format!("DELETE FROM {ks}.t WHERE pk % 2 = 0"))
        .await
        .expect("delete half");
    let half = common::table_digest(&ks, "t").await;
    let out = common::spawn_migrate(&cfg, &["--replay", dir_s])
        .wait_with_output()
        .expect("replay");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--truncate") && err.contains("already has rows"),
        "{err}"
    );
    assert_eq!(common::table_digest(&ks, "t").await, half);

    // With --truncate: the target is emptied and reloaded from the payloads alone — the same
    // rows.
    let s = summary(&common::run_migrate(
        &cfg,
        &["--replay", dir_s, "--truncate", "--json"],
    ));
    assert_eq!(s["tables"][0]["rows_written"].as_u64(), Some(rows), "{s}");
    assert_eq!(common::table_digest(&ks, "t").await, migrated);
    let _ = std::fs::remove_dir_all(&dir);
}
