//! From what the user wrote (properties file, `--set`, flags, environment) to a validated
//! [`Job`]: shared by every command that reads a migration config.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use ferry_migrate::config::{self, Loaded};
use ferry_migrate::job::Job;
use ferry_migrate::job_spec::TableFlags;

/// Flags every config-reading command shares.
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// The migration properties file (the seed system's `migration.properties` works as it is).
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Override any key: `--set key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = config::parse_override)]
    pub set: Vec<(String, String)>,
    /// Migrate every table of this keyspace (instead of `table.source.*`).
    #[arg(long, conflicts_with = "tables")]
    pub keyspace: Option<String>,
    /// Migrate these tables: `ks.a,ks.b` (instead of `table.source.*`).
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Target schema for `--keyspace` / `--tables` (default: `table.target.schema`).
    #[arg(long)]
    pub target_schema: Option<String>,
}

/// Loads and validates the configuration; notices (keys that do not apply) go to stderr once.
pub fn load(args: &ConfigArgs) -> Result<Loaded> {
    let env = |k: &str| std::env::var(k).ok();
    match config::load(&args.config, &args.set, &env) {
        Ok(l) => {
            for n in &l.notices {
                eprintln!("ferry: note: {n}");
            }
            Ok(l)
        }
        Err(errors) => bail!("{errors}"),
    }
}

/// Builds the job from the loaded configuration and the table flags (the engine decides
/// everything a key decides: [`Job::from_spec`]).
pub fn job(args: &ConfigArgs, loaded: &Loaded, create_tables: bool) -> Result<Job> {
    let flags = TableFlags {
        keyspace: args.keyspace.clone(),
        tables: args.tables.clone(),
        target_schema: args.target_schema.clone(),
    };
    Job::from_spec(&flags, loaded, create_tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_migrate::config::registry::{Dflt, Disposition, Kind, KEYS};

    /// A valid value for `kind` other than its default.
    fn other_value(kind: Kind, default: Dflt) -> String {
        match kind {
            Kind::Bool => match default {
                Dflt::Bool(true) => "false".into(),
                _ => "true".into(),
            },
            Kind::Int { min, max, .. } => {
                let v = match default {
                    Dflt::Int(d) if d == max => min.max(1).min(max),
                    Dflt::Int(d) => (d.max(min) + 1).min(max).max(min),
                    _ => min.max(1).min(max),
                };
                // The runs' own bounds cap some values: pick one in the middle when possible.
                if v == min && max > min + 2 {
                    (min + 2).to_string()
                } else {
                    v.to_string()
                }
            }
            Kind::Float { min, max } => ((min + max) / 3.0).to_string(),
            Kind::Enum(words) => {
                let d = match default {
                    Dflt::Str(s) => s.to_ascii_uppercase(),
                    _ => String::new(),
                };
                words
                    .iter()
                    .find(|w| w.to_ascii_uppercase() != d)
                    .unwrap_or(&words[0])
                    .to_string()
            }
            Kind::Hosts => "10.0.0.9:7777".into(),
            Kind::Name => "walk_name".into(),
            Kind::NameList => "walk_a,walk_b".into(),
            Kind::Path => "/tmp/ferry-walk/x.pem".into(),
            Kind::Secret => "walk-secret".into(),
            Kind::Text => "walk text".into(),
            Kind::Regex => ";".into(),
            Kind::SparkDuration => "7s".into(),
            Kind::SparkSize => "3g".into(),
        }
    }

    fn job_for(path: &std::path::Path, set: Vec<(String, String)>) -> Result<String> {
        let args = ConfigArgs {
            config: path.to_path_buf(),
            set,
            keyspace: None,
            tables: vec![],
            target_schema: None,
        };
        let env = |_: &str| None;
        let loaded =
            config::load(&args.config, &args.set, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(format!("{:?}", job(&args, &loaded, false)?))
    }

    /// Every key the registry marks used (or mapped onto a ferry setting) changes the job ferry
    /// builds (its settings or either side's connection settings); a key that changes nothing
    /// must say so in the registry (no effect), and docs/configuration.md, generated from it,
    /// says so too (issue 17).
    #[test]
    fn every_key_marked_used_changes_the_job() {
        let dir = std::env::temp_dir().join(format!("ferry-walk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("base.properties");
        std::fs::write(
            &path,
            "cassandra.host=127.0.0.1\ncassandra.username=cassandra\nyugabyte.host=127.0.0.1\n\
             yugabyte.username=postgres\ntable.source.keyspace=ks\ntable.source.table=t\n",
        )
        .unwrap();
        let base = job_for(&path, vec![]).expect("the base config loads");
        let mut unchanged = Vec::new();
        for k in KEYS.iter().filter(|k| {
            matches!(
                k.disposition,
                Disposition::Used | Disposition::MappedOnto(_)
            )
        }) {
            if k.prefix().is_some() || READ_OUTSIDE_THE_JOB.contains(&k.key) {
                continue;
            }
            let value = VALUES
                .iter()
                .find(|(key, _)| *key == k.key)
                .map_or_else(|| other_value(k.kind, k.default), |(_, v)| v.to_string());
            let with: Vec<(String, String)> = COMPANIONS
                .iter()
                .filter(|(key, _)| *key == k.key)
                .flat_map(|(_, c)| c.iter())
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let before = if with.is_empty() {
                base.clone()
            } else {
                job_for(&path, with.clone()).expect("the companions load")
            };
            let mut set = with;
            set.push((k.key.to_string(), value.clone()));
            match job_for(&path, set) {
                Ok(j) if j == before => unchanged.push(format!("{}={value}", k.key)),
                Ok(_) => {}
                // The job builder opened the file the key names: it reads the key.
                Err(e) if format!("{e:#}").contains(&format!("check {}", k.key)) => {}
                Err(e) => unchanged.push(format!("{}={value}: {e:#}", k.key)),
            }
        }
        assert!(
            unchanged.is_empty(),
            "keys marked used that change nothing in the job:\n{}",
            unchanged.join("\n")
        );
    }

    /// Keys marked used that the commands read from the spec itself, not through the job.
    const READ_OUTSIDE_THE_JOB: &[&str] = &[
        // `ferry migrate` validates at its end when both are true (cmd/migrate.rs).
        "table.validate",
        "migration.validation.enabled",
        // `ferry validate`'s mode (cmd/validate.rs).
        "migration.validation.sampleSize",
        // A secret is `***` in the job's Debug; its use is the TLS tests' (tests/tls.rs: an
        // encrypted client key opens with it).
        "yugabyte.sslpassword",
        // `yugabyte.ssl=true` means verify-full, which needs a CA file to build the job; the TLS
        // tests use it with the test bed's CA (tests/tls.rs).
        "yugabyte.ssl",
    ];

    /// Values that show an effect where the generic choice would not.
    const VALUES: &[(&str, &str)] = &[
        // The workers' bound: below the default parallelism of 16.
        ("cassandra.concurrentReads", "2"),
        ("table.constantColumns.splitRegex", "#"),
        ("table.constantColumns.names", "b"),
    ];

    /// Keys that only act beside others: the job with the companions alone is the baseline.
    const COMPANIONS: &[(&str, &[(&str, &str)])] = &[
        // Task slots count only when both are set.
        ("spark.executor.instances", &[("spark.executor.cores", "2")]),
        ("spark.executor.cores", &[("spark.executor.instances", "2")]),
        (
            "cassandra.connection.ssl.enabled",
            &[("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem")],
        ),
        (
            "cassandra.connection.ssl.trustStore.path",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/other.pem"),
            ],
        ),
        (
            "cassandra.connection.ssl.trustStore.password",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem"),
            ],
        ),
        (
            "cassandra.connection.ssl.keyStore.path",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem"),
            ],
        ),
        (
            "cassandra.connection.ssl.keyStore.password",
            &[
                ("cassandra.connection.ssl.enabled", "true"),
                ("cassandra.connection.ssl.trustStore.path", "/tmp/ca.pem"),
                ("cassandra.connection.ssl.keyStore.path", "/tmp/client.p12"),
            ],
        ),
        (
            "table.constantColumns.names",
            &[
                ("table.constantColumns.names", "a"),
                ("table.constantColumns.values", "x"),
            ],
        ),
        (
            "table.constantColumns.values",
            &[
                ("table.constantColumns.names", "a"),
                ("table.constantColumns.values", "x"),
            ],
        ),
        (
            "table.constantColumns.splitRegex",
            &[
                ("table.constantColumns.names", "a#b"),
                ("table.constantColumns.values", "x#y"),
            ],
        ),
    ];
}
