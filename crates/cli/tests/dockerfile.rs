//! A static check of the Dockerfile and its contract with deploy/kubernetes/job.yaml (issue 24).
//! Docker cannot run on the machine the tests run on, so the image is never built here; this
//! reads the files: a multi-stage build, base images pinned to exact versions, a runtime stage
//! with nothing but CA certificates and the binary, a non-root user, and the binary path, image
//! name and user the Job relies on.

mod common;

fn read(path: &str) -> String {
    std::fs::read_to_string(common::repo_root().join(path))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The Dockerfile's instructions, with `\` continuations joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim();
        if pending.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(t);
                let (op, rest) = pending.split_once(' ').unwrap_or((&pending, ""));
                out.push((op.to_uppercase(), rest.trim().to_string()));
                pending.clear();
            }
        }
    }
    out
}

/// Stages: (FROM arguments, the stage's other instructions).
fn stages(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (op, rest) in instructions(text) {
        if op == "FROM" {
            stages.push((rest, Vec::new()));
        } else if let Some(last) = stages.last_mut() {
            last.1.push((op, rest));
        }
    }
    stages
}

/// An image reference pinned to one build: a digest, or a tag holding a full version
/// (`1.95.0-slim-trixie`, `13.2-slim`), never `latest` or a bare name.
fn pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let Some((_, tag)) = image.rsplit_once(':') else {
        return false;
    };
    let version = tag.split('-').next().unwrap_or("");
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

const BINARY: &str = "/usr/local/bin/ferry";

#[test]
fn the_dockerfile_builds_in_two_pinned_stages_and_runs_ferry_as_non_root() {
    let stages = stages(&read("Dockerfile"));
    assert!(
        stages.len() >= 2,
        "a multi-stage build: {} stage(s)",
        stages.len()
    );
    for (from, _) in &stages {
        let image = from.split_whitespace().next().unwrap();
        assert!(
            pinned(image),
            "FROM {from}: pin the base image to an exact version or digest"
        );
    }

    // The build stage: cargo, locked to Cargo.lock, a Rust at least the workspace's rust-version.
    let (build_from, build) = &stages[0];
    assert!(
        build_from.ends_with(" AS build"),
        "FROM {build_from}: name the first stage `build`"
    );
    let rust = build_from
        .strip_prefix("rust:")
        .and_then(|t| t.split('-').next())
        .expect("the build stage starts from the official rust image");
    let workspace = read("Cargo.toml");
    let min = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version in Cargo.toml")
        .trim_matches('"');
    let v = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        v(rust) >= v(min),
        "rust {rust} is older than rust-version {min}"
    );
    assert!(
        build.iter().any(|(op, rest)| op == "RUN"
            && rest.contains("cargo build --release --locked -p ferry-cli")),
        "the build stage runs cargo build --release --locked -p ferry-cli"
    );

    // The runtime stage: CA certificates only, the binary, a non-root user, ferry as entrypoint.
    let (_, run) = stages.last().unwrap();
    let installs: Vec<&str> = run
        .iter()
        .filter(|(op, _)| op == "RUN")
        .flat_map(|(_, rest)| rest.split("&&"))
        .filter_map(|cmd| cmd.trim().strip_prefix("apt-get install"))
        .flat_map(|args| args.split_whitespace().filter(|a| !a.starts_with('-')))
        .collect();
    assert_eq!(
        installs,
        ["ca-certificates"],
        "the runtime stage installs CA certificates and nothing else"
    );
    let copies: Vec<&String> = run
        .iter()
        .filter(|(op, _)| op == "COPY")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "one COPY into the runtime stage: the binary ({copies:?})"
    );
    assert!(
        copies[0].starts_with("--from=build ") && copies[0].ends_with(&format!(" {BINARY}")),
        "COPY {}: the binary goes to {BINARY}",
        copies[0]
    );
    let user = run
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, r)| r.clone())
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER {user}: a numeric non-root uid (Kubernetes' runAsNonRoot can only check a number)"
    );
    assert!(
        run.iter()
            .any(|(op, rest)| op == "RUN" && rest.contains(&format!("--uid {uid}"))),
        "the user {uid} is created in /etc/passwd"
    );
    let entrypoint = run
        .iter()
        .find(|(op, _)| op == "ENTRYPOINT")
        .map(|(_, r)| r.clone())
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint, format!("[\"{BINARY}\"]"));

    // What the Job relies on: the same binary, the image the README builds, the same user.
    let job = read("deploy/kubernetes/job.yaml");
    assert!(
        job.contains(&format!("command: [\"{BINARY}\"]")),
        "job.yaml runs {BINARY}"
    );
    assert!(
        job.contains("image: ferry:latest"),
        "job.yaml runs ferry:latest"
    );
    assert!(
        job.contains(&format!("runAsUser: {uid}")),
        "job.yaml runs as uid {uid}"
    );
    assert!(job.contains("runAsNonRoot: true"));
    let k8s = read("deploy/kubernetes/README.md");
    assert!(
        k8s.contains("docker build -t ferry:latest ."),
        "deploy/kubernetes/README.md builds the image the Job runs"
    );

    // The build context leaves out the build output and the test bed's servers and data.
    let ignore = read(".dockerignore");
    for dir in ["target", ".testbed"] {
        assert!(
            ignore.lines().any(|l| l.trim() == dir),
            ".dockerignore lacks {dir}"
        );
    }
}

#[test]
fn pinned_means_an_exact_version() {
    assert!(pinned("rust:1.95.0-slim-trixie"));
    assert!(pinned("debian:13.2-slim"));
    assert!(pinned("debian@sha256:0123abcd"));
    assert!(!pinned("debian:trixie-slim"));
    assert!(!pinned("debian:13-slim"));
    assert!(!pinned("debian:latest"));
    assert!(!pinned("debian"));
}
