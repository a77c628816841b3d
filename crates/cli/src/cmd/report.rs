//! `ferry report RUNS… --md FILE --html FILE`: the seed's "Performance Baseline Report" from run
//! records — a Markdown file and a self-contained HTML page with SVG charts.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use ferry_report::model::Input;
use ferry_report::RunRecord;
use serde_json::json;

use super::output;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run records (any kind: migrations, validations, diagnoses, probes, baselines), or
    /// folders: every `*.json` in a folder is read.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub md: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print where the report went as one JSON object on stdout (docs/json.md); without --md
    /// and --html the Markdown is in it.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ReportArgs) -> Result<Exit> {
    let mut files = Vec::new();
    for p in &args.runs {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading the folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    let mut inputs = Vec::new();
    for p in &files {
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
    let no_files = args.md.is_none() && args.html.is_none();
    if no_files && !args.json {
        print!("{md}");
        return Ok(Exit::Success);
    }
    if let Some(p) = &args.md {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.html {
        std::fs::write(p, &html).with_context(|| format!("writing {}", p.display()))?;
    }
    let shown = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    if args.json {
        output::print_json(
            "report",
            &json!({
                "runs": args.runs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "markdown": shown(&args.md),
                "html": shown(&args.html),
                "markdown_text": no_files.then_some(&md),
            }),
        )?;
        return Ok(Exit::Success);
    }
    if let Some(p) = shown(&args.md) {
        println!("markdown: {p}");
    }
    if let Some(p) = shown(&args.html) {
        println!("html: {p}");
    }
    Ok(Exit::Success)
}
