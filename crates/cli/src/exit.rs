//! The one exit-code table every command answers with. A command returns an [`Exit`]; `main`
//! turns it (or an error) into the process's exit code. `ferry --help` and README show the same
//! table ([`help_table`], [`markdown_table`]; a test keeps README in step).
//!
//! Why these numbers: 0 and 1 mean what `diff`, `cmp` and test runners mean by them (same /
//! different); 2 is what clap already uses for a usage error, so every bad input — a flag or a
//! configuration key — answers 2; 3 and 4 are ferry's own and leave a shell's 126+ alone.

use std::process::ExitCode;

/// How a command ended, as a script sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done; everything asked for happened.
    Success,
    /// The command ran to its end but its answer is "no": the tables differ (`validate`,
    /// `migrate --validate`), the improvement gate was missed (`compare`), a check failed
    /// (`diagnose`), a probe failed or an expectation was missed (`bench`, `baseline`).
    CheckFailed,
    /// Bad input or refused: a flag, a configuration key, a file that cannot be read, a server
    /// that refuses; nothing was written to the target.
    BadInput,
    /// `migrate` finished, but some rows could not be written; they are in the reject file.
    Rejected,
    /// `migrate` stopped partway (Ctrl-C, or an error after its plan was stored); what was
    /// committed stays, and the same command resumes.
    Stopped,
}

impl Exit {
    /// Every outcome, in the order the table shows them.
    pub const ALL: [Exit; 5] = [
        Exit::Success,
        Exit::CheckFailed,
        Exit::BadInput,
        Exit::Rejected,
        Exit::Stopped,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::CheckFailed => 1,
            Exit::BadInput => 2,
            Exit::Rejected => 3,
            Exit::Stopped => 4,
        }
    }

    /// One line: what the code tells a script.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::CheckFailed => {
                "not equal / gate missed / check failed: validate found differences, compare's \
                 --min-improvement was missed, diagnose has a failed check, a bench probe or a \
                 baseline expectation failed"
            }
            Exit::BadInput => {
                "bad input or refused: a flag, a configuration key, an unreadable file, a server \
                 that cannot be reached before anything was written; nothing was written"
            }
            Exit::Rejected => {
                "success with rejected rows: migrate finished, some rows could not be written \
                 (see the reject file)"
            }
            Exit::Stopped => {
                "stopped, resumable: migrate stopped partway (Ctrl-C, or an error after its plan \
                 was stored), or a side stayed down past ferry.outageDeadlineSecs (migrate, \
                 validate); rerun the same command to resume"
            }
        }
    }
}

impl Exit {
    /// The code for a command that ended in an error: [`Exit::Stopped`] when a rerun resumes
    /// (a migration's error once copying started — a fatal error on either side, such as a
    /// revoked privilege, included: what was committed stays), else [`Exit::BadInput`].
    pub fn of_error(e: &anyhow::Error) -> Exit {
        if e.downcast_ref::<Resumable>().is_some()
            // anyhow finds a context type anywhere in the chain by downcasting the error.
            || e
                .downcast_ref::<ferry_migrate::retry::OutageStop>()
                .is_some()
        {
            Exit::Stopped
        } else {
            Exit::BadInput
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// An error after which a rerun of the same command resumes (the migration's plan is stored and
/// its committed chunks stay). `main` answers it with [`Exit::Stopped`] instead of
/// [`Exit::BadInput`].
#[derive(Debug)]
pub struct Resumable;

impl std::fmt::Display for Resumable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the migration stopped partway; committed chunks stay and the same command resumes",
        )
    }
}

/// The table `ferry --help` ends with.
pub fn help_table() -> String {
    let mut s = String::from("Exit codes (every command):\n");
    for e in Exit::ALL {
        s.push_str(&format!("  {}  {}\n", e.code(), e.meaning()));
    }
    s.push_str("\nEvery command but completions and man takes --json: one JSON object on stdout, with\nschema_version and command (docs/json.md).");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same table as Markdown, as README shows it.
    pub fn markdown_table() -> String {
        let mut s = String::from("| exit code | meaning |\n|---|---|\n");
        for e in Exit::ALL {
            s.push_str(&format!("| {} | {} |\n", e.code(), e.meaning()));
        }
        s
    }

    #[test]
    fn an_outage_past_its_deadline_is_a_stop_however_deep_in_the_chain() {
        use std::time::Duration;
        let mut o = ferry_migrate::retry::Outage::rerun(Duration::ZERO);
        let _ = o.failed("the target", "validating", anyhow::anyhow!("refused"));
        std::thread::sleep(Duration::from_millis(2));
        let e = o
            .failed("the target", "validating", anyhow::anyhow!("refused"))
            .unwrap_err()
            .context("validating ks.t");
        assert_eq!(Exit::of_error(&e), Exit::Stopped);
        assert_eq!(Exit::of_error(&anyhow::anyhow!("bad key")), Exit::BadInput);
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
    }

    #[test]
    fn readme_shows_the_table() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's exit-code table differs from crates/cli/src/exit.rs; it should read:\n{}",
            markdown_table()
        );
    }
}
