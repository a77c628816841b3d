//! `ferry completions SHELL` and `ferry man` (issue 24): the bash script really completes
//! subcommands and flags when bash runs it, every shell's script is produced, and the man pages
//! render without a groff warning, with the exit-code table under EXIT STATUS. Needs no servers.

mod common;

use std::process::Command;

fn ferry_out(args: &[&str]) -> String {
    let out = common::ferry().args(args).output().expect("running ferry");
    assert!(
        out.status.success(),
        "ferry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What bash's completion function offers for `words`, the last one being completed.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _ferry ferry '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword],
        words[cword.saturating_sub(1)],
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let dir = common::bench_dir("completions");
    let script = dir.join("ferry.bash");
    std::fs::write(&script, ferry_out(&["completions", "bash"])).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .expect("bash -n");
    assert!(check.success(), "the bash script does not parse");

    assert_eq!(bash_complete(&script, &["ferry", "sta"]), ["status"]);
    let mut subcommands = bash_complete(&script, &["ferry", "c"]);
    subcommands.sort();
    assert_eq!(subcommands, ["compare", "completions"]);
    assert!(bash_complete(&script, &["ferry", "status", "--j"]).contains(&"--json".to_string()));
    let probes = bash_complete(&script, &["ferry", "bench", "re"]);
    assert_eq!(probes, ["redis"]);
    let shells = bash_complete(&script, &["ferry", "completions", "z"]);
    assert_eq!(shells, ["zsh"]);
}

#[test]
fn every_shell_gets_a_script() {
    for (shell, marker) in [
        ("bash", "complete -F _ferry"),
        ("zsh", "#compdef ferry"),
        ("fish", "complete -c ferry"),
        ("elvish", "edit:completion:arg-completer[ferry]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = ferry_out(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        assert!(script.contains("validate"), "{shell}: no subcommands");
    }
    let out = common::ferry()
        .args(["completions", "tcsh"])
        .output()
        .expect("ferry");
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad input");
}

#[test]
fn man_pages_render_cleanly_with_the_exit_codes() {
    let page = ferry_out(&["man"]);
    assert!(page.contains(".TH ferry 1"), "{page}");
    assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
    let dir = common::bench_dir("man");
    ferry_out(&["man", "--dir", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "ferry.1",
        "ferry-migrate.1",
        "ferry-status.1",
        "ferry-bench-redis.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "no {want} in {pages:?}");
    }
    for p in &pages {
        // groff -k: UTF-8 through preconv, as man(1) does; -ww: every warning; -z: parse and
        // lay out, print nothing.
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.join(p))
            .output()
            .expect("groff (Debian package groff-base)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-P-cbou"])
        .arg(dir.join("ferry.1"))
        .output()
        .expect("groff");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("EXIT STATUS"), "{text}");
    assert!(text.contains("stopped, resumable"), "{text}");
    let migrate = std::fs::read_to_string(dir.join("ferry-migrate.1")).unwrap();
    assert!(migrate.contains("create\\-tables"), "{migrate}");
}
