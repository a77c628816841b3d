//! What went wrong on which side, and whether another attempt can fix it. Every failure the
//! run loop sees on either side is classified here, from the driver's error kind (Cassandra)
//! or the SQLSTATE class (PostgreSQL / YugabyteDB), never from message text.
//!
//! Architecture invariant: the default is *not retryable*. Only what another attempt can fix
//! is retried (a lost connection, a timeout, a serialization failure, a server shutting down,
//! an unavailable or overloaded replica); a permission, a credential, a missing column or
//! table, bad data or a constraint stops the run at once, with one line naming the side, the
//! endpoint and the cause.

use std::fmt;

use scylla::errors::{DbError, ExecutionError, RequestAttemptError};

/// Which side of the migration a node or an error belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Cassandra.
    Source,
    /// PostgreSQL / YugabyteDB.
    Target,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    /// The side as an error line names it.
    fn product(self) -> &'static str {
        match self {
            Side::Source => "the source (Cassandra)",
            Side::Target => "the target",
        }
    }
}

/// What kind of failure an error is. [`ErrorKind::retryable`] decides what the run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The connection broke or could not be made (SQLSTATE class 08, reset, refused, EOF).
    ConnectionLost,
    /// A read or write timed out (the driver's or the server's; SQLSTATE 57014).
    Timeout,
    /// Not enough replicas alive for the consistency level (Cassandra).
    Unavailable,
    /// The server is overloaded, bootstrapping or out of connections (SQLSTATE 53300).
    Overloaded,
    /// A transaction lost a conflict (SQLSTATE 40001, 40P01).
    Serialization,
    /// The server is shutting down or restarting (SQLSTATE 57P01, 57P02, 57P03).
    ShuttingDown,
    /// Credentials refused (SQLSTATE class 28; Cassandra's authentication error).
    Authentication,
    /// A privilege is missing (SQLSTATE 42501; Cassandra's unauthorized).
    Permission,
    /// A column, table or schema the statement names does not exist (SQLSTATE 42703, 42P01,
    /// 3F000).
    UndefinedObject,
    /// A value the server refuses (SQLSTATE class 22).
    InvalidData,
    /// A constraint refused a row (SQLSTATE class 23).
    Constraint,
    /// A statement the server refuses (the rest of SQLSTATE class 42; Cassandra's syntax and
    /// invalid-request errors).
    Statement,
    /// A TLS handshake or certificate refused.
    Tls,
    /// Anything else: not retried.
    Other,
}

impl ErrorKind {
    /// Whether another attempt (maybe on another node, after a backoff) can succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectionLost
                | ErrorKind::Timeout
                | ErrorKind::Unavailable
                | ErrorKind::Overloaded
                | ErrorKind::Serialization
                | ErrorKind::ShuttingDown
        )
    }

    /// A few words for an error line.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::ConnectionLost => "connection lost",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Unavailable => "replicas unavailable",
            ErrorKind::Overloaded => "server overloaded",
            ErrorKind::Serialization => "transaction conflict",
            ErrorKind::ShuttingDown => "server shutting down",
            ErrorKind::Authentication => "credentials refused",
            ErrorKind::Permission => "permission denied",
            ErrorKind::UndefinedObject => "a column or table does not exist",
            ErrorKind::InvalidData => "a value was refused",
            ErrorKind::Constraint => "a constraint refused a row",
            ErrorKind::Statement => "a statement was refused",
            ErrorKind::Tls => "TLS refused",
            ErrorKind::Other => "failed",
        }
    }

    /// What the user does about a fatal error of this kind.
    fn fix(self, side: Side) -> &'static str {
        match (self, side) {
            (ErrorKind::Permission, Side::Target) => {
                "grant the privilege to the role yugabyte.username names"
            }
            (ErrorKind::Permission, Side::Source) => {
                "grant SELECT to the role cassandra.username names"
            }
            (ErrorKind::Authentication, Side::Target) => {
                "check yugabyte.username and the password (FERRY_YUGABYTE_PASSWORD)"
            }
            (ErrorKind::Authentication, Side::Source) => {
                "check cassandra.username and the password (FERRY_CASSANDRA_PASSWORD)"
            }
            (ErrorKind::UndefinedObject, _) => {
                "the table changed during the run: restore the column or table (or start over \
                 with --fresh)"
            }
            (ErrorKind::Tls, _) => "check the TLS settings",
            _ => "fix the cause",
        }
    }

    /// Classifies a PostgreSQL / YugabyteDB error: SQLSTATE class first, then the driver's own
    /// failure (closed connection, I/O error kind).
    pub fn of_pg(e: &tokio_postgres::Error) -> ErrorKind {
        if let Some(code) = e.code() {
            return ErrorKind::of_sqlstate(code.code());
        }
        if e.is_closed() {
            return ErrorKind::ConnectionLost;
        }
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                return ErrorKind::of_io(io.kind());
            }
            if c.downcast_ref::<rustls::Error>().is_some() {
                return ErrorKind::Tls;
            }
            cause = c.source();
        }
        ErrorKind::Other
    }

    /// Classifies a SQLSTATE code (five characters).
    pub fn of_sqlstate(code: &str) -> ErrorKind {
        match code {
            "40001" | "40P01" => ErrorKind::Serialization,
            "57P01" | "57P02" | "57P03" => ErrorKind::ShuttingDown,
            "57014" => ErrorKind::Timeout,
            "53300" => ErrorKind::Overloaded,
            "42501" => ErrorKind::Permission,
            "42703" | "42P01" | "3F000" => ErrorKind::UndefinedObject,
            _ => match &code[..code.len().min(2)] {
                "08" => ErrorKind::ConnectionLost,
                "28" => ErrorKind::Authentication,
                "22" => ErrorKind::InvalidData,
                "23" => ErrorKind::Constraint,
                "42" => ErrorKind::Statement,
                _ => ErrorKind::Other,
            },
        }
    }

    /// Classifies an I/O error by its kind.
    pub fn of_io(kind: std::io::ErrorKind) -> ErrorKind {
        use std::io::ErrorKind as K;
        match kind {
            K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown => ErrorKind::ConnectionLost,
            _ => ErrorKind::Other,
        }
    }

    /// Classifies a Cassandra driver error by its kind.
    pub fn of_cql(e: &ExecutionError) -> ErrorKind {
        use RequestAttemptError as A;
        match e {
            ExecutionError::RequestTimeout(_) => ErrorKind::Timeout,
            ExecutionError::EmptyPlan | ExecutionError::ConnectionPoolError(_) => {
                ErrorKind::ConnectionLost
            }
            ExecutionError::LastAttemptError(a) => match a {
                A::DbError(db, _) => match db {
                    DbError::Unavailable { .. } => ErrorKind::Unavailable,
                    DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => {
                        ErrorKind::Timeout
                    }
                    DbError::Overloaded
                    | DbError::IsBootstrapping
                    | DbError::ServerError
                    | DbError::ReadFailure { .. }
                    | DbError::RateLimitReached { .. } => ErrorKind::Overloaded,
                    DbError::AuthenticationError => ErrorKind::Authentication,
                    DbError::Unauthorized => ErrorKind::Permission,
                    DbError::SyntaxError | DbError::Invalid | DbError::ConfigError => {
                        ErrorKind::Statement
                    }
                    _ => ErrorKind::Other,
                },
                A::BrokenConnectionError(_) | A::UnableToAllocStreamId => ErrorKind::ConnectionLost,
                _ => ErrorKind::Other,
            },
            _ => ErrorKind::Other,
        }
    }
}

/// A failure on one side: which side, which endpoint (a node's `host:port`), what ferry was
/// doing, the cause as the server or driver gave it, and its [`ErrorKind`]. Displays as one
/// line; a fatal one ends with what to do about it.
#[derive(Clone, Debug, thiserror::Error)]
pub struct SideError {
    pub side: Side,
    /// The node: `host:port`.
    pub endpoint: String,
    pub kind: ErrorKind,
    /// What ferry was doing, e.g. "copying chunk 3 of shop.orders".
    pub doing: String,
    /// The cause as the server or driver gave it (with the SQLSTATE on the target).
    pub cause: String,
}

impl SideError {
    /// A target error, classified by its SQLSTATE or the driver's failure.
    pub fn target(e: &tokio_postgres::Error, endpoint: &str, doing: impl Into<String>) -> Self {
        let cause = match e.as_db_error() {
            Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
            None => {
                // The driver's top-level text ("error communicating with the server") says
                // little; its cause says what happened.
                match std::error::Error::source(e) {
                    Some(c) => format!("{e}: {c}"),
                    None => e.to_string(),
                }
            }
        };
        SideError {
            side: Side::Target,
            endpoint: endpoint.to_string(),
            kind: ErrorKind::of_pg(e),
            doing: doing.into(),
            cause,
        }
    }

    /// A source error, classified by the driver's error kind.
    pub fn source(e: &ExecutionError, endpoint: &str, doing: impl Into<String>) -> Self {
        SideError {
            side: Side::Source,
            endpoint: endpoint.to_string(),
            kind: ErrorKind::of_cql(e),
            doing: doing.into(),
            cause: e.to_string(),
        }
    }

    /// Whether another attempt can succeed.
    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }
}

impl fmt::Display for SideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} failed while {}: {} — {}",
            self.side.product(),
            self.endpoint,
            self.doing,
            self.cause.replace('\n', " "),
            self.kind.describe()
        )?;
        if !self.retryable() {
            write!(
                f,
                ", not retried: {}, then rerun the same command to resume",
                self.kind.fix(self.side)
            )?;
        }
        Ok(())
    }
}

/// A target failure outside a chunk's copy (opening a connection, leasing, bookkeeping): the
/// driver error in `e`'s chain becomes a [`SideError`] naming the node; an error already worded
/// (a refused connection, a reply that never came) stays as it is.
pub fn target_failure(e: anyhow::Error, node: &str, doing: &str) -> anyhow::Error {
    if e.chain().any(|c| c.downcast_ref::<SideError>().is_some()) {
        return e;
    }
    match e
        .chain()
        .find_map(|c| c.downcast_ref::<tokio_postgres::Error>())
    {
        Some(pg) => SideError::target(pg, node, doing).into(),
        None => e,
    }
}

/// An error from connecting to a target node, already worded for the user (see
/// [`crate::sink`]), with its kind kept for the retry decision. It carries no `source()`, so
/// an error chain prints the line once.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{line}")]
pub struct ConnectError {
    pub line: String,
    pub kind: ErrorKind,
}

/// The kind of the first classified error in an `anyhow` chain ([`SideError`],
/// [`ConnectError`], a driver error); [`ErrorKind::Other`] when there is none.
pub fn kind_in(e: &anyhow::Error) -> ErrorKind {
    for c in e.chain() {
        if let Some(s) = c.downcast_ref::<SideError>() {
            return s.kind;
        }
        if let Some(s) = c.downcast_ref::<ConnectError>() {
            return s.kind;
        }
        if let Some(p) = c.downcast_ref::<tokio_postgres::Error>() {
            return ErrorKind::of_pg(p);
        }
        if let Some(q) = c.downcast_ref::<ExecutionError>() {
            return ErrorKind::of_cql(q);
        }
        // A page read that failed past the source's retry policy (its driver error sits boxed
        // inside, out of `downcast_ref`'s reach).
        if let Some(r) = c.downcast_ref::<crate::source::ReadError>() {
            return match r {
                crate::source::ReadError::Failed { source, .. } => ErrorKind::of_cql(source),
                // The replicas stayed down through the retry policy: the migration stops on it
                // at once (its line says to start the node), and so does everything else.
                crate::source::ReadError::Unavailable { .. }
                | crate::source::ReadError::Config { .. } => ErrorKind::Other,
            };
        }
    }
    ErrorKind::Other
}

/// The side of the first classified error in an `anyhow` chain, if any says.
pub fn side_in(e: &anyhow::Error) -> Option<Side> {
    e.chain().find_map(|c| {
        if let Some(s) = c.downcast_ref::<SideError>() {
            Some(s.side)
        } else if c.downcast_ref::<ExecutionError>().is_some()
            || c.downcast_ref::<crate::source::ReadError>().is_some()
        {
            Some(Side::Source)
        } else if c.downcast_ref::<tokio_postgres::Error>().is_some()
            || c.downcast_ref::<ConnectError>().is_some()
        {
            Some(Side::Target)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_classes_decide() {
        for (code, retry) in [
            ("40001", true),
            ("40P01", true),
            ("57P01", true),
            ("08006", true),
            ("08001", true),
            ("57014", true),
            ("53300", true),
            ("22001", false),
            ("22P02", false),
            ("23505", false),
            ("42501", false),
            ("42703", false),
            ("42P01", false),
            ("42601", false),
            ("28P01", false),
            ("28000", false),
            ("XX000", false),
            ("53100", false),
        ] {
            assert_eq!(
                ErrorKind::of_sqlstate(code).retryable(),
                retry,
                "SQLSTATE {code}"
            );
        }
        assert_eq!(ErrorKind::of_sqlstate("42501"), ErrorKind::Permission);
        assert_eq!(ErrorKind::of_sqlstate("42703"), ErrorKind::UndefinedObject);
        assert_eq!(ErrorKind::of_sqlstate("28P01"), ErrorKind::Authentication);
    }

    #[test]
    fn io_kinds_decide() {
        use std::io::ErrorKind as K;
        assert!(ErrorKind::of_io(K::ConnectionReset).retryable());
        assert!(ErrorKind::of_io(K::TimedOut).retryable());
        assert!(!ErrorKind::of_io(K::PermissionDenied).retryable());
        assert!(!ErrorKind::of_io(K::Other).retryable());
    }

    #[test]
    fn driver_errors_decide_by_kind() {
        use scylla::errors::BrokenConnectionErrorKind;
        let timeout = ExecutionError::RequestTimeout(std::time::Duration::from_secs(1));
        assert!(ErrorKind::of_cql(&timeout).retryable());
        let db = |e| {
            ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, "msg".to_string()))
        };
        assert!(!ErrorKind::of_cql(&db(DbError::Unauthorized)).retryable());
        assert!(!ErrorKind::of_cql(&db(DbError::AuthenticationError)).retryable());
        assert!(!ErrorKind::of_cql(&db(DbError::Invalid)).retryable());
        assert!(ErrorKind::of_cql(&db(DbError::Overloaded)).retryable());
        let broken = ExecutionError::LastAttemptError(RequestAttemptError::BrokenConnectionError(
            BrokenConnectionErrorKind::ChannelError.into(),
        ));
        assert!(ErrorKind::of_cql(&broken).retryable());
    }

    #[test]
    fn a_page_read_that_failed_is_classified_through_its_boxed_driver_error() {
        let read = |e| crate::source::ReadError::Failed {
            kind: crate::source::FailureKind::Timeout,
            start: 0,
            end: 1,
            table: "ks.t".into(),
            source: Box::new(e),
        };
        let timeout = anyhow::anyhow!(read(ExecutionError::RequestTimeout(
            std::time::Duration::from_secs(1)
        )))
        .context("chunk 2")
        .context("validating ks.t");
        assert_eq!(kind_in(&timeout), ErrorKind::Timeout);
        assert_eq!(side_in(&timeout), Some(Side::Source));
        let denied = anyhow::anyhow!(read(ExecutionError::LastAttemptError(
            RequestAttemptError::DbError(DbError::Unauthorized, "no".into())
        )));
        assert!(!kind_in(&denied).retryable());
    }

    #[test]
    fn a_fatal_error_is_one_line_naming_side_endpoint_and_cause() {
        let e = SideError {
            side: Side::Target,
            endpoint: "127.0.0.1:5433".into(),
            kind: ErrorKind::Permission,
            doing: "copying chunk 3 of ks.t".into(),
            cause: "permission denied for table t\n(SQLSTATE 42501)".into(),
        };
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        for part in [
            "the target",
            "127.0.0.1:5433",
            "permission denied",
            "not retried",
        ] {
            assert!(line.contains(part), "{line} lacks {part}");
        }
        assert!(!e.retryable());
    }
}
