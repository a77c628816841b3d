//! Golden tests: the Markdown and HTML reports and the compare table from fixed run records
//! (real probe runs against the test bed, kept in tests/data). A change in wording, numbers or
//! layout shows up as a snapshot diff to review.

use ferry_report::compare::{self, Gate, Options};
use ferry_report::model::Input;
use ferry_report::RunRecord;

fn load(name: &str) -> Input {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    Input {
        source: name.to_string(),
        record: RunRecord::load(std::path::Path::new(&path)).expect("fixture"),
    }
}

fn inputs() -> Vec<Input> {
    [
        "kafka-acks-all.json",
        "kafka-acks-1.json",
        "postgres.json",
        "cassandra.json",
        "migration.json",
        "baseline.json",
    ]
    .into_iter()
    .map(load)
    .collect()
}

#[test]
fn markdown_report() {
    let (md, _) = ferry_report::render(&inputs());
    assert!(!md.contains("[INSERT"));
    insta::assert_snapshot!("report_md", md);
}

#[test]
fn html_report() {
    let (_, html) = ferry_report::render(&inputs());
    assert!(html.contains("<svg") && !html.contains("<script"));
    insta::assert_snapshot!("report_html", html);
}

#[test]
fn compare_table_and_gate() {
    let (a, b) = (load("kafka-acks-all.json"), load("kafka-acks-1.json"));
    let c = compare::compare(&a.record, &b.record, &Options::default());
    let g = compare::gate(
        &c,
        &Gate {
            metric: "records_per_sec".into(),
            min_improvement: 0.3,
        },
    );
    let text = format!("{}\n{}", compare::render_text(&c), g.lines.join("\n"));
    insta::assert_snapshot!("compare_kafka_acks", text);
    // A record against itself: never an improvement.
    let same = compare::compare(&a.record, &a.record, &Options::default());
    assert!(
        !compare::gate(
            &same,
            &Gate {
                metric: "records_per_sec".into(),
                min_improvement: 0.3
            }
        )
        .passed
    );
}
