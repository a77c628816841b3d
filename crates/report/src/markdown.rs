//! The report as Markdown (GitHub flavour). Charts exist only in the HTML twin; the numbers
//! behind them are in the tables here.

use crate::doc::{Block, Table};

pub fn render(blocks: &[Block]) -> String {
    let mut o = String::new();
    for b in blocks {
        match b {
            Block::H1(t) => o.push_str(&format!("# {t}\n\n")),
            Block::H2(t) => o.push_str(&format!("## {t}\n\n")),
            Block::H3(t) => o.push_str(&format!("### {t}\n\n")),
            Block::Para(t) => o.push_str(&format!("{t}\n\n")),
            Block::Bullets(items) => {
                for i in items {
                    o.push_str(&format!("- {i}\n"));
                }
                o.push('\n');
            }
            Block::Table(t) => table(&mut o, t),
            Block::Chart(_) => {}
        }
    }
    o.truncate(o.trim_end().len());
    o.push('\n');
    o
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table(o: &mut String, t: &Table) {
    o.push('|');
    for h in &t.head {
        o.push_str(&format!(" {} |", cell(h)));
    }
    o.push_str("\n|");
    for n in &t.numeric {
        o.push_str(if *n { "---:|" } else { "---|" });
    }
    o.push('\n');
    for row in &t.rows {
        o.push('|');
        for c in row {
            o.push_str(&format!(" {} |", cell(c)));
        }
        o.push('\n');
    }
    o.push('\n');
}
