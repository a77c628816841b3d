//! The CQL type model ferry works with, independent of the driver: what a column is in Cassandra,
//! and which PostgreSQL type it becomes (the type table in DESIGN.md lives in [`CqlType::pg_type`]).

use std::fmt;

/// A CQL column type. `frozen` is not kept: it changes how Cassandra stores a value, not its wire
/// encoding in a result set, and ferry only reads result sets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CqlType {
    Ascii,
    BigInt,
    Blob,
    Boolean,
    Counter,
    Date,
    Decimal,
    Double,
    Duration,
    Float,
    Inet,
    Int,
    SmallInt,
    Text,
    Time,
    Timestamp,
    Timeuuid,
    TinyInt,
    Uuid,
    Varint,
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
    Tuple(Vec<CqlType>),
    Udt {
        keyspace: String,
        name: String,
        fields: Vec<(String, CqlType)>,
    },
    /// Cassandra 5.0 `vector<element, dimensions>`.
    Vector {
        element: Box<CqlType>,
        dimensions: u16,
    },
}

/// The PostgreSQL column type a CQL type is migrated to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PgType {
    Text,
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    Bool,
    Bytea,
    Inet,
    Uuid,
    Timestamptz,
    Date,
    Time,
    Interval,
    Jsonb,
    /// One-dimensional array of the element type.
    Array(PgScalar),
}

/// Element types a PostgreSQL array column can have in ferry's mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PgScalar {
    Text,
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    Bool,
    Bytea,
    Inet,
    Uuid,
    Timestamptz,
    Date,
    Time,
    Interval,
}

impl CqlType {
    /// True for types that are not collections, tuples, UDTs or vectors.
    pub fn is_scalar(&self) -> bool {
        !matches!(
            self,
            CqlType::List(_)
                | CqlType::Set(_)
                | CqlType::Map(..)
                | CqlType::Tuple(_)
                | CqlType::Udt { .. }
                | CqlType::Vector { .. }
        )
    }

    /// The scalar PostgreSQL type of a scalar CQL type; `None` for composite types.
    pub fn pg_scalar(&self) -> Option<PgScalar> {
        Some(match self {
            CqlType::Ascii | CqlType::Text => PgScalar::Text,
            CqlType::TinyInt | CqlType::SmallInt => PgScalar::Int2,
            CqlType::Int => PgScalar::Int4,
            CqlType::BigInt | CqlType::Counter => PgScalar::Int8,
            CqlType::Varint | CqlType::Decimal => PgScalar::Numeric,
            CqlType::Float => PgScalar::Float4,
            CqlType::Double => PgScalar::Float8,
            CqlType::Boolean => PgScalar::Bool,
            CqlType::Blob => PgScalar::Bytea,
            CqlType::Inet => PgScalar::Inet,
            CqlType::Uuid | CqlType::Timeuuid => PgScalar::Uuid,
            CqlType::Timestamp => PgScalar::Timestamptz,
            CqlType::Date => PgScalar::Date,
            CqlType::Time => PgScalar::Time,
            CqlType::Duration => PgScalar::Interval,
            _ => return None,
        })
    }

    /// The target column type (DESIGN.md's type table): scalars map one to one, a list or set of
    /// scalars becomes an array, a vector of floats `real[]`, everything else `jsonb`.
    pub fn pg_type(&self) -> PgType {
        if let Some(s) = self.pg_scalar() {
            return PgType::from(s);
        }
        match self {
            CqlType::List(e) | CqlType::Set(e) => match e.pg_scalar() {
                Some(s) => PgType::Array(s),
                None => PgType::Jsonb,
            },
            CqlType::Vector { element, .. } => match element.pg_scalar() {
                Some(s) => PgType::Array(s),
                None => PgType::Jsonb,
            },
            _ => PgType::Jsonb,
        }
    }
}

impl From<PgScalar> for PgType {
    fn from(s: PgScalar) -> Self {
        match s {
            PgScalar::Text => PgType::Text,
            PgScalar::Int2 => PgType::Int2,
            PgScalar::Int4 => PgType::Int4,
            PgScalar::Int8 => PgType::Int8,
            PgScalar::Numeric => PgType::Numeric,
            PgScalar::Float4 => PgType::Float4,
            PgScalar::Float8 => PgType::Float8,
            PgScalar::Bool => PgType::Bool,
            PgScalar::Bytea => PgType::Bytea,
            PgScalar::Inet => PgType::Inet,
            PgScalar::Uuid => PgType::Uuid,
            PgScalar::Timestamptz => PgType::Timestamptz,
            PgScalar::Date => PgType::Date,
            PgScalar::Time => PgType::Time,
            PgScalar::Interval => PgType::Interval,
        }
    }
}

impl PgScalar {
    /// SQL name, as used in DDL and in `information_schema` comparisons.
    pub fn sql_name(self) -> &'static str {
        match self {
            PgScalar::Text => "text",
            PgScalar::Int2 => "smallint",
            PgScalar::Int4 => "integer",
            PgScalar::Int8 => "bigint",
            PgScalar::Numeric => "numeric",
            PgScalar::Float4 => "real",
            PgScalar::Float8 => "double precision",
            PgScalar::Bool => "boolean",
            PgScalar::Bytea => "bytea",
            PgScalar::Inet => "inet",
            PgScalar::Uuid => "uuid",
            PgScalar::Timestamptz => "timestamp with time zone",
            PgScalar::Date => "date",
            PgScalar::Time => "time without time zone",
            PgScalar::Interval => "interval",
        }
    }

    /// The type's OID in `pg_type` (fixed for built-in types), needed in binary array headers.
    pub fn oid(self) -> u32 {
        match self {
            PgScalar::Text => 25,
            PgScalar::Int2 => 21,
            PgScalar::Int4 => 23,
            PgScalar::Int8 => 20,
            PgScalar::Numeric => 1700,
            PgScalar::Float4 => 700,
            PgScalar::Float8 => 701,
            PgScalar::Bool => 16,
            PgScalar::Bytea => 17,
            PgScalar::Inet => 869,
            PgScalar::Uuid => 2950,
            PgScalar::Timestamptz => 1184,
            PgScalar::Date => 1082,
            PgScalar::Time => 1083,
            PgScalar::Interval => 1186,
        }
    }
}

impl PgType {
    /// SQL name for DDL; arrays as `element[]`.
    pub fn sql_name(self) -> String {
        match self {
            PgType::Jsonb => "jsonb".to_string(),
            PgType::Array(s) => format!("{}[]", s.sql_name()),
            other => {
                let s: PgScalar = match other {
                    PgType::Text => PgScalar::Text,
                    PgType::Int2 => PgScalar::Int2,
                    PgType::Int4 => PgScalar::Int4,
                    PgType::Int8 => PgScalar::Int8,
                    PgType::Numeric => PgScalar::Numeric,
                    PgType::Float4 => PgScalar::Float4,
                    PgType::Float8 => PgScalar::Float8,
                    PgType::Bool => PgScalar::Bool,
                    PgType::Bytea => PgScalar::Bytea,
                    PgType::Inet => PgScalar::Inet,
                    PgType::Uuid => PgScalar::Uuid,
                    PgType::Timestamptz => PgScalar::Timestamptz,
                    PgType::Date => PgScalar::Date,
                    PgType::Time => PgScalar::Time,
                    PgType::Interval => PgScalar::Interval,
                    PgType::Jsonb | PgType::Array(_) => unreachable!("handled above"),
                };
                s.sql_name().to_string()
            }
        }
    }
}

impl fmt::Display for CqlType {
    /// CQL syntax, as `DESCRIBE` would print it (without `frozen<>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            CqlType::Ascii => "ascii",
            CqlType::BigInt => "bigint",
            CqlType::Blob => "blob",
            CqlType::Boolean => "boolean",
            CqlType::Counter => "counter",
            CqlType::Date => "date",
            CqlType::Decimal => "decimal",
            CqlType::Double => "double",
            CqlType::Duration => "duration",
            CqlType::Float => "float",
            CqlType::Inet => "inet",
            CqlType::Int => "int",
            CqlType::SmallInt => "smallint",
            CqlType::Text => "text",
            CqlType::Time => "time",
            CqlType::Timestamp => "timestamp",
            CqlType::Timeuuid => "timeuuid",
            CqlType::TinyInt => "tinyint",
            CqlType::Uuid => "uuid",
            CqlType::Varint => "varint",
            CqlType::List(e) => return write!(f, "list<{e}>"),
            CqlType::Set(e) => return write!(f, "set<{e}>"),
            CqlType::Map(k, v) => return write!(f, "map<{k}, {v}>"),
            CqlType::Tuple(ts) => {
                write!(f, "tuple<")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{t}")?;
                }
                return write!(f, ">");
            }
            CqlType::Udt { keyspace, name, .. } => return write!(f, "{keyspace}.{name}"),
            CqlType::Vector {
                element,
                dimensions,
            } => return write!(f, "vector<{element}, {dimensions}>"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_table_follows_design() {
        assert_eq!(CqlType::TinyInt.pg_type(), PgType::Int2);
        assert_eq!(CqlType::Counter.pg_type(), PgType::Int8);
        assert_eq!(CqlType::Varint.pg_type(), PgType::Numeric);
        assert_eq!(CqlType::Timeuuid.pg_type(), PgType::Uuid);
        assert_eq!(
            CqlType::List(Box::new(CqlType::Int)).pg_type(),
            PgType::Array(PgScalar::Int4)
        );
        assert_eq!(
            CqlType::Set(Box::new(CqlType::List(Box::new(CqlType::Int)))).pg_type(),
            PgType::Jsonb
        );
        assert_eq!(
            CqlType::Map(Box::new(CqlType::Text), Box::new(CqlType::Int)).pg_type(),
            PgType::Jsonb
        );
        assert_eq!(
            CqlType::Vector {
                element: Box::new(CqlType::Float),
                dimensions: 3
            }
            .pg_type()
            .sql_name(),
            "real[]"
        );
    }

    #[test]
    fn display_is_cql_syntax() {
        let t = CqlType::Map(
            Box::new(CqlType::Text),
            Box::new(CqlType::List(Box::new(CqlType::Int))),
        );
        assert_eq!(t.to_string(), "map<text, list<int>>");
    }
}
