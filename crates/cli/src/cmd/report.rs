//! `ferry report RUNS… --md FILE --html FILE`: the seed's "Performance Baseline Report" from run
//! records — a Markdown file and a self-contained HTML page with SVG charts.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use ferry_report::model::Input;
use ferry_report::RunRecord;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run records (any kind: probes, baselines, migrations).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub md: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

pub async fn run(args: ReportArgs) -> Result<Exit> {
    let mut inputs = Vec::new();
    for p in &args.runs {
        let record = RunRecord::load(p)?;
        let source = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string());
        inputs.push(Input { source, record });
    }
    if inputs.is_empty() {
        bail!("no run records given");
    }
    let (md, html) = ferry_report::render(&inputs);
    if args.md.is_none() && args.html.is_none() {
        print!("{md}");
        return Ok(Exit::Success);
    }
    if let Some(p) = &args.md {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
        println!("markdown: {}", p.display());
    }
    if let Some(p) = &args.html {
        std::fs::write(p, &html).with_context(|| format!("writing {}", p.display()))?;
        println!("html: {}", p.display());
    }
    Ok(Exit::Success)
}
