//! `ferry completions SHELL` and `ferry man`: the shell completion script and the man pages,
//! generated from the same clap definition that parses the command line, so they never list a
//! flag ferry does not have.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write ferry.1 and one page per subcommand (ferry-migrate.1, …) into DIR instead of
    /// printing ferry.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs) -> Result<Exit> {
    let mut cmd = crate::cli_command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "ferry", &mut out);
    out.flush().context("writing the completion script")?;
    Ok(Exit::Success)
}

/// Prints ferry.1, or writes every page into `--dir`.
pub fn man(args: ManArgs) -> Result<Exit> {
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(crate::cli_command(), dir)
                .with_context(|| format!("writing the man pages into {}", dir.display()))?;
            // ferry.1 again, with the exit codes under their usual heading.
            let path = dir.join("ferry.1");
            let mut f = std::fs::File::create(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            top_page(&mut f).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            top_page(&mut out).context("writing the man page")?;
            out.flush().context("writing the man page")?;
        }
    }
    Ok(Exit::Success)
}

/// ferry.1: clap_mangen's sections, with the exit-code table as EXIT STATUS (where man pages
/// keep it) instead of clap's EXTRA.
fn top_page(w: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(crate::cli_command());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    writeln!(w, ".SH \"EXIT STATUS\"")?;
    for e in Exit::ALL {
        writeln!(w, ".TP\n\\fB{}\\fR\n{}", e.code(), roff_text(e.meaning()))?;
    }
    writeln!(w, ".SH \"JSON OUTPUT\"")?;
    writeln!(
        w,
        "Every command but completions and man takes \\fB\\-\\-json\\fR and then prints one JSON object on stdout, with \\fBschema_version\\fR and \\fBcommand\\fR; docs/json.md describes each shape."
    )?;
    man.render_version_section(w)
}

/// Text safe inside a roff paragraph: hyphens as `\-` (so `--json` stays two minus signs), and
/// no line starting with a control character.
fn roff_text(s: &str) -> String {
    let t = s.replace('\\', "\\\\").replace('-', "\\-");
    if t.starts_with(['.', '\'']) {
        format!("\\&{t}")
    } else {
        t
    }
}
