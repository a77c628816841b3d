//! `ferry migrate --ui`: the live page in a real browser (Debian's headless Chromium) during a
//! real migration, `/api/status`, and `/metrics` read by a Prometheus text parser.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// A plain HTTP GET; the body, or `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn status(port: u16) -> Option<serde_json::Value> {
    serde_json::from_str(&get(port, "/api/status")?).ok()
}

/// Headless Chromium with the flags this sandbox needs; a fresh profile per call.
fn chromium(args: &[&str], url: &str) -> String {
    let profile = std::env::temp_dir().join(common::unique_name("chromium-profile"));
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is missing: apt-get install -y chromium (scripts/test does)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The text of the element with this id (a leaf element).
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} not in the page"));
    let start = at + dom[at..].find('>').expect(">") + 1;
    &dom[start..start + dom[start..].find('<').expect("<")]
}

/// An attribute of the element with this id.
fn attr<'a>(dom: &'a str, id: &str, name: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} not in the page"));
    let tag = &dom[dom[..at].rfind('<').expect("<")..at + dom[at..].find('>').expect(">")];
    let key = format!("{name}=\"");
    let v = &tag[tag
        .find(&key)
        .unwrap_or_else(|| panic!("{name} not on #{id}: {tag}"))
        + key.len()..];
    &v[..v.find('"').expect("quote")]
}

fn number(s: &str) -> u64 {
    s.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn the_live_page_moves_in_chromium_and_metrics_parse_as_prometheus_text() {
    common::testbed();
    let ks = common::unique_name("ui");
    common::gen(&ks, "t", 30_000, 2, 11);
    let schema = common::unique_name("ui");
    // 3 000 rows/s: about ten seconds of migration to watch.
    let body = common::testbed_properties(&ks, "t", &schema)
        + "cassandra.readsPerSec=3000\ncassandra.fetchSizeInRows=500\nyugabyte.copyFlushEvery=1000\n";
    let cfg = common::write_config(&schema, &body);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = common::spawn_migrate(
        &cfg,
        &[
            "--create-tables",
            "--json",
            "--ui",
            &addr,
            "--ui-linger",
            "3",
        ],
    );
    let url = format!("http://{addr}/");

    // Wait for rows to arrive.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = status(port) {
            if s["rows_written"].as_u64().unwrap_or(0) > 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the live page never showed a written row"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Each table's state and rate.
    let s = status(port).expect("status");
    let t = &s["tables"][0];
    assert!(
        ["copying", "done"].contains(&t["state"].as_str().unwrap_or("")),
        "{t:#}"
    );
    assert!(t["rows_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{t:#}");

    let first = chromium(&["--dump-dom"], &url);
    std::thread::sleep(Duration::from_secs(3));
    // Per-node latency appears once a node has answered: under load, the workers on the first
    // target node may not have committed their first (rate-limited) chunk yet. Wait until the
    // status names both nodes, then check the page shows them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !status(port).is_some_and(|s| {
        let nodes = s["nodes"].to_string();
        nodes.contains("127.0.0.1:9042") && nodes.contains("127.0.0.1:5433")
    }) {
        assert!(
            Instant::now() < deadline,
            "the status never named both nodes: {:#}",
            status(port).map(|s| s["nodes"].clone()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let second = chromium(&["--dump-dom"], &url);
    let shot = std::env::temp_dir().join(format!("{schema}.png"));
    chromium(
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", shot.display()),
        ],
        &url,
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot"
    );
    if std::env::var_os("FERRY_UPDATE_DOCS").is_some() {
        std::fs::copy(&shot, common::repo_root().join("docs/ui.png")).expect("docs/ui.png");
    }

    // The numbers and the chart moved between the two renders.
    let (r1, r2) = (
        number(by_id(&first, "rows-written")),
        number(by_id(&second, "rows-written")),
    );
    eprintln!("rows written on the page: {r1} then {r2}");
    assert!(r1 > 0 && r2 > r1, "rows written did not move: {r1} → {r2}");
    let (n1, n2) = (
        number(attr(&first, "line", "data-samples")),
        number(attr(&second, "line", "data-samples")),
    );
    assert!(n2 > n1, "the chart gained no samples: {n1} → {n2}");
    assert_ne!(
        attr(&first, "line", "points"),
        attr(&second, "line", "points"),
        "the chart did not change"
    );
    assert!(attr(&second, "line", "points").split(' ').count() >= 4);
    // The rest of the page is filled in.
    for id in ["bottleneck", "in-flight", "rate"] {
        assert!(
            !by_id(&second, id).trim().is_empty() && by_id(&second, id) != "—",
            "#{id} empty"
        );
    }
    for node in ["127.0.0.1:9042", "127.0.0.1:5433"] {
        assert!(second.contains(node), "per-node latency lacks {node}");
    }
    assert!(
        second.contains(&format!("{ks}.t")),
        "the table's progress row is missing"
    );

    // /metrics through a real Prometheus text parser.
    let text = get(port, "/metrics").expect("/metrics");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text");
    assert!(!scrape.samples.is_empty());
    for s in &scrape.samples {
        assert!(
            s.metric.starts_with("ferry_")
                && s.metric.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "metric name {}",
            s.metric
        );
    }
    for (name, ty) in &scrape.docs {
        assert!(!ty.is_empty(), "{name} has no HELP");
    }
    let value = |name: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert!(value("ferry_written_rows_total") > 0.0);
    assert!(value("ferry_source_page_seconds") > 0.0);
    assert!(value("ferry_commit_seconds") > 0.0);
    assert!(value("ferry_total_chunks") > 0.0);
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "ferry_node_requests_total"
            && s.labels.get("node") == Some("127.0.0.1:9042")
            && s.labels.get("side") == Some("source")));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "ferry_wait_seconds_total" && s.labels.get("side") == Some("target")));

    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["rows_written"], 30_000);
    for k in ["source", "target", "encode"] {
        assert!(
            summary["wait_seconds"][k].as_f64().is_some(),
            "summary lacks wait_seconds.{k}"
        );
    }
    assert!(summary["bottleneck"].is_string());
    // The server ends with the run (after the linger).
    std::thread::sleep(Duration::from_millis(300));
    assert!(status(port).is_none(), "the page outlived the migration");
}
