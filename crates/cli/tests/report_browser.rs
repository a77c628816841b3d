//! The HTML report as a reader sees it, in a real browser (Debian's headless Chromium, part of
//! the test environment like the servers: without it this test fails, it does not skip).
//!
//! From real run records (the test bed's Kafka, PostgreSQL, Cassandra, a migration, a Ray +
//! Redis + Trino baseline, Trino's 64-metric tpch run, Redis before and after pipelining), at a
//! 1300×900 window: the executive summary ends above the fold, and no table is wider than the
//! page. Chromium lays the page out; a script added to a copy of it reads the geometry.

mod common;

use common::*;

const WIDTH: u32 = 1300;
const HEIGHT: u32 = 900;

/// Reads the laid-out page: where the executive summary ends, the widest table's right edge,
/// the page's width and scroll width.
const MEASURE: &str = r#"<script>
const h2s = [...document.querySelectorAll('h2')];
const ex = h2s.find(h => h.textContent === 'Executive summary');
let el = ex, bottom = 0;
while ((el = el.nextElementSibling) && el.tagName !== 'H2') {
  bottom = Math.max(bottom, el.getBoundingClientRect().bottom + window.scrollY);
}
const tables = [...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().right);
const m = document.createElement('pre');
m.id = 'measure';
m.textContent = JSON.stringify({
  page_width: document.documentElement.clientWidth,
  scroll_width: document.documentElement.scrollWidth,
  summary_bottom: bottom,
  tables: tables.length,
  widest_table_right: Math.max(...tables),
});
document.body.appendChild(m);
</script>"#;

fn chromium(args: &[String]) -> std::process::Output {
    std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--window-size={WIDTH},{HEIGHT}"),
        ])
        .args(args)
        .output()
        .expect("running chromium (apt-get install chromium; scripts/test installs it)")
}

#[test]
fn executive_summary_fits_one_screen_and_no_table_is_wider_than_the_page() {
    let d = bench_dir("ferry_report_browser");
    let data = repo_root().join("crates/report/tests/data");
    let html = d.join("report.html");
    let md = d.join("report.md");
    let mut args: Vec<String> = vec!["report".into()];
    for f in [
        "kafka-acks-all.json",
        "kafka-acks-1.json",
        "postgres.json",
        "cassandra.json",
        "migration.json",
        "baseline.json",
        "baseline-ray-redis-trino.json",
        "trino-tpch.json",
        "redis-plain.json",
        "redis-pipelined.json",
    ] {
        args.push(data.join(f).display().to_string());
    }
    args.extend([
        "--html".into(),
        html.display().to_string(),
        "--md".into(),
        md.display().to_string(),
    ]);
    ferry_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // The screenshot a reader gets at 1300×900.
    let png = d.join("summary.png");
    let out = chromium(&[
        format!("--screenshot={}", png.display()),
        format!("file://{}", html.display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let dim = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((dim(16), dim(20)), (WIDTH, HEIGHT));

    // The geometry, from a copy with the measuring script.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("<script"),
        "the report itself runs no script"
    );
    let measured = d.join("measured.html");
    std::fs::write(
        &measured,
        page.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .unwrap();
    let out = chromium(&[
        "--dump-dom".into(),
        format!("file://{}", measured.display()),
    ]);
    let dom = String::from_utf8_lossy(&out.stdout);
    let json = dom
        .split("<pre id=\"measure\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no measurement in the DOM: {}", &dom[..dom.len().min(500)]));
    let m: serde_json::Value = serde_json::from_str(json).expect("measurement JSON");
    eprintln!("{m}");
    let f = |k: &str| m[k].as_f64().unwrap();
    assert!(f("tables") >= 10.0, "{m}");
    assert!(
        f("summary_bottom") <= HEIGHT as f64,
        "the executive summary ends at {} px, below the {HEIGHT} px screen",
        f("summary_bottom")
    );
    assert!(
        f("widest_table_right") <= f("page_width") && f("scroll_width") <= f("page_width"),
        "a table is wider than the page: {m}"
    );

    // The same content in Markdown: the summary's rows, split tables, no mixed-unit chart.
    let md = std::fs::read_to_string(&md).unwrap();
    for s in [
        "## Executive summary",
        "| service | probe | headline | expectation | vs baseline | verdict |",
        "| Ray | ray-tasks |",
        "**Throughput**",
        "**Latency**",
    ] {
        assert!(md.contains(s), "{s} missing from the Markdown");
    }
    for caption in page.split("<figcaption>").skip(1) {
        let caption = caption.split("</figcaption>").next().unwrap();
        assert!(
            !(caption.contains("tasks/s") && caption.contains("operations/s")),
            "{caption}"
        );
    }
}
