//! Source and target schema: the Cassandra table as the driver reports it, the target table DDL
//! that follows from the type table, and the column-by-column check of an existing target table.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use scylla::client::session::Session;
use scylla::frame::response::result::{CollectionType, ColumnType, NativeType};

use crate::cql::{CqlType, PgScalar, PgType};

/// The role a column plays in the Cassandra primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    PartitionKey,
    /// Clustering column; `descending` follows `CLUSTERING ORDER BY`.
    Clustering {
        descending: bool,
    },
    Static,
    Regular,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceColumn {
    pub name: String,
    pub ty: CqlType,
    pub kind: ColumnKind,
    /// A non-frozen collection or user type: each element is a cell of its own, with its own
    /// write time and TTL.
    pub multi_cell: bool,
}

/// A Cassandra table: columns in select order (partition key, clustering key, static, regular).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTable {
    pub keyspace: String,
    pub table: String,
    pub columns: Vec<SourceColumn>,
    /// The row times a scan selects after the columns ([`crate::row_times`]).
    pub times: crate::row_times::RowTimes,
}

impl SourceTable {
    pub fn partition_key(&self) -> impl Iterator<Item = &SourceColumn> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::PartitionKey)
    }

    /// `token("a", "b")` over the partition key, for range scans.
    pub fn token_expr(&self) -> String {
        let pk: Vec<String> = self.partition_key().map(|c| cql_ident(&c.name)).collect();
        format!("token({})", pk.join(", "))
    }

    /// What a scan selects: the columns, then the row times asked for
    /// ([`crate::row_times::TimeColumns::selectors`]).
    pub fn select_list(&self) -> String {
        let mut cols: Vec<String> = self.columns.iter().map(|c| cql_ident(&c.name)).collect();
        cols.extend(crate::row_times::TimeColumns::of(self, self.times).selectors(self));
        cols.join(", ")
    }

    /// `SELECT cols FROM ks.t WHERE token(pk) > ? AND token(pk) <= ?`.
    pub fn range_select(&self) -> String {
        let tok = self.token_expr();
        format!(
            "SELECT {} FROM {}.{} WHERE {tok} > ? AND {tok} <= ?",
            self.select_list(),
            cql_ident(&self.keyspace),
            cql_ident(&self.table)
        )
    }

    /// `SELECT cols FROM ks.t WHERE pk1 = ? AND … AND ck1 = ? …`: one row by its primary key,
    /// bound in column order.
    pub fn key_select(&self) -> String {
        let keys: Vec<String> = self
            .columns
            .iter()
            .filter(|c| {
                matches!(
                    c.kind,
                    ColumnKind::PartitionKey | ColumnKind::Clustering { .. }
                )
            })
            .map(|c| format!("{} = ?", cql_ident(&c.name)))
            .collect();
        format!(
            "SELECT {} FROM {}.{} WHERE {}",
            self.select_list(),
            cql_ident(&self.keyspace),
            cql_ident(&self.table),
            keys.join(" AND ")
        )
    }

    /// The leading clustering columns whose clustering order is the first one's: a large
    /// partition is split on these. Rows come back in clustering order, so their values along
    /// this prefix only ever rise (ASC) or only ever fall (DESC), and range bounds taken from
    /// rows in the order read are sorted without comparing values. A later column of the other
    /// order would break that (CQL compares tuples by value, not by clustering order).
    pub fn split_columns(&self) -> (Vec<&SourceColumn>, bool) {
        let mut out = Vec::new();
        let mut order = None;
        for c in &self.columns {
            if let ColumnKind::Clustering { descending } = c.kind {
                if *order.get_or_insert(descending) != descending {
                    break;
                }
                out.push(c);
            }
        }
        (out, order.unwrap_or(false))
    }

    /// `SELECT c1, c2 FROM ks.t WHERE token(pk) > ? AND token(pk) <= ?`: the split columns'
    /// values of a range's rows, to place a large partition's boundaries.
    pub fn split_key_select(&self) -> Option<String> {
        let (cols, _) = self.split_columns();
        if cols.is_empty() {
            return None;
        }
        let cols: Vec<String> = cols.iter().map(|c| cql_ident(&c.name)).collect();
        let tok = self.token_expr();
        Some(format!(
            "SELECT {} FROM {}.{} WHERE {tok} > ? AND {tok} <= ?",
            cols.join(", "),
            cql_ident(&self.keyspace),
            cql_ident(&self.table)
        ))
    }

    /// The statements of a large partition's pieces, for a range bounded below (`lo`), above
    /// (`hi`) or both: `SELECT cols FROM ks.t WHERE token(pk) = ? AND (c1, c2) > (?, ?) AND
    /// (c1, c2) <= (?, ?) ALLOW FILTERING`, taking the token, then the `width` values of each
    /// bound. Cassandra asks for ALLOW FILTERING as the partition is named by its token, not
    /// its key; the clustering slice is still served from the partition's index, not filtered
    /// row by row. `None` for a table without clustering columns.
    pub fn slice_select(&self, width: usize, lo: bool, hi: bool) -> Option<String> {
        let (split, _) = self.split_columns();
        if split.is_empty() || width == 0 || width > split.len() {
            return None;
        }
        let names: Vec<String> = split[..width].iter().map(|c| cql_ident(&c.name)).collect();
        let tuple = format!("({})", names.join(", "));
        let marks = format!("({})", vec!["?"; width].join(", "));
        let mut cql = format!(
            "SELECT {} FROM {}.{} WHERE {} = ?",
            self.select_list(),
            cql_ident(&self.keyspace),
            cql_ident(&self.table),
            self.token_expr()
        );
        if lo {
            cql.push_str(&format!(" AND {tuple} > {marks}"));
        }
        if hi {
            cql.push_str(&format!(" AND {tuple} <= {marks}"));
        }
        cql.push_str(" ALLOW FILTERING");
        Some(cql)
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", self.keyspace, self.table)
    }
}

/// Quotes a CQL identifier when it is not a plain lower-case name.
pub fn cql_ident(name: &str) -> String {
    if is_plain(name) && !CQL_RESERVED.contains(&name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A CQL string literal. A statement with bound values costs a prepare round trip before it
/// runs (the driver needs the values' types); the few schema reads ferry makes before copying
/// put their names in the text instead, one round trip each.
pub fn cql_text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Quotes a PostgreSQL identifier when it is not a plain lower-case name or is reserved. Every
/// SQL identifier ferry writes goes through here.
pub fn pg_ident(name: &str) -> String {
    if is_plain(name) && !PG_RESERVED.contains(&name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn is_plain(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const CQL_RESERVED: &[&str] = &[
    "add",
    "allow",
    "alter",
    "and",
    "apply",
    "asc",
    "authorize",
    "batch",
    "begin",
    "by",
    "columnfamily",
    "create",
    "delete",
    "desc",
    "describe",
    "drop",
    "entries",
    "execute",
    "from",
    "full",
    "grant",
    "if",
    "in",
    "index",
    "infinity",
    "insert",
    "into",
    "is",
    "keyspace",
    "limit",
    "modify",
    "nan",
    "norecursive",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "primary",
    "rename",
    "replace",
    "revoke",
    "schema",
    "select",
    "set",
    "table",
    "to",
    "token",
    "truncate",
    "unlogged",
    "update",
    "use",
    "using",
    "view",
    "where",
    "with",
];

/// PostgreSQL's reserved key words (SQL Key Words appendix, "reserved" column).
const PG_RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
    "authorization",
    "binary",
    "collation",
    "concurrently",
    "cross",
    "current_schema",
    "freeze",
    "full",
    "ilike",
    "inner",
    "is",
    "isnull",
    "join",
    "left",
    "like",
    "natural",
    "notnull",
    "outer",
    "overlaps",
    "right",
    "similar",
    "tablesample",
    "verbose",
];

/// Converts a driver column type into ferry's model.
pub fn cql_type(t: &ColumnType<'_>) -> Result<CqlType> {
    Ok(match t {
        ColumnType::Native(n) => match n {
            NativeType::Ascii => CqlType::Ascii,
            NativeType::Boolean => CqlType::Boolean,
            NativeType::Blob => CqlType::Blob,
            NativeType::Counter => CqlType::Counter,
            NativeType::Date => CqlType::Date,
            NativeType::Decimal => CqlType::Decimal,
            NativeType::Double => CqlType::Double,
            NativeType::Duration => CqlType::Duration,
            NativeType::Float => CqlType::Float,
            NativeType::Int => CqlType::Int,
            NativeType::BigInt => CqlType::BigInt,
            NativeType::Text => CqlType::Text,
            NativeType::Timestamp => CqlType::Timestamp,
            NativeType::Inet => CqlType::Inet,
            NativeType::SmallInt => CqlType::SmallInt,
            NativeType::TinyInt => CqlType::TinyInt,
            NativeType::Time => CqlType::Time,
            NativeType::Timeuuid => CqlType::Timeuuid,
            NativeType::Uuid => CqlType::Uuid,
            NativeType::Varint => CqlType::Varint,
            other => bail!("CQL type {other:?} is not supported by ferry"),
        },
        ColumnType::Collection { typ, .. } => match typ {
            CollectionType::List(e) => CqlType::List(Box::new(cql_type(e)?)),
            CollectionType::Set(e) => CqlType::Set(Box::new(cql_type(e)?)),
            CollectionType::Map(k, v) => {
                CqlType::Map(Box::new(cql_type(k)?), Box::new(cql_type(v)?))
            }
            other => bail!("CQL collection {other:?} is not supported by ferry"),
        },
        ColumnType::Vector { typ, dimensions } => CqlType::Vector {
            element: Box::new(cql_type(typ)?),
            dimensions: *dimensions,
        },
        ColumnType::UserDefinedType { definition, .. } => CqlType::Udt {
            keyspace: definition.keyspace.to_string(),
            name: definition.name.to_string(),
            fields: definition
                .field_types
                .iter()
                .map(|(n, t)| Ok((n.to_string(), cql_type(t)?)))
                .collect::<Result<_>>()?,
        },
        ColumnType::Tuple(ts) => CqlType::Tuple(ts.iter().map(cql_type).collect::<Result<_>>()?),
        other => bail!("CQL type {other:?} is not supported by ferry"),
    })
}

/// A column as `system_schema.columns` describes it: name, kind, position, clustering order,
/// type.
pub type ColumnRow = (String, String, i32, String, String);

/// The columns of `keyspace`'s tables (of `table` alone, when given), by table, in one read:
/// a run reads them beside its other first reads, so that each table's check need not.
pub async fn read_columns(
    session: &Session,
    keyspace: &str,
    table: Option<&str>,
) -> Result<HashMap<String, Vec<ColumnRow>>> {
    let rows = session
        .query_unpaged(
            format!(
                "SELECT table_name, column_name, kind, position, clustering_order, type \
                 FROM system_schema.columns WHERE keyspace_name = {}{}",
                cql_text(keyspace),
                table.map_or(String::new(), |t| format!(
                    " AND table_name = {}",
                    cql_text(t)
                ))
            ),
            &[],
        )
        .await
        .context("reading system_schema.columns")?
        .into_rows_result()?;
    let mut by_table: HashMap<String, Vec<ColumnRow>> = HashMap::new();
    for row in rows.rows::<(String, String, String, i32, String, String)>()? {
        let (t, name, kind, position, order, ty) = row?;
        by_table
            .entry(t)
            .or_default()
            .push((name, kind, position, order, ty));
    }
    Ok(by_table)
}

/// The partition key's column names, in key order, from a table's [`ColumnRow`]s.
pub fn partition_key_of(columns: &[ColumnRow]) -> Vec<String> {
    let mut key: Vec<(i32, &String)> = columns
        .iter()
        .filter(|c| c.1 == "partition_key")
        .map(|c| (c.2, &c.0))
        .collect();
    key.sort();
    key.into_iter().map(|(_, n)| n.clone()).collect()
}

/// Reads a table's columns, key roles and clustering order from `system_schema`, and its exact
/// wire types from a prepared statement's result metadata.
pub async fn read_source_table(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> Result<SourceTable> {
    read_source_table_with(session, keyspace, table, None).await
}

/// [`read_source_table`] with the table's columns read already ([`read_columns`]), when they
/// are: one round trip less.
pub async fn read_source_table_with(
    session: &Session,
    keyspace: &str,
    table: &str,
    columns: Option<Vec<ColumnRow>>,
) -> Result<SourceTable> {
    let mut meta = match columns {
        Some(c) => c,
        None => read_columns(session, keyspace, Some(table))
            .await?
            .remove(table)
            .unwrap_or_default(),
    };
    if meta.is_empty() {
        return Err(missing_table(session, keyspace, table).await);
    }
    let rank = |kind: &str| match kind {
        "partition_key" => 0,
        "clustering" => 1,
        "static" => 2,
        _ => 3,
    };
    meta.sort_by(|a, b| {
        (rank(&a.1), if rank(&a.1) < 2 { a.2 } else { 0 }, &a.0).cmp(&(
            rank(&b.1),
            if rank(&b.1) < 2 { b.2 } else { 0 },
            &b.0,
        ))
    });
    let cols: Vec<String> = meta.iter().map(|m| cql_ident(&m.0)).collect();
    let probe = session
        .prepare(format!(
            "SELECT {} FROM {}.{}",
            cols.join(", "),
            cql_ident(keyspace),
            cql_ident(table)
        ))
        .await
        .with_context(|| format!("preparing a read of {keyspace}.{table}"))?;
    let guard = probe.get_current_result_set_col_specs();
    let specs = guard.get();
    let mut columns = Vec::with_capacity(meta.len());
    for (i, (name, kind, _, order, type_text)) in meta.into_iter().enumerate() {
        let spec = specs
            .get_by_index(i)
            .with_context(|| format!("result metadata lacks column {name}"))?;
        let ty =
            cql_type(spec.typ()).with_context(|| format!("column {keyspace}.{table}.{name}"))?;
        let kind = match kind.as_str() {
            "partition_key" => ColumnKind::PartitionKey,
            "clustering" => ColumnKind::Clustering {
                descending: order.eq_ignore_ascii_case("desc"),
            },
            "static" => ColumnKind::Static,
            _ => ColumnKind::Regular,
        };
        // Result metadata does not say whether a collection is frozen; the schema's type does.
        let multi_cell = matches!(
            ty,
            CqlType::List(_) | CqlType::Set(_) | CqlType::Map(..) | CqlType::Udt { .. }
        ) && !type_text.starts_with("frozen<");
        columns.push(SourceColumn {
            name,
            ty,
            kind,
            multi_cell,
        });
    }
    Ok(SourceTable {
        times: Default::default(),
        keyspace: keyspace.to_string(),
        table: table.to_string(),
        columns,
    })
}

/// The table's id in `system_schema.tables` (a DROP + CREATE under the same name gives a new
/// one), as text; `None` when the table is not there.
pub async fn source_table_id(
    session: &Session,
    keyspace: &str,
    table: &str,
) -> Result<Option<String>> {
    let rows = session
        .query_unpaged(
            format!(
                "SELECT id FROM system_schema.tables WHERE keyspace_name = {} AND table_name = {}",
                cql_text(keyspace),
                cql_text(table)
            ),
            &[],
        )
        .await
        .context("reading system_schema.tables")?
        .into_rows_result()?;
    let id = rows.maybe_first_row::<(uuid::Uuid,)>()?;
    Ok(id.map(|(id,)| id.to_string()))
}

/// Lists a keyspace's tables, in name order.
pub async fn list_tables(session: &Session, keyspace: &str) -> Result<Vec<String>> {
    let rows = session
        .query_unpaged(
            format!(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = {}",
                cql_text(keyspace)
            ),
            &[],
        )
        .await
        .context("reading system_schema.tables")?
        .into_rows_result()?;
    let mut names: Vec<String> = rows
        .rows::<(String,)>()?
        .map(|r| r.map(|(n,)| n))
        .collect::<Result<_, _>>()?;
    names.sort();
    if names.is_empty() {
        return Err(missing_table(session, keyspace, "").await);
    }
    Ok(names)
}

async fn missing_table(session: &Session, keyspace: &str, table: &str) -> anyhow::Error {
    let keyspaces: Vec<String> = match session
        .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", &[])
        .await
        .ok()
        .and_then(|r| r.into_rows_result().ok())
    {
        Some(r) => r
            .rows::<(String,)>()
            .map(|it| it.filter_map(|x| x.ok().map(|(n,)| n)).collect())
            .unwrap_or_default(),
        None => vec![],
    };
    if !keyspaces.iter().any(|k| k == keyspace) {
        let user: Vec<&String> = keyspaces
            .iter()
            .filter(|k| !k.starts_with("system"))
            .collect();
        return anyhow::anyhow!(
            "keyspace '{keyspace}' does not exist in Cassandra — set table.source.keyspace to one of: {}",
            user.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let tables = match session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .ok()
        .and_then(|r| r.into_rows_result().ok())
    {
        Some(r) => r
            .rows::<(String,)>()
            .map(|it| it.filter_map(|x| x.ok().map(|(n,)| n)).collect::<Vec<_>>())
            .unwrap_or_default(),
        None => vec![],
    };
    if table.is_empty() {
        return anyhow::anyhow!("keyspace '{keyspace}' has no tables");
    }
    anyhow::anyhow!(
        "table '{keyspace}.{table}' does not exist in Cassandra — set table.source.table to one of: {}",
        if tables.is_empty() { "(none)".to_string() } else { tables.join(", ") }
    )
}

/// Which dialect the target speaks; decides DDL and which COPY options exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    PostgreSql,
    YugabyteDb,
}

impl TargetKind {
    /// YugabyteDB's `version()` contains `-YB-`.
    pub fn from_version(version: &str) -> Self {
        if version.contains("-YB-") {
            TargetKind::YugabyteDb
        } else {
            TargetKind::PostgreSql
        }
    }
}

/// A target column: where a source column (or a constant) lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetColumn {
    pub name: String,
    pub ty: PgType,
}

/// The mapping of one source table onto one target table.
#[derive(Clone, Debug)]
pub struct TableMapping {
    pub source: SourceTable,
    pub target_schema: String,
    pub target_table: String,
    /// One target column per source column, same order.
    pub target_columns: Vec<TargetColumn>,
    /// Primary key columns (target names), in order.
    pub primary_key: Vec<String>,
}

impl TableMapping {
    /// Maps a source table with optional column renames (`table.columnMapping.*`) and an optional
    /// primary key override (`table.primaryKey`, source or target names).
    pub fn new(
        source: SourceTable,
        target_schema: &str,
        target_table: &str,
        renames: &HashMap<String, String>,
        primary_key: Option<&[String]>,
    ) -> Result<Self> {
        for from in renames.keys() {
            if !source.columns.iter().any(|c| &c.name == from) {
                bail!(
                    "table.columnMapping.{from}: '{}' has no column '{from}' — use one of: {}",
                    source.qualified(),
                    source
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        let target_columns: Vec<TargetColumn> = source
            .columns
            .iter()
            .map(|c| TargetColumn {
                name: renames
                    .get(&c.name)
                    .cloned()
                    .unwrap_or_else(|| c.name.clone()),
                ty: c.ty.pg_type(),
            })
            .collect();
        let primary_key = match primary_key {
            Some(cols) if !cols.is_empty() => cols
                .iter()
                .map(|k| {
                    let k = renames.get(k).cloned().unwrap_or_else(|| k.clone());
                    if target_columns.iter().any(|t| t.name == k) {
                        Ok(k)
                    } else {
                        bail!("table.primaryKey names '{k}', which is not a column of the table")
                    }
                })
                .collect::<Result<_>>()?,
            _ => source
                .columns
                .iter()
                .zip(&target_columns)
                .filter(|(s, _)| {
                    matches!(
                        s.kind,
                        ColumnKind::PartitionKey | ColumnKind::Clustering { .. }
                    )
                })
                .map(|(_, t)| t.name.clone())
                .collect(),
        };
        Ok(TableMapping {
            source,
            target_schema: target_schema.to_string(),
            target_table: target_table.to_string(),
            target_columns,
            primary_key,
        })
    }

    pub fn qualified_target(&self) -> String {
        format!(
            "{}.{}",
            pg_ident(&self.target_schema),
            pg_ident(&self.target_table)
        )
    }

    /// `CREATE TABLE` for the target. On YugabyteDB the partition key is HASH-sharded and the
    /// clustering columns range-sharded in their CQL order.
    pub fn create_table_ddl(&self, kind: TargetKind) -> String {
        self.create_table_ddl_with(kind, &[])
    }

    /// `CREATE TABLE` with extra columns after the source's, `(name, SQL type)` — the
    /// `table.constantColumns` ferry fills.
    pub fn create_table_ddl_with(&self, kind: TargetKind, extra: &[(String, String)]) -> String {
        let mut s = format!("CREATE TABLE {} (\n", self.qualified_target());
        for t in &self.target_columns {
            let _ = writeln!(s, "  {} {},", pg_ident(&t.name), t.ty.sql_name());
        }
        for (name, ty) in extra {
            let _ = writeln!(s, "  {} {ty},", pg_ident(name));
        }
        let pk_default = self.primary_key
            == self
                .source
                .columns
                .iter()
                .zip(&self.target_columns)
                .filter(|(s, _)| {
                    matches!(
                        s.kind,
                        ColumnKind::PartitionKey | ColumnKind::Clustering { .. }
                    )
                })
                .map(|(_, t)| t.name.clone())
                .collect::<Vec<_>>();
        if kind == TargetKind::YugabyteDb && pk_default {
            let mut hash = Vec::new();
            let mut range = Vec::new();
            for (s, t) in self.source.columns.iter().zip(&self.target_columns) {
                match s.kind {
                    ColumnKind::PartitionKey => hash.push(pg_ident(&t.name)),
                    ColumnKind::Clustering { descending } => range.push(format!(
                        "{} {}",
                        pg_ident(&t.name),
                        if descending { "DESC" } else { "ASC" }
                    )),
                    _ => {}
                }
            }
            let mut parts = vec![format!("({}) HASH", hash.join(", "))];
            parts.extend(range);
            let _ = write!(s, "  PRIMARY KEY ({})\n)", parts.join(", "));
        } else {
            let pk: Vec<String> = self.primary_key.iter().map(|c| pg_ident(c)).collect();
            let _ = write!(s, "  PRIMARY KEY ({})\n)", pk.join(", "));
        }
        s
    }

    /// Compares an existing target table's columns (name → `format_type` text, and whether it
    /// is NOT NULL without a default) with what this mapping writes (`constants`: the other
    /// columns ferry fills: row times and constants). Returns every mismatch.
    pub fn check_existing(
        &self,
        existing: &[(String, String, bool)],
        constants: &[String],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let found: HashMap<&str, &str> = existing
            .iter()
            .map(|(n, t, _)| (n.as_str(), t.as_str()))
            .collect();
        for (s, t) in self.source.columns.iter().zip(&self.target_columns) {
            match found.get(t.name.as_str()) {
                None => problems.push(format!(
                    "column {} (from {} {}) is missing — add it as {} or map it with table.columnMapping.{}",
                    t.name, s.name, s.ty, t.ty.sql_name(), s.name
                )),
                Some(have) if !compatible(t.ty, have) => problems.push(format!(
                    "column {} is {have} but {} {} needs {}",
                    t.name, s.name, s.ty, t.ty.sql_name()
                )),
                _ => {}
            }
        }
        for c in constants {
            if !found.contains_key(c.as_str()) {
                problems.push(format!(
                    "column {c}, which ferry fills (table.constantColumns, ferry.writetimeColumn or ferry.expiresColumn), does not exist in the target table — add it, or rerun with --create-tables on a new table"
                ));
            }
        }
        for (name, _, required) in existing {
            let written =
                self.target_columns.iter().any(|t| &t.name == name) || constants.contains(name);
            if *required && !written {
                problems.push(format!(
                    "column {name} is NOT NULL without a default, and nothing writes it — give it a default or a table.constantColumns value"
                ));
            }
        }
        problems
    }
}

/// Whether an existing column type receives this mapping's binary COPY encoding unchanged.
fn compatible(want: PgType, have: &str) -> bool {
    let want_name = want.sql_name();
    if have == want_name {
        return true;
    }
    match want {
        // Same binary format, nothing lost.
        PgType::Text => have == "character varying" || have == "varchar",
        PgType::Timestamptz => have == "timestamp without time zone",
        PgType::Array(PgScalar::Text) => have == "character varying[]",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cql_text_doubles_quotes() {
        assert_eq!(cql_text("ks"), "'ks'");
        assert_eq!(cql_text("it's"), "'it''s'");
        assert_eq!(cql_text("''"), "''''''");
    }

    #[test]
    fn partition_key_of_orders_the_key_columns_by_position() {
        let col = |n: &str, kind: &str, pos: i32| -> ColumnRow {
            (n.into(), kind.into(), pos, "none".into(), "int".into())
        };
        let columns = vec![
            col("v", "regular", -1),
            col("region", "partition_key", 1),
            col("c", "clustering", 0),
            col("id", "partition_key", 0),
            col("s", "static", -1),
        ];
        assert_eq!(partition_key_of(&columns), vec!["id", "region"]);
        assert!(partition_key_of(&[col("v", "regular", -1)]).is_empty());
    }

    fn sample() -> SourceTable {
        SourceTable {
            times: Default::default(),
            keyspace: "ks".into(),
            table: "t".into(),
            columns: vec![
                SourceColumn {
                    name: "p1".into(),
                    ty: CqlType::BigInt,
                    kind: ColumnKind::PartitionKey,
                    multi_cell: false,
                },
                SourceColumn {
                    name: "p2".into(),
                    ty: CqlType::Text,
                    kind: ColumnKind::PartitionKey,
                    multi_cell: false,
                },
                SourceColumn {
                    name: "c1".into(),
                    ty: CqlType::Int,
                    kind: ColumnKind::Clustering { descending: false },
                    multi_cell: false,
                },
                SourceColumn {
                    name: "Order".into(),
                    ty: CqlType::Timestamp,
                    kind: ColumnKind::Clustering { descending: true },
                    multi_cell: false,
                },
                SourceColumn {
                    name: "s".into(),
                    ty: CqlType::Text,
                    kind: ColumnKind::Static,
                    multi_cell: false,
                },
                SourceColumn {
                    name: "user".into(),
                    ty: CqlType::List(Box::new(CqlType::Int)),
                    kind: ColumnKind::Regular,
                    multi_cell: false,
                },
                SourceColumn {
                    name: "m".into(),
                    ty: CqlType::Map(Box::new(CqlType::Text), Box::new(CqlType::Int)),
                    kind: ColumnKind::Regular,
                    multi_cell: false,
                },
            ],
        }
    }

    #[test]
    fn a_large_partition_splits_on_the_leading_columns_of_one_order() {
        // c1 ASC then "Order" DESC: only c1 keeps one direction.
        let t = sample();
        let (cols, desc) = t.split_columns();
        assert_eq!(
            cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["c1"]
        );
        assert!(!desc);
        assert_eq!(
            t.slice_select(1, true, true).unwrap(),
            "SELECT p1, p2, c1, \"Order\", s, user, m FROM ks.t WHERE token(p1, p2) = ? \
             AND (c1) > (?) AND (c1) <= (?) ALLOW FILTERING"
        );
        assert!(t
            .slice_select(1, false, true)
            .unwrap()
            .ends_with("WHERE token(p1, p2) = ? AND (c1) <= (?) ALLOW FILTERING"));
        assert_eq!(
            t.split_key_select().unwrap(),
            "SELECT c1 FROM ks.t WHERE token(p1, p2) > ? AND token(p1, p2) <= ?"
        );
        // Both DESC: both columns, descending.
        let mut t = sample();
        t.columns[2].kind = ColumnKind::Clustering { descending: true };
        let (cols, desc) = t.split_columns();
        assert_eq!(cols.len(), 2);
        assert!(desc);
        assert!(t
            .slice_select(2, true, false)
            .unwrap()
            .contains("AND (c1, \"Order\") > (?, ?) ALLOW"));
        // No clustering columns: nothing to split on.
        t.columns
            .retain(|c| !matches!(c.kind, ColumnKind::Clustering { .. }));
        assert!(t.split_key_select().is_none());
        assert!(t.slice_select(1, true, true).is_none());
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(pg_ident("plain_name1"), "plain_name1");
        assert_eq!(pg_ident("user"), "\"user\"");
        assert_eq!(pg_ident("Order"), "\"Order\"");
        assert_eq!(pg_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(cql_ident("token"), "\"token\"");
    }

    #[test]
    fn yugabyte_ddl_hashes_the_partition_key_and_follows_clustering_order() {
        let m = TableMapping::new(sample(), "public", "t", &HashMap::new(), None).unwrap();
        let ddl = m.create_table_ddl(TargetKind::YugabyteDb);
        assert!(
            ddl.ends_with("PRIMARY KEY ((p1, p2) HASH, c1 ASC, \"Order\" DESC)\n)"),
            "{ddl}"
        );
        assert!(ddl.contains("  \"user\" integer[],\n"), "{ddl}");
        assert!(ddl.contains("  m jsonb,\n"), "{ddl}");
        let pg = m.create_table_ddl(TargetKind::PostgreSql);
        assert!(
            pg.ends_with("PRIMARY KEY (p1, p2, c1, \"Order\")\n)"),
            "{pg}"
        );
    }

    #[test]
    fn renames_and_primary_key_override_apply() {
        let renames = HashMap::from([("p2".to_string(), "region".to_string())]);
        let pk = vec!["p1".to_string(), "p2".to_string()];
        let m = TableMapping::new(sample(), "s", "t2", &renames, Some(&pk)).unwrap();
        assert_eq!(m.primary_key, vec!["p1", "region"]);
        assert_eq!(m.target_columns[1].name, "region");
        let bad = HashMap::from([("nope".to_string(), "x".to_string())]);
        let err = TableMapping::new(sample(), "s", "t", &bad, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no column 'nope'"), "{err}");
    }

    #[test]
    fn existing_table_check_lists_every_mismatch() {
        let m = TableMapping::new(sample(), "public", "t", &HashMap::new(), None).unwrap();
        let existing = vec![
            ("p1".to_string(), "bigint".to_string(), true),
            ("p2".to_string(), "character varying".to_string(), true),
            ("c1".to_string(), "bigint".to_string(), true),
            (
                "Order".to_string(),
                "timestamp with time zone".to_string(),
                true,
            ),
            ("s".to_string(), "text".to_string(), false),
            ("m".to_string(), "jsonb".to_string(), false),
            ("audit".to_string(), "text".to_string(), true),
        ];
        let problems = m.check_existing(&existing, &[]);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("column c1 is bigint but c1 int needs integer"));
        assert!(problems[1].contains("column user (from user list<int>) is missing"));
        assert!(problems[2].contains("column audit is NOT NULL"));
        assert!(m.check_existing(&existing, &["audit".to_string()]).len() == 2);
    }
}
