//! The one table of every configuration key ferry knows: its type and range, default, meaning and
//! what ferry does with it. `docs/configuration.md` is generated from this table
//! ([`markdown_reference`]), so the user docs and the validator cannot disagree.

use std::fmt::Write as _;

/// One known key (or a family of keys sharing a prefix, such as `table.columnMapping.<col>`).
#[derive(Debug)]
pub struct KeyDef {
    /// The exact key, or a pattern ending in `<placeholder>` (see [`KeyDef::prefix`]).
    pub key: &'static str,
    pub kind: Kind,
    pub default: Dflt,
    /// One sentence for the user docs.
    pub meaning: &'static str,
    pub disposition: Disposition,
}

impl KeyDef {
    /// For a pattern key (`table.columnMapping.<source_column>`), the fixed part before `<`.
    pub fn prefix(&self) -> Option<&'static str> {
        self.key.find('<').map(|i| &self.key[..i])
    }

    /// Whether `key` is this entry: equal to it, or — for a pattern — its prefix plus a non-empty
    /// rest.
    pub fn matches(&self, key: &str) -> bool {
        match self.prefix() {
            Some(p) => key.len() > p.len() && key.starts_with(p),
            None => key == self.key,
        }
    }

    /// A secret's value never appears in errors, notices or `Debug` output.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind, Kind::Secret)
    }
}

/// What a value must look like. Parsing lives in `value.rs`; this is the declaration.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Any text, including empty.
    Text,
    /// A non-empty name without whitespace (identifier, run id, …).
    Name,
    /// A comma-separated list of names.
    NameList,
    /// A file system path.
    Path,
    /// A password: any text, never shown.
    Secret,
    /// `true` or `false` (case-insensitive).
    Bool,
    /// A whole number in `min..=max`, in `unit` (empty when the number has no unit).
    Int {
        min: i64,
        max: i64,
        unit: &'static str,
    },
    /// A decimal number in `min..=max`.
    Float { min: f64, max: f64 },
    /// Spark's time string: a number with `ms`, `s`, `m`/`min`, `h` or `d` (`800s`).
    SparkDuration,
    /// Spark's size string: a number with `k`, `m`, `g` or `t` (`8g`, `2048m`).
    SparkSize,
    /// Comma-separated `host` or `host:port` entries (`[v6addr]:port` for IPv6).
    Hosts,
    /// One of these words (case-insensitive).
    Enum(&'static [&'static str]),
    /// A regular expression (Rust `regex` syntax, which covers Java's for simple separators).
    Regex,
}

/// The default of a key, typed so that the spec builder needs no parsing of its own defaults.
#[derive(Debug, Clone, Copy)]
pub enum Dflt {
    /// Unset: the feature is off or the value is derived (the meaning says how).
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'static str),
}

/// What ferry does with a key.
#[derive(Debug, Clone, Copy)]
pub enum Disposition {
    /// ferry uses the key with the meaning given.
    Used,
    /// The Spark/JDBC key's intent is carried over onto this ferry setting.
    MappedOnto(&'static str),
    /// The key has no counterpart in ferry; the reason is reported once when the key is set.
    DoesNotApply(&'static str),
}

/// Compression of the CQL native protocol.
pub const CQL_COMPRESSION: &[&str] = &["NONE", "LZ4", "SNAPPY"];

pub const CONSISTENCY_LEVELS: &[&str] = &[
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_ONE",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "SERIAL",
    "LOCAL_SERIAL",
];
pub const INSERT_MODES: &[&str] = &["COPY", "INSERT"];
pub const ISOLATION_LEVELS: &[&str] = &["READ_COMMITTED", "REPEATABLE_READ", "SERIALIZABLE"];
/// libpq's sslmode values (pgJDBC's too).
pub const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

const PORT: Kind = Kind::Int {
    min: 1,
    max: 65_535,
    unit: "",
};
const MS_1H: Kind = Kind::Int {
    min: 1,
    max: 3_600_000,
    unit: "ms",
};
const COUNT_POS: Kind = Kind::Int {
    min: 1,
    max: 1_000_000,
    unit: "",
};
const SPLIT_MB: Kind = Kind::Int {
    min: 1,
    max: 65_536,
    unit: "MB",
};

const NO_JVM_MEMORY: &str = "a JVM memory setting; ferry's memory is bounded by the pages and batches in flight, not by a heap size";
const NO_DYNAMIC_ALLOCATION: &str = "ferry has no executors to allocate; for more workers start more ferry processes with the same configuration, they share one plan";
const NO_REMOTE_DC: &str = "ferry reads only from replicas in the local data center (cassandra.localDC) and opens no pool to remote ones";
const NO_POOL: &str = "ferry has no idle connection pool: it opens its COPY connections when a run starts and keeps them busy until it ends";
const NO_CSV: &str = "ferry writes binary COPY, CSV options do not apply";
const NO_JAVA_SSL_CLASS: &str = "a Java class; ferry has one TLS stack (rustls), and yugabyte.sslmode picks how the server's certificate is checked";
const NO_SPARK_SQL: &str = "ferry runs no Spark SQL plan: it reads token-range chunks and streams them into COPY, with a page always fetched while the previous one is sent";

/// Every key ferry knows, grouped by prefix in the order the docs list them.
pub static KEYS: &[KeyDef] = &[
    // ---------------------------------------------------------------- Cassandra (source)
    KeyDef {
        key: "cassandra.host",
        kind: Kind::Hosts,
        default: Dflt::Str("localhost"),
        meaning: "Contact points of the source cluster: comma-separated `host` or `host:port` (a host without a port uses cassandra.port).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.port",
        kind: PORT,
        default: Dflt::Int(9042),
        meaning: "CQL native port for contact points given without one.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.localDC",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Data center whose replicas serve every read (migrate, validate, diagnose): each token range is read from its replicas here, LOCAL_* consistency levels count here, and no connection pool is opened to other data centers unless ferry.remoteDcReads=true. A name the cluster does not have is an error listing its data centers. Unset: any replica of any data center.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.username",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "User for password authentication; unset connects without authentication.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.password",
        kind: Kind::Secret,
        default: Dflt::None,
        meaning: "Password for cassandra.username; the environment variable FERRY_CASSANDRA_PASSWORD overrides it.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.readTimeoutMs",
        kind: MS_1H,
        default: Dflt::Int(120_000),
        meaning: "How long one page read may take before it is retried (the chunk is then split and retried with backoff).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.fetchSizeInRows",
        kind: COUNT_POS,
        default: Dflt::Int(5_000),
        meaning: "Rows per page of a token-range scan.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.consistencyLevel",
        kind: Kind::Enum(CONSISTENCY_LEVELS),
        default: Dflt::Str("LOCAL_QUORUM"),
        meaning: "Consistency level of the reads.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.retryCount",
        kind: Kind::Int {
            min: 0,
            max: 100,
            unit: "",
        },
        default: Dflt::Int(3),
        meaning: "Retries of a failed page read (timeout, unavailable, overloaded) before its chunk counts as failed.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.inputSplitSizeMb",
        kind: SPLIT_MB,
        default: Dflt::Int(64),
        meaning: "Target size of one chunk (token range) of the plan, estimated from system.size_estimates; the starting point when autoDetermine is true.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.inputSplitSizeMb.autoDetermine",
        kind: Kind::Bool,
        default: Dflt::Bool(true),
        meaning: "When true, ferry sizes each table's chunk count from its rows (one page of partition tokens, sampled) and the measured round trips to both sides: a 1K-row table is one chunk, a big one at least one chunk per worker; chunks stay under cassandra.inputSplitSizeMb as estimated.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.inputSplitSizeMb.override",
        kind: SPLIT_MB,
        default: Dflt::None,
        meaning: "A fixed chunk size that wins over cassandra.inputSplitSizeMb and autoDetermine.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.concurrentReads",
        kind: Kind::Int {
            min: 1,
            max: 65_536,
            unit: "",
        },
        default: Dflt::Int(256),
        meaning: "Ceiling of page requests in flight across all chunks: each worker keeps one page read in flight (and fetches the next while sending the current), so this also caps the number of workers.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.readsPerSec",
        kind: Kind::Int {
            min: 0,
            max: 1_000_000_000,
            unit: "rows/s",
        },
        default: Dflt::Int(0),
        meaning: "Throttle protecting a production source: at most this many rows read per second by this process; 0 means unlimited.",
        disposition: Disposition::MappedOnto(
            "ferry's source throttle, in rows per second for the whole process (the Spark connector counted requests per core)",
        ),
    },
    KeyDef {
        key: "cassandra.connection.localConnectionsPerExecutor",
        kind: Kind::Int {
            min: 1,
            max: 64,
            unit: "",
        },
        default: Dflt::Int(2),
        meaning: "CQL connections ferry opens to each node of the local data center.",
        disposition: Disposition::MappedOnto(
            "connections per Cassandra node of this ferry process (ferry has one driver session, not one per executor)",
        ),
    },
    KeyDef {
        key: "cassandra.connection.remoteConnectionsPerExecutor",
        kind: Kind::Int {
            min: 0,
            max: 64,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark connector: connections to each node of a remote data center.",
        disposition: Disposition::DoesNotApply(NO_REMOTE_DC),
    },
    KeyDef {
        key: "cassandra.connection.timeoutMs",
        kind: MS_1H,
        default: Dflt::Int(10_000),
        meaning: "How long opening one connection to a Cassandra node may take.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.compression",
        kind: Kind::Enum(CQL_COMPRESSION),
        default: Dflt::Str("NONE"),
        meaning: "Compression of the CQL native protocol's frames (the connector's spark.cassandra.connection.compression): LZ4 or SNAPPY cut the bytes a page takes on the wire (rows compress to about a half to a third) for some CPU on both ends; worth it when the link's bandwidth, not its latency, limits the read (ferry diagnose says when).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.keepAliveMs",
        kind: Kind::Int {
            min: 0,
            max: 86_400_000,
            unit: "ms",
        },
        default: Dflt::None,
        meaning: "Spark connector: how long an unused session stays open.",
        disposition: Disposition::DoesNotApply(
            "ferry holds one session for the whole run and closes it at the end; there is no unused session to keep alive",
        ),
    },
    KeyDef {
        key: "cassandra.connection.reconnectionDelayMs.min",
        kind: MS_1H,
        default: Dflt::Int(1_000),
        meaning: "First delay of the exponential backoff when a Cassandra node or chunk read is retried.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.reconnectionDelayMs.max",
        kind: MS_1H,
        default: Dflt::Int(60_000),
        meaning: "Longest delay of that backoff; must not be below the min.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.maxRequestsPerConnection.local",
        kind: Kind::Int {
            min: 1,
            max: 32_768,
            unit: "",
        },
        default: Dflt::Int(1_024),
        meaning: "Ceiling of requests in flight on one connection to a local node (CQL protocol v4 allows 32768).",
        disposition: Disposition::DoesNotApply(
            "no effect: the driver multiplexes up to 32768 requests on a connection (protocol v4); ferry keeps one page read per worker in flight, bounded by cassandra.concurrentReads",
        ),
    },
    KeyDef {
        key: "cassandra.connection.maxRequestsPerConnection.remote",
        kind: Kind::Int {
            min: 1,
            max: 32_768,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark connector: requests in flight per connection to a remote data center.",
        disposition: Disposition::DoesNotApply(NO_REMOTE_DC),
    },
    KeyDef {
        key: "cassandra.connection.factory",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Spark connector: Java class that creates driver sessions.",
        disposition: Disposition::DoesNotApply(
            "a JVM class name; ferry connects with its own Rust driver and cannot load Java classes",
        ),
    },
    KeyDef {
        key: "cassandra.connection.ssl.enabled",
        kind: Kind::Bool,
        default: Dflt::Bool(false),
        meaning: "TLS to Cassandra (client encryption). The nodes' certificates are checked against cassandra.connection.ssl.trustStore.path, and each must name the IP address ferry dials (hostname verification is always on).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.ssl.trustStore.path",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "With TLS: the CA certificates the nodes' certificates must lead to — a PEM file or a PKCS#12 trust store (Java's default type since Java 9, whatever its name). A legacy JKS file is refused with the keytool command that converts it. Required when cassandra.connection.ssl.enabled=true.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.ssl.trustStore.password",
        kind: Kind::Secret,
        default: Dflt::None,
        meaning: "Password of a PKCS#12 trust store (a PEM file has none); never printed.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.ssl.keyStore.path",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "With TLS, for nodes that require a client certificate (require_client_auth): ferry's certificate and private key — a PKCS#12 key store, or one PEM file holding the certificate chain and the unencrypted PKCS#8 key. Unset: no client certificate.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "cassandra.connection.ssl.keyStore.password",
        kind: Kind::Secret,
        default: Dflt::None,
        meaning: "Password of the PKCS#12 key store; never printed.",
        disposition: Disposition::Used,
    },
    // ---------------------------------------------------------------- YugabyteDB / PostgreSQL (target)
    KeyDef {
        key: "yugabyte.host",
        kind: Kind::Hosts,
        default: Dflt::Str("localhost"),
        meaning: "Target endpoints: comma-separated `host` or `host:port` (a host without a port uses yugabyte.port); COPY connections are spread across all of them.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.port",
        kind: PORT,
        default: Dflt::Int(5433),
        meaning: "YSQL/PostgreSQL port for hosts given without one (YugabyteDB's default is 5433, PostgreSQL's 5432).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.database",
        kind: Kind::Name,
        default: Dflt::Str("yugabyte"),
        meaning: "Target database.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.username",
        kind: Kind::Name,
        default: Dflt::Str("yugabyte"),
        meaning: "Target user.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.password",
        kind: Kind::Secret,
        default: Dflt::None,
        meaning: "Password of yugabyte.username; the environment variable FERRY_YUGABYTE_PASSWORD overrides it.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.truncateTargetTable",
        kind: Kind::Bool,
        default: Dflt::Bool(false),
        meaning: "Truncate the target table when a run starts fresh (never when it resumes); the Spark job defaulted to true, ferry to false because a rerun resumes instead of starting over.",
        disposition: Disposition::DoesNotApply(
            "no effect: ferry never empties a target table by a setting; `ferry migrate --fresh --truncate` does, on purpose",
        ),
    },
    KeyDef {
        key: "yugabyte.maxPoolSize",
        kind: Kind::Int {
            min: 1,
            max: 1_024,
            unit: "",
        },
        default: Dflt::Int(32),
        meaning: "Ceiling of COPY (or INSERT) connections ferry holds open to each target host.",
        disposition: Disposition::MappedOnto(
            "the number of COPY connections per target host (ferry has no JDBC pool; each connection carries one COPY stream)",
        ),
    },
    KeyDef {
        key: "yugabyte.minIdle",
        kind: Kind::Int {
            min: 0,
            max: 1_024,
            unit: "",
        },
        default: Dflt::None,
        meaning: "HikariCP: idle connections kept in the pool.",
        disposition: Disposition::DoesNotApply(NO_POOL),
    },
    KeyDef {
        key: "yugabyte.connectionTimeout",
        kind: MS_1H,
        default: Dflt::Int(30_000),
        meaning: "How long opening one target connection (TCP, TLS and login) may take.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.idleTimeout",
        kind: Kind::Int {
            min: 0,
            max: 86_400_000,
            unit: "ms",
        },
        default: Dflt::None,
        meaning: "HikariCP: how long an idle pooled connection lives.",
        disposition: Disposition::DoesNotApply(NO_POOL),
    },
    KeyDef {
        key: "yugabyte.maxLifetime",
        kind: Kind::Int {
            min: 0,
            max: 86_400_000,
            unit: "ms",
        },
        default: Dflt::None,
        meaning: "HikariCP: longest life of a pooled connection.",
        disposition: Disposition::DoesNotApply(NO_POOL),
    },
    KeyDef {
        key: "yugabyte.loadBalanceHosts",
        kind: Kind::Bool,
        default: Dflt::Bool(false),
        meaning: "On YugabyteDB, also discover the cluster's nodes with yb_servers() and spread connections across them, not only across yugabyte.host.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.topologyKeys",
        kind: Kind::NameList,
        default: Dflt::None,
        meaning: "With loadBalanceHosts, only use discovered nodes in these placements (`cloud.region.zone`, comma-separated); unset uses all.",
        disposition: Disposition::DoesNotApply(
            "no effect yet: ferry uses every node yb_servers() lists (with yugabyte.loadBalanceHosts) whatever its placement",
        ),
    },
    KeyDef {
        key: "yugabyte.reWriteBatchedInserts",
        kind: Kind::Bool,
        default: Dflt::None,
        meaning: "pgJDBC: rewrite batched INSERTs into multi-row statements.",
        disposition: Disposition::DoesNotApply(
            "a pgJDBC driver rewrite; ferry writes COPY, and in INSERT mode builds multi-row statements itself (yugabyte.insertBatchSize)",
        ),
    },
    KeyDef {
        key: "yugabyte.tcpKeepAlive",
        kind: Kind::Bool,
        default: Dflt::Bool(true),
        meaning: "TCP keepalive on target connections, so a dead peer is noticed during long runs.",
        disposition: Disposition::DoesNotApply(
            "no effect: ferry always turns TCP keepalives on for target connections (yugabyte.socketTimeout tunes them)",
        ),
    },
    KeyDef {
        key: "yugabyte.binaryTransfer",
        kind: Kind::Bool,
        default: Dflt::None,
        meaning: "pgJDBC: binary transfer of query results.",
        disposition: Disposition::DoesNotApply(
            "pgJDBC's result format; ferry always writes binary COPY and reads no results from the target",
        ),
    },
    KeyDef {
        key: "yugabyte.socketTimeout",
        kind: Kind::Int {
            min: 0,
            max: 86_400,
            unit: "s",
        },
        default: Dflt::Int(0),
        meaning: "How long the target may take to answer (a statement's result, a COPY's end, a commit) and data sent on a connection may stay unacknowledged (TCP_USER_TIMEOUT; keepalive probes detect a silent server in about as long) before the connection counts as failed and is replaced, in seconds as pgJDBC counts; 0 keeps the kernel's TCP defaults and waits 120 s for an answer (a half-open connection answers nothing, and TCP alone never notices).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.loginTimeout",
        kind: Kind::Int {
            min: 1,
            max: 3_600,
            unit: "s",
        },
        default: Dflt::Int(10),
        meaning: "How long authentication on a new target connection may take (pgJDBC unit: seconds).",
        disposition: Disposition::DoesNotApply(
            "no effect: yugabyte.connectionTimeout bounds connecting and logging in together",
        ),
    },
    KeyDef {
        key: "yugabyte.insertMode",
        kind: Kind::Enum(INSERT_MODES),
        default: Dflt::Str("COPY"),
        meaning: "COPY writes binary COPY FROM STDIN (fastest); INSERT writes INSERT … ON CONFLICT DO NOTHING (skips rows already present).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.insertBatchSize",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            unit: "rows",
        },
        default: Dflt::Int(300),
        meaning: "Rows per INSERT statement in INSERT mode.",
        disposition: Disposition::DoesNotApply(
            "no effect: with yugabyte.insertMode=INSERT, rows still stream by COPY (into a staging table merged per chunk); yugabyte.copyFlushEvery sizes the statements",
        ),
    },
    KeyDef {
        key: "yugabyte.copyBufferSize",
        kind: Kind::Int {
            min: 1_024,
            max: 67_108_864,
            unit: "bytes",
        },
        default: Dflt::Int(1_048_576),
        meaning: "Bytes of encoded rows ferry hands to one COPY data message.",
        disposition: Disposition::DoesNotApply(
            "no effect: ferry sends COPY data in 64 KiB messages, each page's encoding cut into them",
        ),
    },
    KeyDef {
        key: "yugabyte.copyFlushEvery",
        kind: Kind::Int {
            min: 1,
            max: 10_000_000,
            unit: "rows",
        },
        default: Dflt::Int(20_000),
        meaning: "Rows per batch: one COPY statement, committed in one transaction with its progress mark.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.csvDelimiter",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "Spark job: CSV field delimiter of its text COPY.",
        disposition: Disposition::DoesNotApply(NO_CSV),
    },
    KeyDef {
        key: "yugabyte.csvNull",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "Spark job: CSV null marker of its text COPY.",
        disposition: Disposition::DoesNotApply(NO_CSV),
    },
    KeyDef {
        key: "yugabyte.csvQuote",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "Spark job: CSV quote character of its text COPY.",
        disposition: Disposition::DoesNotApply(NO_CSV),
    },
    KeyDef {
        key: "yugabyte.csvEscape",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "Spark job: CSV escape character of its text COPY.",
        disposition: Disposition::DoesNotApply(NO_CSV),
    },
    KeyDef {
        key: "yugabyte.copyReplace",
        kind: Kind::Bool,
        default: Dflt::Bool(false),
        meaning: "Rows already present are replaced (upsert) instead of failing the batch: on YugabyteDB COPY … WITH (REPLACE), or with ferry.writetimeColumn a staged INSERT … ON CONFLICT DO UPDATE that keeps a row already newer; on PostgreSQL always the staged upsert. Needs the target's primary key to be the source's.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.isolationLevel",
        kind: Kind::Enum(ISOLATION_LEVELS),
        default: Dflt::Str("READ_COMMITTED"),
        meaning: "Isolation level of the write transactions.",
        disposition: Disposition::DoesNotApply(
            "no effect: chunk transactions run at the server's default level; exactly-once rests on the chunk row's lock and the done mark committing with the rows, which hold at any level",
        ),
    },
    KeyDef {
        key: "yugabyte.autoCommit",
        kind: Kind::Bool,
        default: Dflt::None,
        meaning: "pgJDBC: commit after every statement.",
        disposition: Disposition::DoesNotApply(
            "ferry always commits a batch's rows and its progress mark in one transaction; autocommit would break exactly-once resume",
        ),
    },
    KeyDef {
        key: "yugabyte.disableTransactionalWrites",
        kind: Kind::Bool,
        default: Dflt::Bool(false),
        meaning: "YugabyteDB only: SET yb_disable_transactional_writes = on for faster bulk writes without rollback; no effect on PostgreSQL (noted at the start of a run).",
        disposition: Disposition::Used,
    },
    // TLS to the target: libpq's sslmode meanings under the YugabyteDB JDBC driver's property
    // names (ssl, sslmode, sslrootcert, sslcert, sslkey, sslpassword — pgJDBC's PGProperty).
    KeyDef {
        key: "yugabyte.sslmode",
        kind: Kind::Enum(SSL_MODES),
        default: Dflt::Str("prefer"),
        meaning: "TLS to the target, with libpq's meanings: `disable` (clear text); `allow` and `prefer` (TLS when the server offers it, its certificate unchecked; ferry tries TLS first for both); `require` (TLS, certificate unchecked — unless yugabyte.sslrootcert is set, then checked as in verify-ca, as libpq does); `verify-ca` (TLS, the certificate must chain to yugabyte.sslrootcert); `verify-full` (verify-ca, and the host name or IP address ferry dials must be in the certificate: what a managed YugabyteDB wants). Applies to every target connection (migrate, plan, status, validate, diagnose).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.ssl",
        kind: Kind::Bool,
        default: Dflt::None,
        meaning: "The JDBC drivers' switch: with yugabyte.sslmode unset, true means sslmode=verify-full and false means sslmode=disable; yugabyte.sslmode wins when both are set.",
        disposition: Disposition::MappedOnto("yugabyte.sslmode"),
    },
    KeyDef {
        key: "yugabyte.sslrootcert",
        kind: Kind::Path,
        default: Dflt::None,
        meaning: "The CA certificate(s) the target's certificate must chain to: a PEM file (YugabyteDB Aeon's root.crt), or PKCS#12 opened with yugabyte.sslpassword. Needed by verify-ca and verify-full.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.sslcert",
        kind: Kind::Path,
        default: Dflt::None,
        meaning: "Client certificate for mutual TLS (a server with `clientcert=verify-full`, whose CN must be yugabyte.username): PEM with yugabyte.sslkey, or one PKCS#12 key store holding certificate and key (password yugabyte.sslpassword).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.sslkey",
        kind: Kind::Path,
        default: Dflt::None,
        meaning: "Private key of yugabyte.sslcert: unencrypted PEM (PKCS#8, PKCS#1 or SEC1). As in pgJDBC, a PKCS#12 file here (with yugabyte.sslcert unset) carries certificate and key together.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.sslpassword",
        kind: Kind::Secret,
        default: Dflt::None,
        meaning: "Password of a PKCS#12 file named by yugabyte.sslcert, yugabyte.sslkey or yugabyte.sslrootcert.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "yugabyte.sslfactory",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "pgJDBC: a Java SSLSocketFactory class.",
        disposition: Disposition::DoesNotApply(NO_JAVA_SSL_CLASS),
    },
    KeyDef {
        key: "yugabyte.sslhostnameverifier",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "pgJDBC: a Java HostnameVerifier class.",
        disposition: Disposition::DoesNotApply(NO_JAVA_SSL_CLASS),
    },
    // ---------------------------------------------------------------- table
    KeyDef {
        key: "table.source.keyspace",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Keyspace of the source table; with table.source.table it names the one table to migrate (the command line may name others).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.source.table",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Source table name.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.target.schema",
        kind: Kind::Name,
        default: Dflt::Str("public"),
        meaning: "Target schema.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.target.table",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Target table name; unset means the same as the source table.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.columnMapping.<source_column>",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Writes source column `<source_column>` into the target column named by the value; unmapped columns keep their names.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.primaryKey",
        kind: Kind::NameList,
        default: Dflt::None,
        meaning: "Target primary key columns, comma-separated; unset takes the source's partition key and clustering columns.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.validate",
        kind: Kind::Bool,
        default: Dflt::Bool(true),
        meaning: "Whether this table takes part in validation when migration.validation.enabled is true.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.constantColumns.names",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "Target columns not in the source that get the same value on every row, split with table.constantColumns.splitRegex.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.constantColumns.values",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "Their values in the same order, as text the target column type accepts; CURRENTTIMESTAMP or CURRENT_TIMESTAMP is the run's start time.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "table.constantColumns.splitRegex",
        kind: Kind::Regex,
        default: Dflt::Str(","),
        meaning: "Regular expression separating the names and values (in a .properties file write `\\\\|` for a literal `|`).",
        disposition: Disposition::Used,
    },
    // ---------------------------------------------------------------- migration
    KeyDef {
        key: "migration.checkpoint.enabled",
        kind: Kind::Bool,
        default: Dflt::Bool(true),
        meaning: "Keep progress in the target so that rerunning the same command resumes; false starts over on every run.",
        disposition: Disposition::DoesNotApply(
            "no effect: progress is always kept in the target, since exactly-once depends on it; `ferry migrate --fresh` starts over",
        ),
    },
    KeyDef {
        key: "migration.checkpoint.keyspace",
        kind: Kind::Name,
        default: Dflt::Str("ferry"),
        meaning: "Schema in the target database holding ferry's plan, chunk leases and progress marks.",
        disposition: Disposition::MappedOnto("the target schema of ferry's progress tables"),
    },
    KeyDef {
        key: "migration.checkpoint.interval",
        kind: Kind::Int {
            min: 1,
            max: 10_000_000,
            unit: "rows",
        },
        default: Dflt::None,
        meaning: "Most rows between two progress marks; a batch closes at the smaller of this and yugabyte.copyFlushEvery.",
        disposition: Disposition::MappedOnto(
            "a ceiling on batch size: ferry marks progress in the same transaction as every batch",
        ),
    },
    KeyDef {
        key: "migration.runId",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Name of this run in the progress tables; unset derives it from the source and target tables, so rerunning the same command resumes.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "migration.prevRunId",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Resume the progress of this earlier run id; unset or 0 means none.",
        disposition: Disposition::DoesNotApply(
            "no effect: a rerun of the same command resumes its own run (migration.runId)",
        ),
    },
    KeyDef {
        key: "migration.validation.enabled",
        kind: Kind::Bool,
        default: Dflt::Bool(false),
        meaning: "Validate source against target after the migration (as ferry validate does).",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "migration.validation.sampleSize",
        kind: Kind::Int {
            min: 0,
            max: 1_000_000_000,
            unit: "rows",
        },
        default: Dflt::Int(0),
        meaning: "Rows per table compared in sample mode; 0 compares every row (full mode).",
        disposition: Disposition::Used,
    },
    // ---------------------------------------------------------------- Spark (the seed's job)
    KeyDef {
        key: "spark.default.parallelism",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: default number of partitions.",
        disposition: Disposition::MappedOnto(
            "ferry's concurrency ceiling (chunks read and written at once) unless ferry.maxParallelChunks is set",
        ),
    },
    KeyDef {
        key: "spark.executor.instances",
        kind: Kind::Int {
            min: 1,
            max: 10_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: number of executors.",
        disposition: Disposition::MappedOnto(
            "ferry's concurrency ceiling as spark.executor.instances × spark.executor.cores task slots, when neither ferry.maxParallelChunks nor spark.default.parallelism is set",
        ),
    },
    KeyDef {
        key: "spark.executor.cores",
        kind: Kind::Int {
            min: 1,
            max: 1_024,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: task slots per executor.",
        disposition: Disposition::MappedOnto(
            "ferry's concurrency ceiling as spark.executor.instances × spark.executor.cores task slots, when neither ferry.maxParallelChunks nor spark.default.parallelism is set",
        ),
    },
    KeyDef {
        key: "spark.executor.memory",
        kind: Kind::SparkSize,
        default: Dflt::None,
        meaning: "Spark: executor heap.",
        disposition: Disposition::DoesNotApply(NO_JVM_MEMORY),
    },
    KeyDef {
        key: "spark.executor.memoryOverhead",
        kind: Kind::SparkSize,
        default: Dflt::None,
        meaning: "Spark: executor off-heap allowance.",
        disposition: Disposition::DoesNotApply(NO_JVM_MEMORY),
    },
    KeyDef {
        key: "spark.driver.memory",
        kind: Kind::SparkSize,
        default: Dflt::None,
        meaning: "Spark: driver heap.",
        disposition: Disposition::DoesNotApply(NO_JVM_MEMORY),
    },
    KeyDef {
        key: "spark.sql.shuffle.partitions",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: partitions after a shuffle.",
        disposition: Disposition::DoesNotApply(
            "ferry never shuffles: rows go from a token-range scan straight to a COPY stream",
        ),
    },
    KeyDef {
        key: "spark.memory.fraction",
        kind: Kind::Float { min: 0.0, max: 1.0 },
        default: Dflt::None,
        meaning: "Spark: heap share for execution and storage.",
        disposition: Disposition::DoesNotApply(NO_JVM_MEMORY),
    },
    KeyDef {
        key: "spark.memory.storageFraction",
        kind: Kind::Float { min: 0.0, max: 1.0 },
        default: Dflt::None,
        meaning: "Spark: storage share of that heap.",
        disposition: Disposition::DoesNotApply(NO_JVM_MEMORY),
    },
    KeyDef {
        key: "spark.task.maxFailures",
        kind: Kind::Int {
            min: 1,
            max: 1_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: attempts of one task before the job fails.",
        disposition: Disposition::DoesNotApply(
            "no effect: ferry retries a chunk for as long as its failure is retryable (a lost connection, a timeout, an unavailable replica), up to ferry.outageDeadlineSecs; a failure no retry fixes stops the run at once",
        ),
    },
    KeyDef {
        key: "spark.stage.maxConsecutiveAttempts",
        kind: Kind::Int {
            min: 1,
            max: 1_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: attempts of a stage before the job fails.",
        disposition: Disposition::DoesNotApply(
            "ferry has no stages; chunk attempts follow spark.task.maxFailures",
        ),
    },
    KeyDef {
        key: "spark.network.timeout",
        kind: Kind::SparkDuration,
        default: Dflt::None,
        meaning: "Spark: default timeout of its internal network calls.",
        disposition: Disposition::DoesNotApply(
            "ferry has no driver/executor traffic; its timeouts are per side (cassandra.readTimeoutMs, yugabyte.socketTimeout) and ferry.outageDeadlineSecs",
        ),
    },
    KeyDef {
        key: "spark.serializer",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Spark: JVM serializer class.",
        disposition: Disposition::DoesNotApply(
            "ferry has no JVM serializer: CQL bytes are transcoded to COPY bytes directly",
        ),
    },
    KeyDef {
        key: "spark.dynamicAllocation.enabled",
        kind: Kind::Bool,
        default: Dflt::None,
        meaning: "Spark: grow and shrink the executor count.",
        disposition: Disposition::DoesNotApply(NO_DYNAMIC_ALLOCATION),
    },
    KeyDef {
        key: "spark.dynamicAllocation.minExecutors",
        kind: Kind::Int {
            min: 0,
            max: 10_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: fewest executors.",
        disposition: Disposition::DoesNotApply(NO_DYNAMIC_ALLOCATION),
    },
    KeyDef {
        key: "spark.dynamicAllocation.maxExecutors",
        kind: Kind::Int {
            min: 0,
            max: 10_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: most executors.",
        disposition: Disposition::DoesNotApply(NO_DYNAMIC_ALLOCATION),
    },
    KeyDef {
        key: "spark.dynamicAllocation.initialExecutors",
        kind: Kind::Int {
            min: 0,
            max: 10_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Spark: executors at start.",
        disposition: Disposition::DoesNotApply(NO_DYNAMIC_ALLOCATION),
    },
    KeyDef {
        key: "spark.locality.wait",
        kind: Kind::SparkDuration,
        default: Dflt::None,
        meaning: "Spark: how long to wait for a data-local task slot.",
        disposition: Disposition::DoesNotApply(
            "ferry sends each token range's reads to its replicas directly; there is no scheduler to wait on",
        ),
    },
    KeyDef {
        key: "spark.executor.heartbeatInterval",
        kind: Kind::SparkDuration,
        default: Dflt::None,
        meaning: "Spark: executor heartbeat to the driver.",
        disposition: Disposition::DoesNotApply(
            "ferry has no driver; a worker's chunk lease is a row lock its own transaction holds in the target",
        ),
    },
    KeyDef {
        key: "spark.sql.adaptive.enabled",
        kind: Kind::Bool,
        default: Dflt::None,
        meaning: "Spark: adaptive query execution.",
        disposition: Disposition::DoesNotApply(NO_SPARK_SQL),
    },
    KeyDef {
        key: "spark.sql.adaptive.coalescePartitions.enabled",
        kind: Kind::Bool,
        default: Dflt::None,
        meaning: "Spark: merge small shuffle partitions.",
        disposition: Disposition::DoesNotApply(NO_SPARK_SQL),
    },
    KeyDef {
        key: "spark.<any_other>",
        kind: Kind::Text,
        default: Dflt::None,
        meaning: "Any other Spark setting (a key within two edits of a listed one is an error instead, as it is likely a typo).",
        disposition: Disposition::DoesNotApply("a Spark setting ferry has no counterpart for"),
    },
    // ---------------------------------------------------------------- ferry's own
    KeyDef {
        key: "ferry.maxParallelChunks",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
            unit: "",
        },
        default: Dflt::None,
        meaning: "Chunks this process reads and writes at once (its workers; bounded by yugabyte.maxPoolSize per target host and cassandra.concurrentReads): fixed with ferry.adaptiveConcurrency=false, else where the adaptation starts; unset takes spark.default.parallelism, else spark.executor.instances × spark.executor.cores, else 16.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.remoteDcReads",
        kind: Kind::Bool,
        default: Dflt::Bool(false),
        meaning: "With cassandra.localDC set: when all of a range's replicas in the local data center are down, read it from another data center's (every such page crosses the WAN). Off: such a range waits for a local replica.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.outageDeadlineSecs",
        kind: Kind::Int {
            min: 1,
            max: 86_400,
            unit: "s",
        },
        default: Dflt::Int(300),
        meaning: "When the source or target stays unreachable this long, the run stops with a clear error and a resumable state.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.sourceLatencyTargetMs",
        kind: Kind::Int {
            min: 1,
            max: 600_000,
            unit: "ms",
        },
        default: Dflt::None,
        meaning: "Keep the 99th percentile of ferry's own Cassandra page reads under this, so a production source stays responsive for its applications: the adaptive controller (ferry.adaptiveConcurrency) lowers the chunks in flight by a quarter after a 2 s window whose p99 is over it (down to one chunk; without a target the floor is a quarter of the start), and does not raise them while the p99 is within 80% of it; it still maximises the rate under that bound. Unset: no bound. Across a WAN the round trip is part of every read: set it above it.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.adaptiveConcurrency",
        kind: Kind::Bool,
        default: Dflt::Bool(true),
        meaning: "Adapt the chunks in flight to the measured throughput: start at the parallelism setting (ferry.maxParallelChunks, else the Spark keys, else 16), or, for a run of several tables, half as many more when the source's measured round trip is 20 ms or more and ferry.sourceLatencyTargetMs is unset (a WAN: 16 starts at 24), add workers while each step raises the rate (latency hiding across a WAN), step back when it does not, probe fewer now and then, back off on errors; never above the target hosts × yugabyte.maxPoolSize, cassandra.concurrentReads, or 48 (or the start, if higher). false keeps the start fixed.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.pageMemoryMb",
        kind: Kind::Int {
            min: 4,
            max: 65_536,
            unit: "MiB",
        },
        default: Dflt::Int(128),
        meaning: "Most memory the pages in flight may take, over all workers (a page is sized to its worker's share: fetched, being encoded and being sent). Across a WAN the pages hide the round trip and all of it is used; with a source under 50 ms away a share in step with the round trip is (on loopback 16 MiB, or a third if that is less), as more reads no faster there.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.largePartitionRows",
        kind: Kind::Int {
            min: 0,
            max: 2_000_000_000,
            unit: "rows",
        },
        default: Dflt::Int(100_000),
        meaning: "A partition with at least this many rows is split into clustering-key ranges read concurrently (a token range cannot split one partition, so it would otherwise be read one page per round trip). Candidates are the partitions that fill a quarter of the sizing sample (cassandra.inputSplitSizeMb.autoDetermine, the default); their clustering keys are read (keys only, large pages) to count the rows and place the boundaries. 0 turns splitting off.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.writetimeColumn",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Target column (timestamptz) that receives each row's Cassandra write time: the largest MAXWRITETIME over its regular and static columns (every element of a non-frozen collection, counters too), microseconds kept; null for a row with none of them set (a table of key columns only). With it, upserts (catch-up, yugabyte.copyReplace) replace a target row only with a newer write (validate --repair replaces it whatever its time). --create-tables adds it. Unset: not carried.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.expiresColumn",
        kind: Kind::Name,
        default: Dflt::None,
        meaning: "Target column (timestamptz) that receives when the row expires: the coordinator's time as it ran the read (currentTimestamp(), selected beside the TTLs) plus the largest remaining TTL over its set single-cell regular and static columns (whole seconds, as Cassandra's TTL() gives them; non-frozen collections' TTLs are not counted); null when any of them has no TTL (the row never expires). Rows already expired are not copied; validate treats a target row past this time as absent. --create-tables adds it. Unset: not carried.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.clockSkewSecs",
        kind: Kind::Int {
            min: 0,
            max: 86_400,
            unit: "s",
        },
        default: Dflt::Int(5),
        meaning: "Catch-up (ferry migrate --since): rows written up to this long before the given time are copied too, for clocks (the writers', Cassandra's, ferry's) that disagree.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.leaseSecs",
        kind: Kind::Int {
            min: 2,
            max: 3_600,
            unit: "s",
        },
        default: Dflt::Int(30),
        meaning: "A chunk's lease is a row lock held by the worker's open transaction: a killed worker's chunks return at once (its connection closes); one that vanishes without closing it (host lost) frees them after about this long, as the target's TCP keepalive probes give up.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.runsDir",
        kind: Kind::Path,
        default: Dflt::Str("runs"),
        meaning: "Directory for run records (JSON), relative to the working directory.",
        disposition: Disposition::Used,
    },
    KeyDef {
        key: "ferry.rejectFile",
        kind: Kind::Path,
        default: Dflt::None,
        meaning: "JSON-lines file of rows that cannot be written, with the reason; unset writes `<run id>.rejects.jsonl` in ferry.runsDir.",
        disposition: Disposition::Used,
    },
];

/// The registry entry for `key`: an exact entry wins over a pattern.
pub fn lookup(key: &str) -> Option<&'static KeyDef> {
    KEYS.iter()
        .find(|d| d.prefix().is_none() && d.key == key)
        .or_else(|| KEYS.iter().find(|d| d.matches(key)))
}

/// The registry entry of an exact key; for code that names keys it knows exist.
pub(crate) fn def(key: &str) -> &'static KeyDef {
    match KEYS.iter().find(|d| d.key == key) {
        Some(d) => d,
        None => panic!("config key {key} is not in the registry"),
    }
}

/// The known key closest to `key` if it is close enough to be a likely typo.
///
/// Pattern entries are compared as their prefix plus the part of `key` after the same number of
/// dots, so `table.columMapping.acct` suggests `table.columnMapping.acct`. The `spark.<any_other>`
/// catch-all is never suggested.
pub fn closest_key(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let mut best: Option<(usize, String)> = None;
    for d in KEYS {
        let candidate = match d.prefix() {
            Some("spark.") => continue,
            Some(p) => {
                let dots = p.matches('.').count();
                match key.splitn(dots + 1, '.').nth(dots) {
                    Some(rest) if !rest.is_empty() => format!("{p}{rest}"),
                    _ => format!("{p}{}", &d.key[p.len()..]),
                }
            }
            None => d.key.to_string(),
        };
        let dist = edit_distance(&lower, &candidate.to_ascii_lowercase());
        if best.as_ref().is_none_or(|(b, _)| dist < *b) {
            best = Some((dist, candidate));
        }
    }
    // A third of the key's length (at least 2, at most 6) keeps suggestions plausible.
    let limit = (key.chars().count() / 3).clamp(2, 6);
    best.filter(|(d, _)| *d <= limit).map(|(_, k)| k)
}

/// Distance of `key` to the nearest listed `spark.*` key, to tell a typo from an unknown setting.
pub fn distance_to_listed_spark_key(key: &str) -> Option<(usize, &'static str)> {
    KEYS.iter()
        .filter(|d| d.prefix().is_none() && d.key.starts_with("spark."))
        .map(|d| (edit_distance(key, d.key), d.key))
        .min()
}

/// Optimal-string-alignment distance (Damerau–Levenshtein with adjacent transpositions): the
/// number of single-character insertions, deletions, substitutions and swaps from `a` to `b`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows suffice: the transposition looks two rows back.
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Human description of what a kind accepts, for errors and docs.
pub fn describe_kind(kind: &Kind) -> String {
    match kind {
        Kind::Text => "text".into(),
        Kind::Name => "a name without spaces".into(),
        Kind::NameList => "comma-separated names".into(),
        Kind::Path => "a file path".into(),
        Kind::Secret => "secret text".into(),
        Kind::Bool => "true or false".into(),
        Kind::Int { min, max, unit } => {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            format!("a whole number from {min} to {max}{unit}")
        }
        Kind::Float { min, max } => format!("a number from {min} to {max}"),
        Kind::SparkDuration => "a duration such as 800s, 500ms or 5min".into(),
        Kind::SparkSize => "a size such as 512m or 8g".into(),
        Kind::Hosts => "comma-separated host or host:port".into(),
        Kind::Enum(values) => format!("one of {}", values.join(", ")),
        Kind::Regex => "a regular expression".into(),
    }
}

/// An example of a valid value, used in the fix part of error messages.
pub fn example_value(def: &KeyDef) -> String {
    match (def.default, def.kind) {
        (_, Kind::Secret) => "…".into(),
        (Dflt::Int(n), _) => n.to_string(),
        (Dflt::Bool(b), _) => b.to_string(),
        (Dflt::Str(s), _) => s.to_string(),
        (Dflt::Float(f), _) => f.to_string(),
        (Dflt::None, Kind::Int { min, max, .. }) => ((min + max) / 2).max(min).to_string(),
        (Dflt::None, Kind::Float { min, max }) => ((min + max) / 2.0).to_string(),
        (Dflt::None, Kind::Bool) => "true".into(),
        (Dflt::None, Kind::Enum(values)) => values[0].into(),
        (Dflt::None, Kind::Hosts) => "10.0.0.1,10.0.0.2:9042".into(),
        (Dflt::None, Kind::SparkDuration) => "60s".into(),
        (Dflt::None, Kind::SparkSize) => "4g".into(),
        (Dflt::None, Kind::NameList) => "a,b".into(),
        (Dflt::None, Kind::Path) => "path/to/file".into(),
        (Dflt::None, Kind::Regex) => ",".into(),
        (Dflt::None, Kind::Name | Kind::Text) => "name".into(),
    }
}

fn describe_default(def: &KeyDef) -> String {
    match def.default {
        Dflt::None => "unset".into(),
        Dflt::Bool(b) => format!("`{b}`"),
        Dflt::Int(n) => format!("`{n}`"),
        Dflt::Float(f) => format!("`{f}`"),
        Dflt::Str(s) => format!("`{s}`"),
    }
}

fn describe_disposition(d: &Disposition) -> String {
    match d {
        Disposition::Used => "used".into(),
        Disposition::MappedOnto(what) => format!("mapped onto {what}"),
        Disposition::DoesNotApply(why) => format!("does not apply: {why}"),
    }
}

const SECTIONS: &[(&str, &str)] = &[
    ("cassandra.", "Source: Cassandra (`cassandra.*`)"),
    (
        "yugabyte.",
        "Target: YugabyteDB or PostgreSQL (`yugabyte.*`)",
    ),
    ("table.", "Table (`table.*`)"),
    ("migration.", "Migration run (`migration.*`)"),
    ("spark.", "The seed's Spark job (`spark.*`)"),
    ("ferry.", "ferry's own keys (`ferry.*`)"),
];

/// Markdown table cells cannot hold a bare `|` or a newline.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `docs/configuration.md`, generated from [`KEYS`].
pub fn markdown_reference() -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from crates/migrate/src/config/registry.rs by config::markdown_reference(); \
         do not edit. Regenerate: FERRY_UPDATE_DOCS=1 cargo test -p ferry-migrate config -->\n\n",
    );
    out.push_str("# ferry configuration reference\n\n");
    out.push_str(
        "ferry reads the seed Spark job's `migration.properties` as it is. Every key it accepts is \
         listed below with its type and range, its default, its meaning, and what ferry does with \
         it:\n\n\
         - **used**: ferry uses the key with the meaning given;\n\
         - **mapped onto**: a Spark or JDBC key whose intent ferry carries over onto one of its own \
         settings;\n\
         - **does not apply**: the key has no counterpart in ferry; when it is set, ferry says so \
         once, with the reason, and goes on.\n\n\
         ## How values are read\n\n\
         - The file is a Java `.properties` file read as UTF-8. A key set twice takes the last \
         value (ferry notes it).\n\
         - An empty value (`cassandra.username=`) means unset: the default applies.\n\
         - Values are trimmed of surrounding spaces, except passwords.\n\
         - `--set key=value` (repeatable) overrides the file, with the same validation.\n\
         - The environment variables `FERRY_CASSANDRA_PASSWORD` and `FERRY_YUGABYTE_PASSWORD` \
         override `cassandra.password` and `yugabyte.password` (they win over `--set` too). \
         Prefer them to writing passwords in the file: a password never appears in ferry's \
         output, errors or run records.\n\
         - An unknown key is an error naming the closest known key; a value of the wrong type or \
         out of range is an error naming the key, the accepted range and an example. All errors \
         are reported together, one line each.\n\n",
    );
    for (prefix, title) in SECTIONS {
        let _ = writeln!(out, "## {title}\n");
        out.push_str("| Key | Accepts | Default | Meaning | ferry |\n|---|---|---|---|---|\n");
        for d in KEYS.iter().filter(|d| d.key.starts_with(prefix)) {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                d.key,
                cell(&describe_kind(&d.kind)),
                cell(&describe_default(d)),
                cell(d.meaning),
                cell(&describe_disposition(&d.disposition)),
            );
        }
        out.push('\n');
        if *prefix == "yugabyte." {
            out.push_str(TARGET_TLS_EXAMPLE);
        }
    }
    out
}

/// The target's TLS settings in use, after the target's table in the reference.
const TARGET_TLS_EXAMPLE: &str = "\
### TLS to the target

A managed YugabyteDB (and any PostgreSQL with `hostssl` rules) wants `verify-full`: TLS, the \
server's certificate signed by the CA you downloaded, and the name or address ferry dials listed \
in it. With a client certificate (`clientcert=verify-full` on the server, CN = the user):

```properties
yugabyte.host=db1.example.com:5433,db2.example.com:5433
yugabyte.sslmode=verify-full
yugabyte.sslrootcert=/etc/ferry/root.crt
# mutual TLS only: PEM certificate and key ...
yugabyte.sslcert=/etc/ferry/client.crt
yugabyte.sslkey=/etc/ferry/client.key
# ... or one PKCS#12 key store instead (pgJDBC's spelling), opened with its password
# yugabyte.sslkey=/etc/ferry/client.p12
# yugabyte.sslpassword=changeit
```

Every target connection (migrate, plan, status, validate, diagnose, `bench postgres`) goes \
through the same settings. A refused handshake stops ferry before anything is written, with one \
line naming the endpoint and the fix (an untrusted certificate by subject and issuer, a name \
mismatch, an expiry date, a server that requires TLS or offers none, a refused client \
certificate). `ferry diagnose` shows per endpoint the protocol, cipher, the certificate's \
subject, issuer and days to expiry (under 14 is a warning), and the round trips TLS adds to a \
login.

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("fetchSizeInRow", "fetchSizeInRows"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("cassnadra", "cassandra"), 1);
    }

    #[test]
    fn every_key_is_in_a_section_and_listed_once() {
        for d in KEYS {
            assert!(
                SECTIONS.iter().any(|(p, _)| d.key.starts_with(p)),
                "{} has no docs section",
                d.key
            );
            assert_eq!(
                KEYS.iter().filter(|e| e.key == d.key).count(),
                1,
                "{} listed twice",
                d.key
            );
            assert!(d.meaning.ends_with('.'), "{}: meaning is a sentence", d.key);
        }
    }

    #[test]
    fn exact_keys_win_over_patterns() {
        assert_eq!(lookup("spark.serializer").unwrap().key, "spark.serializer");
        assert_eq!(lookup("spark.foo.bar").unwrap().key, "spark.<any_other>");
        assert_eq!(
            lookup("table.columnMapping.acct").unwrap().key,
            "table.columnMapping.<source_column>"
        );
        assert!(lookup("table.columnMapping.").is_none());
        assert!(lookup("cassandra.nope").is_none());
    }

    #[test]
    fn closest_key_suggests_typos_and_pattern_keys() {
        assert_eq!(
            closest_key("cassandra.fetchSizeInRow").as_deref(),
            Some("cassandra.fetchSizeInRows")
        );
        assert_eq!(
            closest_key("yugabyte.loadbalancehosts").as_deref(),
            Some("yugabyte.loadBalanceHosts")
        );
        assert_eq!(
            closest_key("table.columMapping.acct_nbr").as_deref(),
            Some("table.columnMapping.acct_nbr")
        );
        assert_eq!(closest_key("completely.different.thing"), None);
    }
}
