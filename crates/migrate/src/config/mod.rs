//! Configuration: what the user wrote (the seed's `.properties` file, `--set key=value`,
//! `FERRY_*_PASSWORD`) → a validated, typed [`MigrationSpec`].
//!
//! Two stages, as in ripgrep's flags: [`load`] first collects raw `key=value` entries with their
//! origin (file line, `--set`, environment), then checks every final value against the one key
//! table in [`registry`] and builds the spec in `spec.rs`. Every problem is collected, so a user
//! fixes a file in one round rather than one error per run. Keys that ferry does not use are
//! reported once as [`Notice`]s, never ignored silently.
//!
//! Secrets travel as [`Secret`], whose `Debug` and `Display` print `***`; error values of secret
//! keys are never echoed.

pub mod registry;
mod spec;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use registry::markdown_reference;
pub use spec::*;
pub use value::HostEntry;

use registry::Disposition;
use value::Value;

/// Environment variables that override the password keys; they win over the file and `--set`.
pub const PASSWORD_ENV_VARS: &[(&str, &str)] = &[
    ("FERRY_CASSANDRA_PASSWORD", "cassandra.password"),
    ("FERRY_YUGABYTE_PASSWORD", "yugabyte.password"),
];

/// A password or other secret: shown as `***` by `Debug` and `Display`. Every password field
/// of ferry (configuration, probe specs, command-line flags) is one of these, so no derived
/// `Debug` can print it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that hands it to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a value came from, so errors point at the line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: String, line: usize },
    Set,
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{path}:{line}"),
            Origin::Set => f.write_str("--set"),
            Origin::Env(var) => write!(f, "${var}"),
        }
    }
}

/// A validated configuration and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub spec: MigrationSpec,
    pub notices: Vec<Notice>,
}

/// Something about the configuration worth one line to the user, but not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub key: String,
    pub kind: NoticeKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The key has no counterpart in ferry (Spark, JDBC pool, CSV, …); the message says why.
    DoesNotApply,
    /// A Spark/JDBC key whose intent ferry carries over; the message says onto what.
    Mapped,
    /// Valid but probably not what was meant (a key set twice, an option without effect).
    Advice,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// One configuration problem; its `Display` is one line naming the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{origin}: unknown key '{key}'{}", did_you_mean(.suggestion))]
    UnknownKey {
        key: String,
        origin: Origin,
        suggestion: Option<String>,
    },
    /// `shown` is the value as written, or `***` for a secret.
    #[error("{origin}: {key}={shown}: {problem}; expected {expected} (e.g. {key}={example})")]
    BadValue {
        key: String,
        origin: Origin,
        shown: String,
        problem: String,
        expected: String,
        example: String,
    },
    /// A rule across keys (counts that must match, a min above a max, …).
    #[error("{message}")]
    Rule { key: String, message: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" — did you mean '{s}'?"),
        None => " — no similar key; see docs/configuration.md for every key".into(),
    }
}

impl ConfigError {
    /// The key the problem is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::UnknownKey { key, .. }
            | ConfigError::BadValue { key, .. }
            | ConfigError::Rule { key, .. } => Some(key),
        }
    }
}

/// Every problem found in a configuration; `Display` prints one line each.
#[derive(Debug)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors { errors: vec![e] }
    }
}

/// Reads `path` (a Java `.properties` file, UTF-8), applies `overrides` (`--set`, in order) and
/// the password environment variables (looked up through `env`), and validates the result.
pub fn load(
    path: &Path,
    overrides: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let entries = read_properties(std::io::BufReader::new(file), &shown)?;
    load_entries(entries, overrides, env)
}

/// [`load`] for text already in memory; `name` stands for the file in messages.
pub fn load_str(
    text: &str,
    name: &str,
    overrides: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    let entries = read_properties(text.as_bytes(), name)?;
    load_entries(entries, overrides, env)
}

/// Parses one `--set key=value`. The value may be empty (unset) and may contain `=`.
pub fn parse_override(s: &str) -> Result<(String, String), String> {
    // The argument is not echoed: a mistyped `--set` may hold a password.
    let Some((key, value)) = s.split_once('=') else {
        return Err(
            "--set needs key=value, e.g. --set cassandra.host=10.0.0.1 (no '=' found)".into(),
        );
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(
            "--set needs key=value, e.g. --set cassandra.host=10.0.0.1 (no key before '=')".into(),
        );
    }
    Ok((key.to_string(), value.to_string()))
}

/// One `key=value` as written, before validation.
struct RawEntry {
    key: String,
    value: String,
    origin: Origin,
}

fn read_properties(input: impl std::io::Read, name: &str) -> Result<Vec<RawEntry>, ConfigErrors> {
    let mut entries = Vec::new();
    let iter = java_properties::PropertiesIter::new_with_encoding(input, encoding_rs::UTF_8);
    for line in iter {
        let line = line.map_err(|e| {
            let at = e
                .line_number()
                .map(|n| format!("line {n}: "))
                .unwrap_or_default();
            ConfigError::Syntax {
                path: name.to_string(),
                message: format!("{at}{e}"),
            }
        })?;
        let number = line.line_number();
        if let java_properties::LineContent::KVPair(key, value) = line.consume_content() {
            entries.push(RawEntry {
                key,
                value,
                origin: Origin::File {
                    path: name.to_string(),
                    line: number,
                },
            });
        }
    }
    Ok(entries)
}

/// A key's final value after every source was applied, checked against its definition.
pub(crate) struct Setting {
    /// `None`: set to the empty string, which means unset.
    pub value: Option<Value>,
    pub origin: Origin,
}

/// All final settings by key.
pub(crate) struct Settings {
    pub by_key: BTreeMap<String, Setting>,
}

fn load_entries(
    mut entries: Vec<RawEntry>,
    overrides: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    entries.extend(overrides.iter().map(|(k, v)| RawEntry {
        key: k.trim().to_string(),
        value: v.clone(),
        origin: Origin::Set,
    }));
    for (var, key) in PASSWORD_ENV_VARS {
        if let Some(value) = env(var).filter(|v| !v.is_empty()) {
            entries.push(RawEntry {
                key: (*key).to_string(),
                value,
                origin: Origin::Env(var),
            });
        }
    }

    let mut errors = Vec::new();
    let mut notices = Vec::new();

    // Last value wins, as in java.util.Properties; a key written twice in the file is noted,
    // since the first line then does nothing.
    let mut order: Vec<String> = Vec::new();
    let mut last: BTreeMap<String, RawEntry> = BTreeMap::new();
    for entry in entries {
        if let Some(prev) = last.get(&entry.key) {
            if let (Origin::File { line: a, .. }, Origin::File { line: b, .. }) =
                (&prev.origin, &entry.origin)
            {
                notices.push(Notice {
                    key: entry.key.clone(),
                    kind: NoticeKind::Advice,
                    message: format!("set twice (lines {a} and {b}); the value on line {b} wins"),
                });
            }
        } else {
            order.push(entry.key.clone());
        }
        last.insert(entry.key.clone(), entry);
    }

    let mut settings = Settings {
        by_key: BTreeMap::new(),
    };
    for key in order {
        let Some(entry) = last.remove(&key) else {
            continue;
        };
        if let Some((key, setting)) = check(entry, &mut notices, &mut errors) {
            settings.by_key.insert(key, setting);
        }
    }

    let spec = spec::build(&settings, &mut errors, &mut notices);
    if errors.is_empty() {
        Ok(Loaded { spec, notices })
    } else {
        Err(ConfigErrors { errors })
    }
}

/// Checks one final entry against the registry; emits its notice if the key is not used as is.
/// `None` when the entry is in error (pushed to `errors`).
fn check(
    entry: RawEntry,
    notices: &mut Vec<Notice>,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, Setting)> {
    let RawEntry { key, value, origin } = entry;
    let Some(def) = registry::lookup(&key) else {
        let suggestion = registry::closest_key(&key);
        errors.push(ConfigError::UnknownKey {
            key,
            origin,
            suggestion,
        });
        return None;
    };
    if def.prefix() == Some("spark.") {
        // `spark.default.paralelism` must not pass as "a Spark setting ferry does not use".
        if let Some((d, near)) = registry::distance_to_listed_spark_key(&key) {
            if d <= 2 {
                errors.push(ConfigError::UnknownKey {
                    key,
                    origin,
                    suggestion: Some(near.to_string()),
                });
                return None;
            }
        }
    }
    let secret = def.is_secret() || key.ends_with(".password");
    // Passwords keep their spaces: they are part of the secret.
    let text = if secret { value.as_str() } else { value.trim() };
    let shown = if secret {
        "***".to_string()
    } else {
        text.to_string()
    };
    match def.disposition {
        Disposition::Used => {}
        Disposition::MappedOnto(onto) => notices.push(Notice {
            key: key.clone(),
            kind: NoticeKind::Mapped,
            message: format!("mapped onto {onto} (here {shown})"),
        }),
        Disposition::DoesNotApply(why) => notices.push(Notice {
            key: key.clone(),
            kind: NoticeKind::DoesNotApply,
            message: format!("does not apply: {why}"),
        }),
    }
    if text.is_empty() {
        return Some((
            key,
            Setting {
                value: None,
                origin,
            },
        ));
    }
    match value::parse(&def.kind, text) {
        Ok(value) => Some((
            key,
            Setting {
                value: Some(value),
                origin,
            },
        )),
        Err(problem) => {
            errors.push(ConfigError::BadValue {
                example: registry::example_value(def),
                expected: registry::describe_kind(&def.kind),
                key,
                origin,
                shown: quote_if_needed(&shown),
                problem,
            });
            None
        }
    }
}

/// `abc` stays as is; a value with spaces or `;` is quoted so the error line stays readable.
fn quote_if_needed(s: &str) -> String {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == ';' || c == '\'') {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn seed_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-migration.properties")
    }

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_text(text: &str) -> Result<Loaded, ConfigErrors> {
        load_str(text, "test.properties", &[], &no_env)
    }

    fn errors_of(text: &str) -> Vec<String> {
        match load_text(text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn seed_file_loads_as_is() {
        let loaded = load(&seed_path(), &[], &no_env).unwrap_or_else(|e| panic!("{e}"));
        let spec = &loaded.spec;
        assert_eq!(
            spec.source.contact_points,
            vec![HostPort {
                host: "localhost".into(),
                port: 9043
            }]
        );
        assert_eq!(spec.source.local_dc.as_deref(), Some("datacenter1"));
        assert_eq!(spec.source.username, None, "empty value means unset");
        assert_eq!(spec.source.password, None);
        assert_eq!(spec.source.read_timeout_ms, 120_000);
        assert_eq!(spec.source.fetch_size_rows, 10_000);
        assert_eq!(spec.source.consistency, Consistency::LocalOne);
        assert_eq!(spec.source.retry_count, 3);
        assert_eq!(spec.source.split_size, SplitSize::Auto { start_mb: 256 });
        assert_eq!(spec.source.concurrent_reads, 2048);
        assert_eq!(spec.source.max_rows_per_sec, None);
        assert_eq!(spec.source.connect_timeout_ms, 60_000);
        assert_eq!(spec.source.connections_per_node, 4);
        assert_eq!(
            (
                spec.source.retry_delay_min_ms,
                spec.source.retry_delay_max_ms
            ),
            (1_000, 60_000)
        );

        let t = &spec.target;
        assert_eq!(
            t.hosts,
            vec![HostPort {
                host: "localhost".into(),
                port: 5433
            }]
        );
        assert_eq!(t.database, "transaction_datastore");
        assert_eq!(t.username, "yugabyte");
        assert_eq!(t.password.as_ref().map(Secret::expose), Some("yugabyte"));
        assert!(t.load_balance_hosts);
        assert!(t.tcp_keepalive);
        assert_eq!(t.max_connections_per_host, 8);
        assert_eq!(t.insert_mode, InsertMode::Copy);
        assert_eq!(t.insert_batch_rows, 300);
        assert_eq!(t.copy_flush_every_rows, 50_000);
        assert_eq!(t.copy_buffer_bytes, 100_000);
        assert!(t.copy_replace);
        assert!(t.disable_transactional_writes);
        assert_eq!(t.connect_timeout_ms, 30_000);
        assert_eq!(t.socket_timeout_secs, None);
        assert_eq!(t.login_timeout_secs, 10);
        assert!(
            !t.truncate_target_table,
            "commented out in the seed: ferry's default"
        );

        assert_eq!(
            spec.tables,
            vec![TableSpec {
                source_keyspace: "transaction_datastore".into(),
                source_table: "dda_pstd_fincl_txn_cnsmr_by_accntnbr".into(),
                target_schema: "public".into(),
                target_table: "dda_pstd_fincl_txn_cnsmr_by_accntnbr".into(),
            }]
        );
        let o = &spec.table_options;
        assert!(o.column_mapping.is_empty());
        assert_eq!(o.primary_key, None);
        assert!(o.validate);
        assert_eq!(
            o.constant_columns,
            vec![
                ConstantColumn {
                    name: "created_by".into(),
                    value: ConstantValue::Text("CDM_MIGRATION".into())
                },
                ConstantColumn {
                    name: "migration_ts".into(),
                    value: ConstantValue::CurrentTimestamp
                },
            ]
        );

        let r = &spec.run;
        assert_eq!(
            r.checkpoint,
            CheckpointSpec {
                enabled: true,
                progress_schema: "public".into(),
                interval_rows: Some(50_000)
            }
        );
        assert_eq!(r.run_id, None);
        assert_eq!(r.prev_run_id, None, "0 means no previous run");
        assert_eq!(
            r.validation,
            ValidationSpec {
                enabled: true,
                mode: ValidationMode::Sample { rows: 1000 }
            }
        );
        assert_eq!(r.max_parallel_chunks, 16);
        assert_eq!(r.max_parallel_chunks_from, "spark.default.parallelism");
        assert_eq!(spec.batch_rows(), 50_000);
    }

    #[test]
    fn seed_file_notices_cover_spark_csv_and_pool_keys_once() {
        let loaded = load(&seed_path(), &[], &no_env).unwrap();
        let kind_of = |key: &str| {
            let found: Vec<_> = loaded.notices.iter().filter(|n| n.key == key).collect();
            assert_eq!(found.len(), 1, "{key}: {found:?}");
            found[0].kind
        };
        for key in [
            "spark.serializer",
            "spark.executor.memory",
            "spark.sql.shuffle.partitions",
            "spark.dynamicAllocation.enabled",
            "yugabyte.csvDelimiter",
            "yugabyte.csvNull",
            "yugabyte.csvQuote",
            "yugabyte.csvEscape",
            "yugabyte.minIdle",
            "yugabyte.idleTimeout",
            "yugabyte.maxLifetime",
            "yugabyte.autoCommit",
            "yugabyte.binaryTransfer",
            "cassandra.connection.factory",
            "cassandra.connection.remoteConnectionsPerExecutor",
            "spark.task.maxFailures",
            "yugabyte.copyBufferSize",
        ] {
            assert_eq!(kind_of(key), NoticeKind::DoesNotApply, "{key}");
        }
        for key in [
            "spark.default.parallelism",
            "spark.executor.instances",
            "spark.executor.cores",
            "yugabyte.maxPoolSize",
            "migration.checkpoint.keyspace",
        ] {
            assert_eq!(kind_of(key), NoticeKind::Mapped, "{key}");
        }
        let csv = loaded
            .notices
            .iter()
            .find(|n| n.key == "yugabyte.csvDelimiter")
            .unwrap();
        assert_eq!(
            csv.to_string(),
            "yugabyte.csvDelimiter: does not apply: ferry writes binary COPY, CSV options do not apply"
        );
        let serializer = loaded.notices.iter().find(|n| n.key == "spark.serializer");
        assert!(serializer.unwrap().message.contains("no JVM serializer"));
        // Keys ferry uses as they are say nothing.
        assert!(!loaded.notices.iter().any(|n| n.key == "cassandra.host"));
    }

    #[test]
    fn every_seed_key_is_in_the_registry() {
        let text = std::fs::read_to_string(seed_path()).unwrap();
        let entries = read_properties(text.as_bytes(), "seed").unwrap();
        assert_eq!(entries.len(), 85, "every key=value line of the seed");
        for e in &entries {
            let def = registry::lookup(&e.key).unwrap_or_else(|| panic!("{} unknown", e.key));
            assert!(def.prefix().is_none(), "{} only matched a pattern", e.key);
        }
        // The keys the seed leaves commented out are known too.
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# ") else {
                continue;
            };
            let Some((key, _)) = rest.split_once('=') else {
                continue;
            };
            let looks_like_key = ["cassandra.", "yugabyte.", "table."]
                .iter()
                .any(|p| key.starts_with(p))
                && !key.contains(' ');
            if looks_like_key && !key.starts_with("table.columnMapping.cass_col1") {
                assert!(
                    registry::lookup(key).is_some(),
                    "commented key {key} unknown"
                );
            }
        }
    }

    #[test]
    fn empty_configuration_takes_every_default() {
        let loaded = load_text("").unwrap();
        let spec = loaded.spec;
        assert!(loaded.notices.is_empty());
        assert_eq!(spec.source.contact_points[0].to_string(), "localhost:9042");
        assert_eq!(spec.source.consistency, Consistency::LocalQuorum);
        assert_eq!(spec.source.split_size, SplitSize::Auto { start_mb: 64 });
        assert_eq!(spec.target.hosts[0].to_string(), "localhost:5433");
        assert!(spec.tables.is_empty());
        assert_eq!(spec.run.max_parallel_chunks, DEFAULT_MAX_PARALLEL_CHUNKS);
        assert_eq!(spec.run.max_parallel_chunks_from, "default");
        assert_eq!(spec.run.checkpoint.progress_schema, "ferry");
        assert_eq!(spec.run.validation.mode, ValidationMode::Full);
        assert_eq!(spec.run.runs_dir, PathBuf::from("runs"));
        assert_eq!(spec.run.reject_file, None);
        assert_eq!(spec.batch_rows(), 20_000);
    }

    #[test]
    fn every_key_accepts_its_example_value() {
        // Guards the getters in spec.rs against a kind/default mismatch for any key.
        let text: String = registry::KEYS
            .iter()
            .filter(|d| d.prefix().is_none() && d.key != "cassandra.connection.ssl.enabled")
            .map(|d| format!("{}={}\n", d.key, registry::example_value(d)))
            .collect();
        if let Err(e) = load_text(&text) {
            panic!("{e}");
        }
    }

    #[test]
    fn set_overrides_win_over_the_file() {
        let overrides = set(&[
            ("cassandra.host", "10.0.0.1,10.0.0.2:9999"),
            ("table.source.table", "other"),
            ("cassandra.fetchSizeInRows", "777"),
            ("cassandra.fetchSizeInRows", "888"),
            ("cassandra.inputSplitSizeMb.override", "512"),
        ]);
        let spec = load(&seed_path(), &overrides, &no_env).unwrap().spec;
        let points: Vec<String> = spec
            .source
            .contact_points
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(points, ["10.0.0.1:9043", "10.0.0.2:9999"]);
        assert_eq!(spec.tables[0].source_table, "other");
        assert_eq!(
            spec.tables[0].target_table,
            "dda_pstd_fincl_txn_cnsmr_by_accntnbr"
        );
        assert_eq!(spec.source.fetch_size_rows, 888, "the last --set wins");
        assert_eq!(spec.source.split_size, SplitSize::Fixed { mb: 512 });
    }

    #[test]
    fn a_bad_file_value_fixed_by_set_is_no_error() {
        let text = "cassandra.fetchSizeInRows=abc\n";
        assert!(load_text(text).is_err());
        let fixed = load_str(
            text,
            "t",
            &set(&[("cassandra.fetchSizeInRows", "100")]),
            &no_env,
        )
        .unwrap();
        assert_eq!(fixed.spec.source.fetch_size_rows, 100);
    }

    #[test]
    fn env_passwords_win_and_never_show() {
        let env = |var: &str| match var {
            "FERRY_CASSANDRA_PASSWORD" => Some("c-s3cret".to_string()),
            "FERRY_YUGABYTE_PASSWORD" => Some("y-s3cret".to_string()),
            _ => None,
        };
        let overrides = set(&[("yugabyte.password", "from-set")]);
        let loaded = load(&seed_path(), &overrides, &env).unwrap();
        let spec = &loaded.spec;
        assert_eq!(
            spec.source.password.as_ref().map(Secret::expose),
            Some("c-s3cret")
        );
        assert_eq!(
            spec.target.password.as_ref().map(Secret::expose),
            Some("y-s3cret")
        );
        let debug = format!("{loaded:?} {loaded:#?}");
        for secret in [
            "c-s3cret",
            "y-s3cret",
            "from-set",
            "password: Some(\"yugabyte",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked into Debug");
        }
        assert!(debug.contains("password: Some(***)"));
        assert_eq!(Secret::new("x").to_string(), "***");
    }

    #[test]
    fn an_empty_env_password_is_unset() {
        let env = |_: &str| Some(String::new());
        let spec = load(&seed_path(), &[], &env).unwrap().spec;
        assert_eq!(
            spec.target.password.as_ref().map(Secret::expose),
            Some("yugabyte")
        );
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        // A password cannot be of the wrong type, but its neighbours can: the error list and its
        // Debug form must still hold no password.
        let text = "yugabyte.password=hunter2\ncassandra.password=hunter3\n\
                    cassandra.connection.ssl.keyStore.password=hunter4\ncassandra.port=x\n";
        let err = load_text(text).unwrap_err();
        let all = format!("{err} {err:?}");
        assert!(!all.contains("hunter"), "{all}");
        // Every password key is declared secret, so none is ever echoed or trimmed.
        for d in registry::KEYS
            .iter()
            .filter(|d| d.key.ends_with(".password"))
        {
            assert!(d.is_secret(), "{} is not declared secret", d.key);
        }
        let loaded = load_text(text.replace("cassandra.port=x\n", "").as_str()).unwrap();
        assert!(!format!("{loaded:?}").contains("hunter"));
    }

    #[test]
    fn unknown_key_names_the_closest_one() {
        let errs = errors_of("cassandra.fetchSizeInRow=100\n");
        assert_eq!(
            errs,
            ["test.properties:1: unknown key 'cassandra.fetchSizeInRow' — did you mean 'cassandra.fetchSizeInRows'?"]
        );
        let errs = errors_of("yugabyte.copyFlushEvry=1\n");
        assert!(
            errs[0].contains("did you mean 'yugabyte.copyFlushEvery'?"),
            "{errs:?}"
        );
        let errs = errors_of("zzz.qqq=1\n");
        assert!(errs[0].contains("no similar key"), "{errs:?}");
        // A likely typo of a listed Spark key is not waved through as "another Spark setting".
        let errs = errors_of("spark.default.paralelism=8\n");
        assert!(
            errs[0].contains("did you mean 'spark.default.parallelism'?"),
            "{errs:?}"
        );
        // A Spark key ferry does not list is a notice, not an error.
        let loaded = load_text("spark.cassandra.output.batch.size.rows=100\n").unwrap();
        assert_eq!(loaded.notices[0].kind, NoticeKind::DoesNotApply);
        // Unknown keys from --set are named as such.
        let err = load_str("", "t", &set(&[("yugabyte.hots", "x")]), &no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set: unknown key 'yugabyte.hots' — did you mean 'yugabyte.host'?"
        );
    }

    #[test]
    fn wrong_types_name_key_value_range_and_fix() {
        assert_eq!(
            errors_of("cassandra.fetchSizeInRows=abc\n"),
            ["test.properties:1: cassandra.fetchSizeInRows=abc: not a number; expected a whole number from 1 to 1000000 (e.g. cassandra.fetchSizeInRows=5000)"]
        );
        assert_eq!(
            errors_of("cassandra.fetchSizeInRows=-5\n"),
            ["test.properties:1: cassandra.fetchSizeInRows=-5: out of range; expected a whole number from 1 to 1000000 (e.g. cassandra.fetchSizeInRows=5000)"]
        );
        assert_eq!(
            errors_of("yugabyte.loadBalanceHosts=maybe\n"),
            ["test.properties:1: yugabyte.loadBalanceHosts=maybe: not true or false; expected true or false (e.g. yugabyte.loadBalanceHosts=false)"]
        );
        let errs = errors_of("cassandra.consistencyLevel=LOCAL_TWO\n");
        assert!(errs[0].contains("expected one of ONE, TWO"), "{errs:?}");
        let errs = errors_of("cassandra.readTimeoutMs=2.5\n");
        assert!(errs[0].contains(": not a whole number"), "{errs:?}");
        let errs = errors_of("spark.network.timeout=800\n");
        assert!(errs[0].contains("has no unit"), "{errs:?}");
        let errs = errors_of("yugabyte.database=my db\n");
        assert!(
            errs[0].contains("yugabyte.database=\"my db\": contains spaces"),
            "{errs:?}"
        );
    }

    #[test]
    fn all_errors_are_collected_one_line_each() {
        let text = "cassandra.fetchSizeInRows=abc\n\
                    cassandra.port=0\n\
                    yugabyte.loadBalanceHosts=maybe\n\
                    cassandra.fetchSizeInRow=5\n\
                    yugabyte.host=db1:99999\n\
                    table.source.keyspace=ks\n";
        let err = load_text(text).unwrap_err();
        assert_eq!(err.errors.len(), 6, "{err}");
        let shown = err.to_string();
        assert_eq!(shown.lines().count(), 6, "{shown}");
        for key in [
            "cassandra.fetchSizeInRows",
            "cassandra.port",
            "yugabyte.loadBalanceHosts",
            "cassandra.fetchSizeInRow",
            "yugabyte.host",
            "table.source.table",
        ] {
            assert!(shown.contains(key), "{key} missing from:\n{shown}");
        }
        assert!(shown.contains("port '99999', not 1 to 65535"), "{shown}");
        assert!(
            shown.contains(
                "test.properties:6: table.source.keyspace is set but table.source.table is not"
            ),
            "{shown}"
        );
    }

    #[test]
    fn host_lists_take_default_ports() {
        let spec = load_text(
            "yugabyte.host=db1, db2:5434,[::1]:5435,10.0.0.7\nyugabyte.port=5432\n\
             cassandra.host=c1:9043,c2\n",
        )
        .unwrap()
        .spec;
        let hosts: Vec<String> = spec.target.hosts.iter().map(ToString::to_string).collect();
        assert_eq!(
            hosts,
            ["db1:5432", "db2:5434", "[::1]:5435", "10.0.0.7:5432"]
        );
        let points: Vec<String> = spec
            .source
            .contact_points
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(points, ["c1:9043", "c2:9042"]);
    }

    #[test]
    fn column_mapping_and_constant_columns() {
        let text = r"
table.source.keyspace=ks
table.source.table=t
table.target.table=t2
table.columnMapping.acct_nbr=account_number
table.columnMapping.txn_dt=transaction_date
table.constantColumns.names=migration_tags|migration_metadata|loaded_at
table.constantColumns.values=['source_cassandra','env_prod']|{'migrator':'CDM','version':'4.0'}|current_timestamp
table.constantColumns.splitRegex=\\|
table.primaryKey=account_number, transaction_date
";
        let spec = load_text(text).unwrap().spec;
        assert_eq!(spec.tables[0].target_table, "t2");
        let o = &spec.table_options;
        assert_eq!(o.column_mapping.len(), 2);
        assert_eq!(o.column_mapping["acct_nbr"], "account_number");
        assert_eq!(o.column_mapping["txn_dt"], "transaction_date");
        assert_eq!(
            o.primary_key.as_deref(),
            Some(&["account_number".to_string(), "transaction_date".to_string()][..])
        );
        assert_eq!(
            o.constant_columns,
            vec![
                ConstantColumn {
                    name: "migration_tags".into(),
                    value: ConstantValue::Text("['source_cassandra','env_prod']".into())
                },
                ConstantColumn {
                    name: "migration_metadata".into(),
                    value: ConstantValue::Text("{'migrator':'CDM','version':'4.0'}".into())
                },
                ConstantColumn {
                    name: "loaded_at".into(),
                    value: ConstantValue::CurrentTimestamp
                },
            ]
        );
    }

    #[test]
    fn constant_column_mistakes_are_explained() {
        let errs =
            errors_of("table.constantColumns.names=a,b\ntable.constantColumns.values=x,y,z\n");
        assert!(
            errs[0].contains(
                "table.constantColumns.names has 2 entries but table.constantColumns.values has 3"
            ),
            "{errs:?}"
        );
        let errs = errors_of("table.constantColumns.names=a\n");
        assert!(
            errs[0].contains("table.constantColumns.values is not"),
            "{errs:?}"
        );
        let errs = errors_of("table.constantColumns.names=a,a\ntable.constantColumns.values=1,2\n");
        assert!(errs[0].contains("names column 'a' twice"), "{errs:?}");
        let errs = errors_of(
            "table.columnMapping.x=a\ntable.constantColumns.names=a\ntable.constantColumns.values=1\n",
        );
        assert!(
            errs[0].contains("table.columnMapping.x already fills"),
            "{errs:?}"
        );
        let errs = errors_of("table.columnMapping.x=a\ntable.columnMapping.y=a\n");
        assert!(
            errs[0].contains("both map to target column 'a'"),
            "{errs:?}"
        );
        let errs = errors_of("table.constantColumns.splitRegex=(\n");
        assert!(
            errs[0].contains("not a valid regular expression"),
            "{errs:?}"
        );
    }

    #[test]
    fn cross_key_rules() {
        let errs = errors_of("cassandra.connection.ssl.enabled=true\n");
        assert!(
            errs[0].contains("needs cassandra.connection.ssl.trustStore.path"),
            "{errs:?}"
        );
        let loaded = load_text(
            "cassandra.connection.ssl.enabled=true\n\
             cassandra.connection.ssl.trustStore.path=/etc/ca.pem\n\
             cassandra.connection.ssl.keyStore.path=/etc/client.p12\n\
             cassandra.connection.ssl.keyStore.password=hunter2\n",
        )
        .unwrap();
        let tls = loaded.spec.source.tls.expect("TLS on");
        assert_eq!(tls.trust_store, std::path::Path::new("/etc/ca.pem"));
        assert_eq!(
            tls.key_store_password
                .map(|p| p.expose().to_string())
                .as_deref(),
            Some("hunter2")
        );
        let errs = errors_of(
            "cassandra.connection.reconnectionDelayMs.min=5000\n\
             cassandra.connection.reconnectionDelayMs.max=1000\n",
        );
        assert!(errs[0].contains("is above"), "{errs:?}");
        let loaded = load_text("yugabyte.insertMode=insert\nyugabyte.copyReplace=true\n").unwrap();
        assert_eq!(loaded.spec.target.insert_mode, InsertMode::Insert);
        assert_eq!(loaded.notices[0].kind, NoticeKind::Advice);
    }

    #[test]
    fn concurrency_ceiling_comes_from_ferry_then_spark() {
        let spec = load_text("spark.executor.instances=3\nspark.executor.cores=5\n")
            .unwrap()
            .spec;
        assert_eq!(spec.run.max_parallel_chunks, 15);
        let spec = load(
            &seed_path(),
            &set(&[("ferry.maxParallelChunks", "64")]),
            &no_env,
        )
        .unwrap()
        .spec;
        assert_eq!(spec.run.max_parallel_chunks, 64);
        assert_eq!(spec.run.max_parallel_chunks_from, "ferry.maxParallelChunks");
    }

    #[test]
    fn duplicate_keys_in_the_file_are_noted() {
        let loaded = load_text("cassandra.port=1\ncassandra.port=2\n").unwrap();
        assert_eq!(loaded.spec.source.contact_points[0].port, 2);
        assert_eq!(
            loaded.notices[0].to_string(),
            "cassandra.port: set twice (lines 1 and 2); the value on line 2 wins"
        );
    }

    #[test]
    fn run_ids_and_reads_per_sec() {
        let spec = load_text(
            "migration.runId=nightly-7\nmigration.prevRunId=1703456789\ncassandra.readsPerSec=5000\n",
        )
        .unwrap()
        .spec;
        assert_eq!(spec.run.run_id.as_deref(), Some("nightly-7"));
        assert_eq!(spec.run.prev_run_id.as_deref(), Some("1703456789"));
        assert_eq!(spec.source.max_rows_per_sec, Some(5000));
    }

    #[test]
    fn parse_override_splits_at_the_first_equals() {
        assert_eq!(
            parse_override("cassandra.host=a,b"),
            Ok(("cassandra.host".into(), "a,b".into()))
        );
        assert_eq!(parse_override(" k =v=w"), Ok(("k".into(), "v=w".into())));
        assert_eq!(parse_override("k="), Ok(("k".into(), String::new())));
        let e = parse_override("hunter2").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("key=value"), "{e}");
        assert!(parse_override("=v").is_err());
    }

    #[test]
    fn syntax_and_io_errors_name_the_file() {
        let err = load(Path::new("/nonexistent/m.properties"), &[], &no_env).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot read /nonexistent/m.properties"));
        let err = load_text("k=\\uZZZZ\n").unwrap_err();
        assert!(
            err.to_string().starts_with("test.properties: line 1"),
            "{err}"
        );
    }

    #[test]
    fn utf8_values_survive() {
        let spec = load_text("table.source.keyspace=ks\ntable.source.table=tå\n")
            .unwrap()
            .spec;
        assert_eq!(spec.tables[0].source_table, "tå");
    }

    /// docs/configuration.md is generated; this fails when it drifts from the registry.
    #[test]
    fn docs_configuration_md_is_up_to_date() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let want = markdown_reference();
        if std::env::var_os("FERRY_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/configuration.md differs from config::markdown_reference(); regenerate it with \
             FERRY_UPDATE_DOCS=1 cargo test -p ferry-migrate config"
        );
    }
}
