//! The typed migration spec: what the rest of ferry reads, with units in field names and
//! preconditions in types. Built from checked [`Settings`]; rules that span several keys live here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::registry::{self, Dflt};
use super::value::{HostEntry, Value};
use super::{ConfigError, Notice, NoticeKind, Secret, Setting, Settings};

/// Everything a migration needs to know, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationSpec {
    pub source: SourceSpec,
    pub target: TargetSpec,
    /// The table named by `table.source.*` (none when the command line names the tables).
    pub tables: Vec<TableSpec>,
    /// `table.*` options that apply to every table, including ones named on the command line.
    pub table_options: TableOptions,
    pub run: RunSpec,
}

/// An endpoint with its port resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The Cassandra side.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub contact_points: Vec<HostPort>,
    pub local_dc: Option<String>,
    /// `ferry.remoteDcReads`: other data centres' replicas after the local ones.
    pub remote_dc_reads: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub read_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub consistency: Consistency,
    pub fetch_size_rows: u32,
    pub split_size: SplitSize,
    /// Ceiling of page requests in flight across all chunks.
    pub concurrent_reads: u32,
    /// `None`: unlimited (`cassandra.readsPerSec=0`).
    pub max_rows_per_sec: Option<u64>,
    pub retry_count: u32,
    pub connections_per_node: u32,
    pub retry_delay_min_ms: u64,
    pub retry_delay_max_ms: u64,
    /// `cassandra.connection.ssl.*`; `None`: clear text.
    pub tls: Option<SourceTls>,
    /// `cassandra.connection.compression`.
    pub compression: CqlCompression,
}

/// Compression of the CQL native protocol's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CqlCompression {
    None,
    Lz4,
    Snappy,
}

/// TLS to Cassandra: the files as the user named them (read when connecting).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTls {
    pub trust_store: PathBuf,
    pub trust_store_password: Option<Secret>,
    /// The client identity, for nodes that require a client certificate.
    pub key_store: Option<PathBuf>,
    pub key_store_password: Option<Secret>,
}

/// CQL consistency levels usable for reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalOne,
    LocalQuorum,
    EachQuorum,
    Serial,
    LocalSerial,
}

/// How big a chunk of the token ring is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitSize {
    /// Start at `start_mb`; ferry may shrink chunks so that every worker has several to lease.
    Auto { start_mb: u32 },
    /// Exactly this size, as estimated from `system.size_estimates`.
    Fixed { mb: u32 },
}

/// The PostgreSQL / YugabyteDB side.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    pub hosts: Vec<HostPort>,
    pub database: String,
    pub username: String,
    pub password: Option<Secret>,
    pub load_balance_hosts: bool,
    pub max_connections_per_host: u32,
    pub insert_mode: InsertMode,
    pub insert_batch_rows: u32,
    pub copy_flush_every_rows: u64,
    pub copy_buffer_bytes: u32,
    pub copy_replace: bool,
    pub disable_transactional_writes: bool,
    pub connect_timeout_ms: u64,
    /// `None`: no limit (`yugabyte.socketTimeout=0`).
    pub socket_timeout_secs: Option<u64>,
    pub login_timeout_secs: u64,
    pub truncate_target_table: bool,
    pub tcp_keepalive: bool,
    pub tls: TargetTlsSpec,
}

/// libpq's `sslmode`, as `yugabyte.sslmode` (or the JDBC drivers' `yugabyte.ssl`) set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// libpq tries clear text first and TLS second; ferry tries TLS first (as for `prefer`):
    /// either order connects to the same servers.
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's spelling, case-insensitive.
    pub fn from_word(w: &str) -> Option<Self> {
        Some(match w.to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// TLS to the target: the mode and the files it reads (read when the job is built, so a missing
/// file stops ferry before it connects anywhere).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTlsSpec {
    pub mode: SslMode,
    /// `yugabyte.sslrootcert`.
    pub root_cert: Option<PathBuf>,
    /// `yugabyte.sslcert`.
    pub client_cert: Option<PathBuf>,
    /// `yugabyte.sslkey`.
    pub client_key: Option<PathBuf>,
    /// `yugabyte.sslpassword`: opens a PKCS#12 file.
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    /// Binary `COPY … FROM STDIN`.
    Copy,
    /// `INSERT … ON CONFLICT DO NOTHING`.
    Insert,
}

/// One source table and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub source_keyspace: String,
    pub source_table: String,
    pub target_schema: String,
    pub target_table: String,
}

/// The `table.*` options other than the names.
#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    /// Schema for tables named on the command line (`table.target.schema`).
    pub target_schema: String,
    /// Source column → target column, for columns whose names differ.
    pub column_mapping: BTreeMap<String, String>,
    pub constant_columns: Vec<ConstantColumn>,
    /// `None`: the source's partition key and clustering columns.
    pub primary_key: Option<Vec<String>>,
    pub validate: bool,
    /// `ferry.writetimeColumn` / `ferry.expiresColumn`: target columns for each row's write
    /// time and expiry.
    pub row_times: RowTimeColumns,
    /// `ferry.clockSkewSecs`: the catch-up's margin before `--since`.
    pub clock_skew_secs: u64,
}

/// Target columns that carry a row's Cassandra write time and expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowTimeColumns {
    pub writetime: Option<String>,
    pub expires: Option<String>,
}

/// A target column that gets the same value on every row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantColumn {
    pub name: String,
    pub value: ConstantValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstantValue {
    /// Text the target column's type accepts (PostgreSQL casts it).
    Text(String),
    /// `CURRENTTIMESTAMP` / `CURRENT_TIMESTAMP`: the run's start time, the same on every row.
    CurrentTimestamp,
}

/// How a run is tracked, resumed, checked and bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub checkpoint: CheckpointSpec,
    /// `None`: derived from the source and target tables, so rerunning the same command resumes.
    pub run_id: Option<String>,
    pub prev_run_id: Option<String>,
    pub validation: ValidationSpec,
    /// Ceiling of chunks read and written at once; ferry adapts below it.
    pub max_parallel_chunks: u32,
    /// Which key set `max_parallel_chunks` (or `"default"`), for `plan` and `diagnose` to explain.
    pub max_parallel_chunks_from: &'static str,
    pub outage_deadline_secs: u64,
    /// `ferry.sourceLatencyTargetMs`: the page reads' p99 the controller keeps under.
    pub source_latency_target_ms: Option<u64>,
    /// Chunk lease duration (`ferry.leaseSecs`).
    pub lease_secs: u64,
    /// Adapt the chunks in flight to the measured rate (`ferry.adaptiveConcurrency`).
    pub adaptive_concurrency: bool,
    /// Most bytes the pages in flight may take (`ferry.pageMemoryMb`).
    pub page_memory_bytes: u64,
    /// Partitions with at least this many rows are split into clustering-key ranges
    /// (`ferry.largePartitionRows`; 0 = never).
    pub large_partition_rows: u64,
    pub runs_dir: PathBuf,
    /// `None`: `<run id>.rejects.jsonl` in `runs_dir`.
    pub reject_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSpec {
    pub enabled: bool,
    /// Target schema of ferry's progress tables (`migration.checkpoint.keyspace`).
    pub progress_schema: String,
    /// Most rows between progress marks, if set (`migration.checkpoint.interval`).
    pub interval_rows: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationSpec {
    /// Validate after migrating.
    pub enabled: bool,
    pub mode: ValidationMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationMode {
    /// Compare this many rows per table.
    Sample { rows: u64 },
    /// Compare every row.
    Full,
}

/// Concurrency when no key sets it: enough to keep a few nodes busy, few enough for a laptop.
pub const DEFAULT_MAX_PARALLEL_CHUNKS: u32 = 16;

impl MigrationSpec {
    /// Rows per batch: `yugabyte.copyFlushEvery`, lowered to `migration.checkpoint.interval`
    /// when that is smaller, since every batch carries its progress mark.
    pub fn batch_rows(&self) -> u64 {
        match self.run.checkpoint.interval_rows {
            Some(i) => i.min(self.target.copy_flush_every_rows),
            None => self.target.copy_flush_every_rows,
        }
    }
}

impl Settings {
    fn get(&self, key: &str) -> Option<&Setting> {
        self.by_key.get(key)
    }

    /// The value set for `key`, if any (empty counts as unset).
    fn value(&self, key: &str) -> Option<&Value> {
        self.get(key).and_then(|s| s.value.as_ref())
    }

    fn is_set(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    // The getters below read the value or the registry default. A kind mismatch is a bug in
    // this file, not a user error; the tests load every key and would panic first.

    fn int(&self, key: &str) -> i64 {
        match (self.value(key), registry::def(key).default) {
            (Some(Value::Int(n)), _) => *n,
            (None, Dflt::Int(n)) => n,
            _ => panic!("config key {key} is not an int with a default"),
        }
    }

    fn opt_int(&self, key: &str) -> Option<i64> {
        match (self.value(key), registry::def(key).default) {
            (Some(Value::Int(n)), _) => Some(*n),
            (None, Dflt::Int(n)) => Some(n),
            (None, Dflt::None) => None,
            _ => panic!("config key {key} is not an int"),
        }
    }

    fn u32(&self, key: &str) -> u32 {
        // Registry ranges keep every u32 key within u32.
        self.int(key).clamp(0, u32::MAX as i64) as u32
    }

    fn u64(&self, key: &str) -> u64 {
        self.int(key).max(0) as u64
    }

    fn bool(&self, key: &str) -> bool {
        match (self.value(key), registry::def(key).default) {
            (Some(Value::Bool(b)), _) => *b,
            (None, Dflt::Bool(b)) => b,
            _ => panic!("config key {key} is not a bool with a default"),
        }
    }

    fn text(&self, key: &str) -> String {
        match (self.value(key), registry::def(key).default) {
            (Some(Value::Text(s)), _) => s.clone(),
            (None, Dflt::Str(s)) => s.to_string(),
            _ => panic!("config key {key} is not text with a default"),
        }
    }

    fn opt_text(&self, key: &str) -> Option<String> {
        match self.value(key) {
            Some(Value::Text(s)) => Some(s.clone()),
            None => match registry::def(key).default {
                Dflt::Str(s) => Some(s.to_string()),
                _ => None,
            },
            Some(_) => panic!("config key {key} is not text"),
        }
    }

    fn secret(&self, key: &str) -> Option<Secret> {
        self.opt_text(key).map(Secret::new)
    }

    fn word(&self, key: &str) -> &'static str {
        match (self.value(key), registry::def(key).default) {
            (Some(Value::Word(w)), _) => w,
            (None, Dflt::Str(s)) => s,
            _ => panic!("config key {key} is not an enum with a default"),
        }
    }

    fn list(&self, key: &str) -> Option<Vec<String>> {
        match self.value(key) {
            Some(Value::List(l)) => Some(l.clone()),
            None => None,
            Some(_) => panic!("config key {key} is not a list"),
        }
    }

    fn hosts(&self, key: &str, default_port: u16) -> Vec<HostPort> {
        let entries = match (self.value(key), registry::def(key).default) {
            (Some(Value::Hosts(h)), _) => h.clone(),
            (None, Dflt::Str(s)) => vec![HostEntry {
                host: s.to_string(),
                port: None,
            }],
            _ => panic!("config key {key} is not a host list with a default"),
        };
        entries
            .into_iter()
            .map(|e| HostPort {
                host: e.host,
                port: e.port.unwrap_or(default_port),
            })
            .collect()
    }

    /// Every set key under a pattern prefix, as (rest of the key, text value).
    fn under(&self, prefix: &str) -> Vec<(String, String)> {
        self.by_key
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, s)| match &s.value {
                Some(Value::Text(v)) => Some((k[prefix.len()..].to_string(), v.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Settings {
    /// A rule error about `key`, prefixed with where `key` was set (if it was).
    fn rule(&self, key: &str, message: String) -> ConfigError {
        let message = match self.get(key) {
            Some(setting) => format!("{}: {message}", setting.origin),
            None => message,
        };
        ConfigError::Rule {
            key: key.to_string(),
            message,
        }
    }
}

/// Builds the spec; cross-key problems go to `errors`, advice to `notices`.
pub(super) fn build(
    s: &Settings,
    errors: &mut Vec<ConfigError>,
    notices: &mut Vec<Notice>,
) -> MigrationSpec {
    let source = build_source(s, errors);
    let target = build_target(s, errors, notices);
    let (tables, table_options) = build_tables(s, errors);
    let run = build_run(s);
    MigrationSpec {
        source,
        target,
        tables,
        table_options,
        run,
    }
}

fn build_source(s: &Settings, errors: &mut Vec<ConfigError>) -> SourceSpec {
    let tls = if s.bool("cassandra.connection.ssl.enabled") {
        match s.opt_text("cassandra.connection.ssl.trustStore.path") {
            Some(trust) => Some(SourceTls {
                trust_store: PathBuf::from(trust),
                trust_store_password: s.secret("cassandra.connection.ssl.trustStore.password"),
                key_store: s
                    .opt_text("cassandra.connection.ssl.keyStore.path")
                    .map(PathBuf::from),
                key_store_password: s.secret("cassandra.connection.ssl.keyStore.password"),
            }),
            None => {
                errors.push(s.rule(
                    "cassandra.connection.ssl.trustStore.path",
                    "cassandra.connection.ssl.enabled=true needs cassandra.connection.ssl.trustStore.path: \
                     the CA certificate(s) the nodes' certificates lead to, as PEM or PKCS#12"
                        .into(),
                ));
                None
            }
        }
    } else {
        None
    };
    let retry_delay_min_ms = s.u64("cassandra.connection.reconnectionDelayMs.min");
    let retry_delay_max_ms = s.u64("cassandra.connection.reconnectionDelayMs.max");
    if retry_delay_min_ms > retry_delay_max_ms {
        errors.push(s.rule(
            "cassandra.connection.reconnectionDelayMs.min",
            format!(
                "cassandra.connection.reconnectionDelayMs.min={retry_delay_min_ms} is above \
                 cassandra.connection.reconnectionDelayMs.max={retry_delay_max_ms}; \
                 lower the min or raise the max"
            ),
        ));
    }
    let split_mb = s.u32("cassandra.inputSplitSizeMb");
    let split_size = match s.opt_int("cassandra.inputSplitSizeMb.override") {
        Some(mb) => SplitSize::Fixed { mb: mb as u32 },
        None if s.bool("cassandra.inputSplitSizeMb.autoDetermine") => {
            SplitSize::Auto { start_mb: split_mb }
        }
        None => SplitSize::Fixed { mb: split_mb },
    };
    let consistency = match s.word("cassandra.consistencyLevel") {
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_ONE" => Consistency::LocalOne,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "SERIAL" => Consistency::Serial,
        "LOCAL_SERIAL" => Consistency::LocalSerial,
        _ => Consistency::LocalQuorum,
    };
    let reads_per_sec = s.u64("cassandra.readsPerSec");
    SourceSpec {
        contact_points: s.hosts("cassandra.host", s.int("cassandra.port") as u16),
        local_dc: s.opt_text("cassandra.localDC"),
        remote_dc_reads: s.bool("ferry.remoteDcReads"),
        username: s.opt_text("cassandra.username"),
        password: s.secret("cassandra.password"),
        read_timeout_ms: s.u64("cassandra.readTimeoutMs"),
        connect_timeout_ms: s.u64("cassandra.connection.timeoutMs"),
        consistency,
        fetch_size_rows: s.u32("cassandra.fetchSizeInRows"),
        split_size,
        concurrent_reads: s.u32("cassandra.concurrentReads"),
        max_rows_per_sec: (reads_per_sec > 0).then_some(reads_per_sec),
        retry_count: s.u32("cassandra.retryCount"),
        connections_per_node: s.u32("cassandra.connection.localConnectionsPerExecutor"),
        retry_delay_min_ms,
        retry_delay_max_ms,
        tls,
        compression: match s.word("cassandra.connection.compression") {
            "LZ4" => CqlCompression::Lz4,
            "SNAPPY" => CqlCompression::Snappy,
            _ => CqlCompression::None,
        },
    }
}

fn build_target_tls(s: &Settings, errors: &mut Vec<ConfigError>) -> TargetTlsSpec {
    let mode = match (s.value("yugabyte.sslmode"), s.value("yugabyte.ssl")) {
        (None, Some(Value::Bool(true))) => SslMode::VerifyFull,
        (None, Some(Value::Bool(false))) => SslMode::Disable,
        _ => SslMode::from_word(s.word("yugabyte.sslmode")).unwrap_or(SslMode::Prefer),
    };
    let path = |k: &str| s.opt_text(k).map(PathBuf::from);
    let tls = TargetTlsSpec {
        mode,
        root_cert: path("yugabyte.sslrootcert"),
        client_cert: path("yugabyte.sslcert"),
        client_key: path("yugabyte.sslkey"),
        password: s.secret("yugabyte.sslpassword"),
    };
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && tls.root_cert.is_none() {
        let key = if s.is_set("yugabyte.sslmode") {
            "yugabyte.sslmode"
        } else {
            "yugabyte.ssl"
        };
        errors.push(s.rule(
            key,
            format!(
                "yugabyte.sslmode={} checks the target's certificate against a CA, but \
                 yugabyte.sslrootcert is not set; set it to the CA certificate (PEM, e.g. \
                 YugabyteDB Aeon's root.crt), or use yugabyte.sslmode=require to encrypt \
                 without checking",
                mode.as_str()
            ),
        ));
    }
    if mode == SslMode::Disable {
        for k in [
            "yugabyte.sslrootcert",
            "yugabyte.sslcert",
            "yugabyte.sslkey",
        ] {
            if s.is_set(k) {
                errors.push(s.rule(
                    k,
                    format!(
                        "{k} is set but TLS to the target is off (yugabyte.sslmode=disable); \
                         set yugabyte.sslmode=verify-full (or require), or remove {k}"
                    ),
                ));
            }
        }
    }
    // sslcert without sslkey (a PKCS#12 key store, or PEM holding both) and sslkey without
    // sslcert (pgJDBC's PKCS#12 spelling) are judged when the files are read.
    tls
}

fn build_target(
    s: &Settings,
    errors: &mut Vec<ConfigError>,
    notices: &mut Vec<Notice>,
) -> TargetSpec {
    let insert_mode = match s.word("yugabyte.insertMode") {
        "INSERT" => InsertMode::Insert,
        _ => InsertMode::Copy,
    };
    let copy_replace = s.bool("yugabyte.copyReplace");
    if insert_mode == InsertMode::Insert && copy_replace {
        notices.push(Notice {
            key: "yugabyte.copyReplace".into(),
            kind: NoticeKind::Advice,
            message: "has no effect with yugabyte.insertMode=INSERT (rows already present are \
                      skipped, not replaced)"
                .into(),
        });
    }
    let socket_timeout_secs = s.u64("yugabyte.socketTimeout");
    TargetSpec {
        hosts: s.hosts("yugabyte.host", s.int("yugabyte.port") as u16),
        database: s.text("yugabyte.database"),
        username: s.text("yugabyte.username"),
        password: s.secret("yugabyte.password"),
        load_balance_hosts: s.bool("yugabyte.loadBalanceHosts"),
        max_connections_per_host: s.u32("yugabyte.maxPoolSize"),
        insert_mode,
        insert_batch_rows: s.u32("yugabyte.insertBatchSize"),
        copy_flush_every_rows: s.u64("yugabyte.copyFlushEvery"),
        copy_buffer_bytes: s.u32("yugabyte.copyBufferSize"),
        copy_replace,
        disable_transactional_writes: s.bool("yugabyte.disableTransactionalWrites"),
        connect_timeout_ms: s.u64("yugabyte.connectionTimeout"),
        socket_timeout_secs: (socket_timeout_secs > 0).then_some(socket_timeout_secs),
        login_timeout_secs: s.u64("yugabyte.loginTimeout"),
        truncate_target_table: s.bool("yugabyte.truncateTargetTable"),
        tcp_keepalive: s.bool("yugabyte.tcpKeepAlive"),
        tls: build_target_tls(s, errors),
    }
}

const COLUMN_MAPPING_PREFIX: &str = "table.columnMapping.";

fn build_tables(s: &Settings, errors: &mut Vec<ConfigError>) -> (Vec<TableSpec>, TableOptions) {
    let target_schema = s.text("table.target.schema");
    let keyspace = s.opt_text("table.source.keyspace");
    let table = s.opt_text("table.source.table");
    let tables = match (keyspace, table) {
        (Some(source_keyspace), Some(source_table)) => vec![TableSpec {
            target_table: s
                .opt_text("table.target.table")
                .unwrap_or_else(|| source_table.clone()),
            source_keyspace,
            source_table,
            target_schema: target_schema.clone(),
        }],
        (None, None) => {
            if s.is_set("table.target.table") {
                errors.push(s.rule(
                    "table.target.table",
                    "table.target.table is set but table.source.keyspace and table.source.table \
                     are not; set them too (a target name only makes sense for one source table)"
                        .into(),
                ));
            }
            Vec::new()
        }
        (Some(_), None) | (None, Some(_)) => {
            let (set, missing) = if s.is_set("table.source.keyspace") {
                ("table.source.keyspace", "table.source.table")
            } else {
                ("table.source.table", "table.source.keyspace")
            };
            errors.push(s.rule(
                set,
                format!(
                    "{set} is set but {missing} is not; set both, or neither and name the tables \
                     on the command line (--tables ks.table or --keyspace ks)"
                ),
            ));
            Vec::new()
        }
    };

    let mut column_mapping = BTreeMap::new();
    let mut by_target: BTreeMap<String, String> = BTreeMap::new();
    for (source, target) in s.under(COLUMN_MAPPING_PREFIX) {
        if let Some(other) = by_target.insert(target.clone(), source.clone()) {
            errors.push(s.rule(
                &format!("{COLUMN_MAPPING_PREFIX}{source}"),
                format!(
                    "{COLUMN_MAPPING_PREFIX}{other} and {COLUMN_MAPPING_PREFIX}{source} both map \
                     to target column '{target}'; map each source column to a different column"
                ),
            ));
        }
        column_mapping.insert(source, target);
    }

    let constant_columns = build_constant_columns(s, &by_target, errors);
    let options = TableOptions {
        target_schema,
        column_mapping,
        constant_columns,
        primary_key: s.list("table.primaryKey"),
        validate: s.bool("table.validate"),
        row_times: RowTimeColumns {
            writetime: s.opt_text("ferry.writetimeColumn"),
            expires: s.opt_text("ferry.expiresColumn"),
        },
        clock_skew_secs: s.u64("ferry.clockSkewSecs"),
    };
    (tables, options)
}

/// Splits like Java's `String.split(regex)`: trailing empty pieces are dropped. Pieces are
/// trimmed, as the seed's examples put spaces after commas.
fn java_split(text: &str, re: &regex::Regex) -> Vec<String> {
    let mut parts: Vec<String> = re.split(text).map(|p| p.trim().to_string()).collect();
    while parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    parts
}

fn build_constant_columns(
    s: &Settings,
    mapped_targets: &BTreeMap<String, String>,
    errors: &mut Vec<ConfigError>,
) -> Vec<ConstantColumn> {
    const NAMES: &str = "table.constantColumns.names";
    const VALUES: &str = "table.constantColumns.values";
    const SPLIT: &str = "table.constantColumns.splitRegex";
    let names = s.opt_text(NAMES);
    let values = s.opt_text(VALUES);
    let (names, values) = match (names, values) {
        (None, None) => return Vec::new(),
        (Some(n), Some(v)) => (n, v),
        (n, _) => {
            let (set, missing) = if n.is_some() {
                (NAMES, VALUES)
            } else {
                (VALUES, NAMES)
            };
            errors.push(s.rule(
                set,
                format!("{set} is set but {missing} is not; give one value per column name"),
            ));
            return Vec::new();
        }
    };
    let pattern = s.text(SPLIT);
    // The pattern was checked when the key was read.
    let Ok(re) = regex::Regex::new(&pattern) else {
        return Vec::new();
    };
    let names = java_split(&names, &re);
    let values = java_split(&values, &re);
    if names.len() != values.len() {
        errors.push(s.rule(
            VALUES,
            format!(
                "{NAMES} has {} entries but {VALUES} has {} (split by regex '{pattern}'); give \
                 one value per name, or set {SPLIT} (e.g. \\\\|) when values contain the separator",
                names.len(),
                values.len()
            ),
        ));
        return Vec::new();
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut columns = Vec::new();
    for (name, value) in names.into_iter().zip(values) {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            errors.push(s.rule(
                NAMES,
                format!(
                    "{NAMES} has the column name '{name}'; names are non-empty, without spaces"
                ),
            ));
            continue;
        }
        if !seen.insert(name.clone()) {
            errors.push(s.rule(
                NAMES,
                format!("{NAMES} names column '{name}' twice; give each column once"),
            ));
            continue;
        }
        if let Some(source) = mapped_targets.get(&name) {
            errors.push(s.rule(
                NAMES,
                format!(
                    "{NAMES} names column '{name}', which {COLUMN_MAPPING_PREFIX}{source} already \
                     fills from the source; drop one of them"
                ),
            ));
            continue;
        }
        let value = if value.eq_ignore_ascii_case("CURRENTTIMESTAMP")
            || value.eq_ignore_ascii_case("CURRENT_TIMESTAMP")
        {
            ConstantValue::CurrentTimestamp
        } else {
            ConstantValue::Text(value)
        };
        columns.push(ConstantColumn { name, value });
    }
    columns
}

fn build_run(s: &Settings) -> RunSpec {
    let (max_parallel_chunks, max_parallel_chunks_from) =
        if let Some(n) = s.opt_int("ferry.maxParallelChunks") {
            (n as u32, "ferry.maxParallelChunks")
        } else if let Some(n) = s.opt_int("spark.default.parallelism") {
            (n as u32, "spark.default.parallelism")
        } else if let (Some(i), Some(c)) = (
            s.opt_int("spark.executor.instances"),
            s.opt_int("spark.executor.cores"),
        ) {
            (
                (i * c).clamp(1, 100_000) as u32,
                "spark.executor.instances × spark.executor.cores",
            )
        } else {
            (DEFAULT_MAX_PARALLEL_CHUNKS, "default")
        };
    let sample_rows = s.u64("migration.validation.sampleSize");
    RunSpec {
        checkpoint: CheckpointSpec {
            enabled: s.bool("migration.checkpoint.enabled"),
            progress_schema: s.text("migration.checkpoint.keyspace"),
            interval_rows: s.opt_int("migration.checkpoint.interval").map(|n| n as u64),
        },
        run_id: s.opt_text("migration.runId"),
        // The seed writes `0` for "no previous run".
        prev_run_id: s.opt_text("migration.prevRunId").filter(|id| id != "0"),
        validation: ValidationSpec {
            enabled: s.bool("migration.validation.enabled"),
            mode: if sample_rows == 0 {
                ValidationMode::Full
            } else {
                ValidationMode::Sample { rows: sample_rows }
            },
        },
        max_parallel_chunks,
        max_parallel_chunks_from,
        outage_deadline_secs: s.u64("ferry.outageDeadlineSecs"),
        source_latency_target_ms: s.opt_int("ferry.sourceLatencyTargetMs").map(|n| n as u64),
        lease_secs: s.u64("ferry.leaseSecs"),
        adaptive_concurrency: s.bool("ferry.adaptiveConcurrency"),
        page_memory_bytes: s.u64("ferry.pageMemoryMb") << 20,
        large_partition_rows: s.u64("ferry.largePartitionRows"),
        runs_dir: PathBuf::from(s.text("ferry.runsDir")),
        reject_file: s.opt_text("ferry.rejectFile").map(PathBuf::from),
    }
}
