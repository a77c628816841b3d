//! Exactly once, whatever happens to the migrator: kill -9 at random moments and rerun; several
//! workers on one plan with one of them killed. The target must end equal to an uninterrupted
//! migration of the same source (row count and content digest; the primary key is enforced, so
//! a doubled row would fail the COPY, and a missing one changes the digest).

mod common;

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

const ROWS: u64 = 500_000;

static SECS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

async fn reference_secs() -> f64 {
    reference().await;
    *SECS.get().expect("set by reference()")
}

/// The source (500K rows) and the digest of its uninterrupted migration.
async fn reference() -> (String, (i64, String)) {
    static REF: tokio::sync::OnceCell<(String, (i64, String))> = tokio::sync::OnceCell::const_new();
    REF.get_or_init(|| async {
        common::testbed();
        let ks = common::unique_name("resume");
        common::gen(&ks, "t", ROWS, 3, 21);
        let schema = common::unique_name("resume_ref");
        let cfg = common::write_config(&schema, &common::testbed_properties(&ks, "t", &schema));
        let t = Instant::now();
        common::run_migrate(&cfg, &["--create-tables"]);
        eprintln!(
            "uninterrupted migration of {ROWS} rows: {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let _ = SECS.set(t.elapsed().as_secs_f64());
        let digest = common::table_digest(&schema, "t").await;
        assert_eq!(digest.0, ROWS as i64);
        (ks, digest)
    })
    .await
    .clone()
}

fn config(ks: &str, schema: &str) -> std::path::PathBuf {
    // Short leases, so a killed worker's chunks come back quickly.
    let body = common::testbed_properties(ks, "t", schema)
        + "ferry.leaseSecs=3\nferry.maxParallelChunks=16\n";
    common::write_config(schema, &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_ten_random_moments_then_rerun_gives_exactly_the_source() {
    let (ks, want) = reference().await;
    let schema = common::unique_name("resume_kill");
    let cfg = config(&ks, &schema);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xF3_22);
    // Kill moments fall inside what is left of the run: at most half the time an uninterrupted
    // run would need for the rows not yet committed.
    let full_ms = reference_secs().await * 1000.0;
    let mut committed = 0i64;
    let mut kills = 0;
    let mut finished_early = 0;
    while kills < 10 {
        let mut child = common::spawn_migrate(&cfg, &["--create-tables"]);
        let left = full_ms * (ROWS as i64 - committed) as f64 / ROWS as f64;
        let delay = Duration::from_millis(rng.random_range(300..(left * 0.5).max(600.0) as u64));
        std::thread::sleep(delay);
        if child.try_wait().expect("poll").is_some() {
            // The run ended before the kill: everything is copied; count it and stop killing.
            finished_early += 1;
            break;
        }
        child.kill().expect("kill -9"); // SIGKILL: no cleanup at all
        child.wait().expect("reap");
        kills += 1;
        let partial = common::table_digest(&schema, "t").await;
        eprintln!("kill {kills} after {delay:?}: {} rows committed", partial.0);
        assert!(partial.0 <= ROWS as i64);
        committed = partial.0;
    }
    let out = common::run_migrate(&cfg, &["--create-tables"]);
    assert!(out.contains("resuming"), "the rerun did not resume:\n{out}");
    // Killed runs leave nothing stale behind (issue 23): no refusal, no restart, no warning.
    for word in ["no longer matches", "is void", "warning:"] {
        assert!(!out.contains(word), "a normal resume said '{word}':\n{out}");
    }
    assert!(
        kills >= 8,
        "too few kills landed mid-run ({kills}, finished early: {finished_early})"
    );
    assert_eq!(common::table_digest(&schema, "t").await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_one_plan_and_survive_one_killed() {
    let (ks, want) = reference().await;
    let schema = common::unique_name("resume_workers");
    let cfg = config(&ks, &schema);
    let mut workers: Vec<_> = (0..3)
        .map(|_| common::spawn_migrate(&cfg, &["--create-tables", "--json"]))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let victim = workers.remove(1);
    let mut victim = victim;
    victim.kill().expect("kill -9 one worker");
    victim.wait().expect("reap");
    let mut written = 0u64;
    for w in workers {
        let out = w.wait_with_output().expect("wait worker");
        assert!(
            out.status.success(),
            "a surviving worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json summary");
        written += summary["rows_written"].as_u64().expect("rows_written");
    }
    // The survivors wrote the rest; with the victim's share the table is complete, once.
    assert!(written > 0 && written <= ROWS, "survivors wrote {written}");
    assert_eq!(common::table_digest(&schema, "t").await, want);
}
