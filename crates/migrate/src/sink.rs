//! The target: connections spread over every node, server facts (PostgreSQL or YugabyteDB),
//! node discovery through `yb_servers()`, and binary COPY of encoded batches.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::error::{ConnectError, ErrorKind};
use crate::schema::{pg_ident, TableMapping, TargetKind};
use crate::target_tls::TargetTls;
use crate::tls::session::TlsSession;

/// Where and how to reach the target database.
#[derive(Clone)]
pub struct TargetEndpoint {
    /// `(host, port)` of every node given by the user.
    pub hosts: Vec<(String, u16)>,
    pub database: String,
    pub username: String,
    pub password: Option<String>,
    pub connect_timeout_ms: u64,
    /// `yugabyte.socketTimeout`: data sent on a connection that stays unacknowledged this long
    /// (`TCP_USER_TIMEOUT`) fails the connection, as does a server that stops answering
    /// keepalive probes for about as long. `None`: the kernel's defaults (minutes).
    pub socket_timeout: Option<Duration>,
    /// Also use the nodes `yb_servers()` lists.
    pub load_balance: bool,
    /// `yugabyte.sslmode` and its files, already read: every connection goes through it.
    pub tls: TargetTls,
}

/// What opening one target connection took.
#[derive(Clone, Debug)]
pub struct ConnectInfo {
    /// TCP, TLS, startup and login together.
    pub connect_ms: f64,
    /// `None`: the connection is in clear text.
    pub tls: Option<TlsSession>,
}

impl std::fmt::Debug for TargetEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetEndpoint")
            .field("hosts", &self.hosts)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("socket_timeout", &self.socket_timeout)
            .field("load_balance", &self.load_balance)
            .field("tls", &self.tls)
            .finish()
    }
}

impl TargetEndpoint {
    fn config(&self, host: &str, port: u16) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(host)
            .port(port)
            .dbname(&self.database)
            .user(&self.username)
            .application_name("ferry")
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .ssl_mode(self.tls.pg_mode())
            .keepalives(true);
        if let Some(p) = &self.password {
            c.password(p);
        }
        if let Some(t) = self.socket_timeout {
            c.tcp_user_timeout(t)
                .keepalives_idle((t / 2).max(Duration::from_secs(1)))
                .keepalives_interval((t / 6).max(Duration::from_secs(1)))
                .keepalives_retries(3);
        }
        c
    }

    /// Opens one connection to `host:port`; the error names the node and what to check. Every
    /// target connection ferry opens comes through here (and [`Self::connect_observed`]).
    pub async fn connect(&self, host: &str, port: u16) -> Result<Client> {
        Ok(self.connect_observed(host, port).await?.0)
    }

    /// [`Self::connect`], also returning how long it took and what TLS negotiated.
    pub async fn connect_observed(&self, host: &str, port: u16) -> Result<(Client, ConnectInfo)> {
        let (tls, observed) = self.tls.connector();
        let started = std::time::Instant::now();
        let (client, conn) = match self.config(host, port).connect(tls).await {
            Ok(c) => c,
            Err(e) => {
                let at = format!("{host}:{port}");
                return Err(match self.tls.explain(&e, &observed, &at, &self.username) {
                    Some(line) => ConnectError {
                        line,
                        kind: ErrorKind::Tls,
                    }
                    .into(),
                    None => describe_connect_error(e, host, port, &self.database, &self.username),
                });
            }
        };
        let info = ConnectInfo {
            connect_ms: started.elapsed().as_secs_f64() * 1e3,
            tls: observed.session(),
        };
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((client, info))
    }
}

/// The one-line wording of a refused connection, with its kind kept for the retry decision (a
/// node that is down is retried; refused credentials are not).
fn describe_connect_error(
    e: tokio_postgres::Error,
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> anyhow::Error {
    let kind = ErrorKind::of_pg(&e);
    let line = if let Some(db_err) = e.as_db_error() {
        let code = db_err.code().code();
        let hint = match code {
            "28P01" | "28000" => {
                "check yugabyte.username and the password (FERRY_YUGABYTE_PASSWORD)"
            }
            "3D000" => "create the database or fix yugabyte.database",
            _ => "check the target's log",
        };
        format!(
            "target {host}:{port} refused the connection for user '{user}' to database '{db}': {} — {hint}",
            db_err.message()
        )
    } else {
        // The driver's own text ("error connecting to server") says little; its cause says what
        // happened (refused, timed out, reset).
        let cause = match std::error::Error::source(&e) {
            Some(c) => format!("{e}: {c}"),
            None => e.to_string(),
        };
        format!(
            "cannot connect to the target at {host}:{port} ({cause}) — check yugabyte.host/yugabyte.port and that the node is up"
        )
    };
    ConnectError { line, kind }.into()
}

/// What the target told us about itself.
#[derive(Clone, Debug)]
pub struct TargetFacts {
    pub kind: TargetKind,
    pub version: String,
    /// Every node to write to: the user's hosts, plus discovered ones when load balancing.
    pub nodes: Vec<(String, u16)>,
}

/// Connects to the first reachable host, reads `version()` and, with load balancing on, the
/// nodes `yb_servers()` lists.
pub async fn discover(ep: &TargetEndpoint) -> Result<TargetFacts> {
    Ok(discover_connected(ep).await?.0)
}

/// [`discover`], also handing back the connection it opened (a connection across a WAN costs
/// several round trips). Each query is sent with its types, in one round trip.
pub async fn discover_connected(ep: &TargetEndpoint) -> Result<(TargetFacts, Client)> {
    let mut last_err = None;
    for (host, port) in &ep.hosts {
        match ep.connect(host, *port).await {
            Ok(client) => {
                let row = client
                    .query_typed_one(
                        "SELECT version(), EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'yb_servers')",
                        &[],
                    )
                    .await
                    .context("reading version() from the target")?;
                let (version, has_fn): (String, bool) = (row.get(0), row.get(1));
                let mut nodes = ep.hosts.clone();
                // YugabyteDB (and the test bed's emulation) list the cluster's nodes.
                if ep.load_balance && has_fn {
                    for r in client
                        .query_typed(
                            "SELECT host, port FROM yb_servers() ORDER BY host, port",
                            &[],
                        )
                        .await
                        .context("reading yb_servers()")?
                    {
                        let node = (r.get::<_, String>(0), r.get::<_, i64>(1) as u16);
                        if !nodes.contains(&node) {
                            nodes.push(node);
                        }
                    }
                }
                let facts = TargetFacts {
                    kind: TargetKind::from_version(&version),
                    version,
                    nodes,
                };
                return Ok((facts, client));
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("yugabyte.host lists no host")))
}

/// Reads an existing target table's columns: name, `format_type`, and NOT NULL without default.
pub async fn existing_columns(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
    table: &str,
) -> Result<Option<Vec<(String, String, bool)>>> {
    let rows = client
        .query_typed(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.attnotnull AND NOT a.atthasdef \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[(&schema, Type::TEXT), (&table, Type::TEXT)],
        )
        .await
        .context("reading the target table's columns")?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
    ))
}

/// How batches are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertMode {
    /// `COPY … FROM STDIN (FORMAT binary)`: fastest; a duplicate key fails the batch.
    Copy,
    /// COPY into a temporary table, then `INSERT … ON CONFLICT DO NOTHING`: idempotent.
    Insert,
    /// A row already present is replaced: COPY into a temporary table, then
    /// `INSERT … ON CONFLICT (primary key) DO UPDATE` (with a write time column, only by a
    /// newer write); on YugabyteDB without a write time column, `COPY … WITH
    /// (REPLACE)`, which is the same thing in one statement.
    Upsert,
}

/// Write options (the upsert, and YugabyteDB's own, noted and left out on PostgreSQL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct YbOptions {
    /// Rows already present are replaced (upsert): `COPY … WITH (REPLACE)` on YugabyteDB, a
    /// staged `INSERT … ON CONFLICT DO UPDATE` on PostgreSQL.
    pub copy_replace: bool,
    /// `SET yb_disable_transactional_writes = on`.
    pub disable_transactional_writes: bool,
    /// `ROWS_PER_TRANSACTION n` (0 = one transaction per COPY).
    pub rows_per_transaction: Option<u64>,
}

impl YbOptions {
    /// What a YugabyteDB-only option does on another target: notes for the user, as each is
    /// left out there (the writes stay transactional, as PostgreSQL's always are).
    pub fn notes(&self, facts: &TargetFacts) -> Vec<String> {
        if facts.kind == TargetKind::YugabyteDb {
            return Vec::new();
        }
        let short = facts.version.split(" on ").next().unwrap_or(&facts.version);
        let mut notes = Vec::new();
        if self.disable_transactional_writes {
            notes.push(format!(
                "yugabyte.disableTransactionalWrites=true is YugabyteDB-only and has no effect on {short}: writes stay transactional"
            ));
        }
        if self.rows_per_transaction.is_some() {
            notes.push(format!(
                "COPY's ROWS_PER_TRANSACTION is YugabyteDB-only and has no effect on {short}"
            ));
        }
        notes
    }
}

/// How one table's rows are written: the COPY statement and what surrounds it in a chunk's
/// transaction.
pub struct TableWriter {
    pub copy_sql: String,
    pub mode: InsertMode,
    pub qualified: String,
    pub columns_sql: String,
    stage: String,
    /// The statement that moves staged rows into the table (INSERT and staged upserts).
    merge_sql: Option<String>,
    yb: YbOptions,
    kind: TargetKind,
}

impl TableWriter {
    /// `extra`: the target columns written after the source's (row times, then constants), in
    /// COPY order. `newer_only`: with upserts, the write time column that must not go back.
    pub fn new(
        mapping: &TableMapping,
        extra: &[String],
        mode: InsertMode,
        yb: YbOptions,
        kind: TargetKind,
        newer_only: Option<&str>,
    ) -> Self {
        let mut names: Vec<&str> = mapping
            .target_columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        names.extend(extra.iter().map(String::as_str));
        let cols: Vec<String> = names.iter().map(|c| pg_ident(c)).collect();
        let columns_sql = cols.join(", ");
        // On YugabyteDB, COPY's REPLACE is the upsert when no write time guards it.
        let replace = kind == TargetKind::YugabyteDb
            && ((yb.copy_replace && mode == InsertMode::Copy)
                || (mode == InsertMode::Upsert && newer_only.is_none()));
        let staged = match mode {
            InsertMode::Copy => false,
            InsertMode::Insert => true,
            InsertMode::Upsert => !replace,
        };
        let mut opts = vec!["FORMAT binary".to_string()];
        if kind == TargetKind::YugabyteDb {
            if replace {
                opts.push("REPLACE".to_string());
            }
            if let Some(n) = yb.rows_per_transaction {
                opts.push(format!("ROWS_PER_TRANSACTION {n}"));
            }
        }
        let qualified = mapping.qualified_target();
        // A temporary staging table per target table, named stably.
        let stage = format!(
            "ferry_stage_{:08x}",
            qualified
                .bytes()
                .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b))
                    .wrapping_mul(0x0100_0193))
        );
        let merge_sql = staged.then(|| {
            let conflict = match mode {
                InsertMode::Upsert => upsert_clause(&mapping.primary_key, &names, newer_only),
                _ => "ON CONFLICT DO NOTHING".to_string(),
            };
            format!(
                "INSERT INTO {qualified} AS ferry_t ({columns_sql}) SELECT {columns_sql} FROM {stage} {conflict}"
            )
        });
        let into = if staged { &stage } else { &qualified };
        TableWriter {
            copy_sql: format!(
                "COPY {into} ({columns_sql}) FROM STDIN WITH ({})",
                opts.join(", ")
            ),
            mode,
            qualified,
            columns_sql,
            stage,
            merge_sql,
            yb,
            kind,
        }
    }

    /// Statements at the start of a chunk's transaction.
    pub async fn prepare_tx(&self, tx: &Client) -> Result<(), tokio_postgres::Error> {
        if self.kind == TargetKind::YugabyteDb && self.yb.disable_transactional_writes {
            tx.batch_execute("SET LOCAL yb_disable_transactional_writes = on")
                .await?;
        }
        if self.merge_sql.is_some() {
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                self.stage, self.qualified
            ))
            .await?;
        }
        Ok(())
    }

    /// Statements after the chunk's COPY, before its commit: moves the staged rows into the
    /// table (skipping keys that exist, or replacing them); returns the rows it inserted or
    /// replaced, or `None` when nothing is staged (the COPY wrote the table itself).
    pub async fn finish_tx(&self, tx: &Client) -> Result<Option<u64>, tokio_postgres::Error> {
        match &self.merge_sql {
            Some(sql) => tx.execute(sql, &[]).await.map(Some),
            None => Ok(None),
        }
    }
}

/// `ON CONFLICT (pk) DO UPDATE SET c = EXCLUDED.c, …`, guarded by the write time column when
/// there is one (a target row as new or newer stays: the same write time is the same cells, and
/// rewriting it would only leave a dead row behind); `DO NOTHING` when every column is
/// in the key.
fn upsert_clause(primary_key: &[String], columns: &[&str], newer_only: Option<&str>) -> String {
    let pk: Vec<String> = primary_key.iter().map(|c| pg_ident(c)).collect();
    let set: Vec<String> = columns
        .iter()
        .filter(|c| !primary_key.iter().any(|k| k == *c))
        .map(|c| format!("{0} = EXCLUDED.{0}", pg_ident(c)))
        .collect();
    if set.is_empty() {
        return format!("ON CONFLICT ({}) DO NOTHING", pk.join(", "));
    }
    let guard = newer_only
        .map(|w| {
            let w = pg_ident(w);
            format!(
                " WHERE ferry_t.{w} IS NULL OR EXCLUDED.{w} IS NULL OR EXCLUDED.{w} > ferry_t.{w}"
            )
        })
        .unwrap_or_default();
    format!(
        "ON CONFLICT ({}) DO UPDATE SET {}{guard}",
        pk.join(", "),
        set.join(", ")
    )
}

/// The target table's primary key columns, in key order; empty without one.
pub async fn primary_key_columns(
    client: &impl tokio_postgres::GenericClient,
    qualified: &str,
) -> Result<Vec<String>> {
    let rows = client
        .query_typed(
            "SELECT a.attname::text FROM pg_index i \
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY k.n",
            &[(&qualified, Type::TEXT)],
        )
        .await
        .context("reading the target table's primary key")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Binary encodings of constant column values, computed by the server itself (`typsend`), so
/// they are exact for whatever type the target column has. `CURRENTTIMESTAMP` and
/// `CURRENT_TIMESTAMP` become the time of the run's start.
pub async fn encode_constants(
    client: &Client,
    schema: &str,
    table: &str,
    constants: &[(String, String)],
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::with_capacity(constants.len());
    for (name, value) in constants {
        let ty: Option<String> = client
            .query_opt(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND NOT a.attisdropped",
                &[&schema, &table, &name],
            )
            .await?
            .map(|r| r.get(0));
        let Some(ty) = ty else {
            bail!("constant column {name} (table.constantColumns.names) does not exist in {schema}.{table}");
        };
        let value = if value.eq_ignore_ascii_case("CURRENTTIMESTAMP")
            || value.eq_ignore_ascii_case("CURRENT_TIMESTAMP")
        {
            let now: String = client.query_one("SELECT now()::text", &[]).await?.get(0);
            now
        } else {
            value.clone()
        };
        // `$1::text::<type>` parses the value as PostgreSQL would; the send function gives the
        // exact binary COPY field.
        let sql = format!(
            "SELECT (SELECT typsend FROM pg_type WHERE oid = '{ty}'::regtype)::text, $1::text::{ty} IS NULL"
        );
        let row = client
            .query_one(&sql, &[&value])
            .await
            .with_context(|| format!("constant column {name}: '{value}' is not a valid {ty}"))?;
        let send: String = row.get(0);
        let bytes: Vec<u8> = client
            .query_one(&format!("SELECT {send}($1::text::{ty})"), &[&value])
            .await
            .with_context(|| format!("constant column {name}: encoding '{value}' as {ty}"))?
            .get(0);
        out.push(Some(bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_update_every_non_key_column_and_keep_newer_rows() {
        let pk = vec!["k".to_string(), "c".to_string()];
        assert_eq!(
            upsert_clause(&pk, &["k", "c", "v", "wt"], Some("wt")),
            "ON CONFLICT (k, c) DO UPDATE SET v = EXCLUDED.v, wt = EXCLUDED.wt \
             WHERE ferry_t.wt IS NULL OR EXCLUDED.wt IS NULL OR EXCLUDED.wt > ferry_t.wt"
        );
        assert_eq!(
            upsert_clause(&pk, &["k", "c", "v"], None),
            "ON CONFLICT (k, c) DO UPDATE SET v = EXCLUDED.v"
        );
        assert_eq!(
            upsert_clause(&pk, &["k", "c"], None),
            "ON CONFLICT (k, c) DO NOTHING"
        );
    }
}
