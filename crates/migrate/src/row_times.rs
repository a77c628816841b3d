//! A row's Cassandra write time and expiry, read beside its columns and carried into target
//! columns (`ferry.writetimeColumn`, `ferry.expiresColumn`), and the catch-up's filter on the
//! write time (`ferry migrate --since`).
//!
//! # What is selected
//! Cassandra keeps a write time (and a TTL) per cell, not per row, and CQL cannot select them
//! for key columns. A scan appends, after the row's columns:
//! - `MAXWRITETIME(c)` of every regular and static column: the newest of its cells (all the
//!   elements of a non-frozen collection; counters have one too);
//! - `TTL(c)` of every regular and static column that is one cell (not a counter, which cannot
//!   have a TTL, nor a non-frozen collection, whose TTL is a list, one per element).
//!
//! # The row's values
//! - **Write time**: the largest of those write times, in microseconds, as `WRITETIME()`
//!   gives them. `None` when none of the columns is set: a table of key columns only, or a row
//!   whose columns are all null.
//! - **Expiry**: when the read was sent (ferry's clock, whole seconds) plus the largest
//!   remaining TTL of the set single-cell columns. `None` ("never expires") when one of them
//!   has no TTL, or none of them is set. Cassandra gives the remaining TTL in whole seconds,
//!   counted from the query's own time, so the expiry is exact to about a second.

use crate::schema::{cql_ident, ColumnKind, SourceColumn, SourceTable};

/// Which of a row's times a scan selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowTimes {
    /// `MAXWRITETIME` of each column: for a write time column, or the catch-up's filter.
    pub writetime: bool,
    /// `TTL` of each single-cell column: for an expiry column.
    pub ttl: bool,
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A column with a write time: any regular or static column.
fn has_writetime(c: &SourceColumn) -> bool {
    matches!(c.kind, ColumnKind::Regular | ColumnKind::Static)
}

/// A column with one TTL: a regular or static column of one cell, not a counter.
fn has_ttl(c: &SourceColumn) -> bool {
    has_writetime(c) && !c.multi_cell && c.ty != crate::cql::CqlType::Counter
}

/// The time selectors a scan appends after the table's columns, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeColumns {
    /// Indices (into the table's columns) of the columns whose write time is selected.
    pub writetime: Vec<usize>,
    /// Indices of the columns whose TTL is selected (after the write times).
    pub ttl: Vec<usize>,
}

/// A row's write time and remaining TTL, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowTime {
    /// Microseconds since the Unix epoch; `None`: no column set.
    pub writetime_us: Option<i64>,
    /// Seconds left; `None`: never expires.
    pub ttl_secs: Option<i32>,
}

impl TimeColumns {
    pub fn of(table: &SourceTable, times: RowTimes) -> Self {
        let pick = |on: bool, f: fn(&SourceColumn) -> bool| -> Vec<usize> {
            if !on {
                return Vec::new();
            }
            table
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| f(c))
                .map(|(i, _)| i)
                .collect()
        };
        TimeColumns {
            writetime: pick(times.writetime, has_writetime),
            ttl: pick(times.ttl, has_ttl),
        }
    }

    /// Cells a row carries after its columns.
    pub fn len(&self) -> usize {
        self.writetime.len() + self.ttl.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The selectors, `MAXWRITETIME("a"), TTL("a")`, to append to a select list.
    pub fn selectors(&self, table: &SourceTable) -> Vec<String> {
        let name = |i: &usize| cql_ident(&table.columns[*i].name);
        self.writetime
            .iter()
            .map(|i| format!("MAXWRITETIME({})", name(i)))
            .chain(self.ttl.iter().map(|i| format!("TTL({})", name(i))))
            .collect()
    }

    /// A row's times from its column cells (`data`, the table's columns) and the time cells
    /// that follow them (`times`, as [`Self::selectors`] orders them).
    pub fn read(&self, data: &[Option<&[u8]>], times: &[Option<&[u8]>]) -> RowTime {
        let (w, t) = times.split_at(self.writetime.len().min(times.len()));
        let writetime_us = w
            .iter()
            .filter_map(|c| c.and_then(|b| <[u8; 8]>::try_from(b).ok()))
            .map(i64::from_be_bytes)
            .max();
        let mut ttl_secs: Option<i32> = None;
        let mut any_set = false;
        for (j, &col) in self.ttl.iter().enumerate() {
            if data.get(col).copied().flatten().is_none() {
                continue;
            }
            any_set = true;
            match t
                .get(j)
                .copied()
                .flatten()
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
            {
                Some(b) => {
                    let s = i32::from_be_bytes(b);
                    ttl_secs = Some(ttl_secs.map_or(s, |m| m.max(s)));
                }
                // A set cell without a TTL: the row lives on.
                None => {
                    return RowTime {
                        writetime_us,
                        ttl_secs: None,
                    }
                }
            }
        }
        RowTime {
            writetime_us,
            ttl_secs: ttl_secs.filter(|_| any_set),
        }
    }
}

impl RowTime {
    /// When the row expires, in microseconds since the Unix epoch, for a read sent at
    /// `asked_secs` (whole seconds since the Unix epoch); `None`: never.
    pub fn expires_us(&self, asked_secs: i64) -> Option<i64> {
        self.ttl_secs
            .map(|s| (asked_secs + i64::from(s)).saturating_mul(1_000_000))
    }
}

/// A binary COPY field for a `timestamptz` of `us` microseconds since the Unix epoch (null for
/// `None`), into `buf`.
pub fn put_timestamptz(buf: &mut impl bytes::BufMut, us: Option<i64>) {
    match us {
        Some(us) => {
            buf.put_i32(8);
            buf.put_i64(us - PG_EPOCH_US);
        }
        None => buf.put_i32(-1),
    }
}

/// Seconds since the Unix epoch, now, by ferry's clock.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql::CqlType;

    fn col(name: &str, ty: CqlType, kind: ColumnKind, multi_cell: bool) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            ty,
            kind,
            multi_cell,
        }
    }

    fn table() -> SourceTable {
        SourceTable {
            keyspace: "ks".into(),
            table: "t".into(),
            columns: vec![
                col("k", CqlType::Int, ColumnKind::PartitionKey, false),
                col(
                    "c",
                    CqlType::Int,
                    ColumnKind::Clustering { descending: false },
                    false,
                ),
                col("s", CqlType::Text, ColumnKind::Static, false),
                col("a", CqlType::Text, ColumnKind::Regular, false),
                col(
                    "l",
                    CqlType::List(Box::new(CqlType::Int)),
                    ColumnKind::Regular,
                    true,
                ),
                col(
                    "fl",
                    CqlType::List(Box::new(CqlType::Int)),
                    ColumnKind::Regular,
                    false,
                ),
            ],
            times: RowTimes::default(),
        }
    }

    #[test]
    fn selects_write_times_of_every_non_key_column_and_ttls_of_single_cells() {
        let t = table();
        let both = TimeColumns::of(
            &t,
            RowTimes {
                writetime: true,
                ttl: true,
            },
        );
        assert_eq!(both.writetime, vec![2, 3, 4, 5]);
        assert_eq!(both.ttl, vec![2, 3, 5]);
        assert_eq!(
            both.selectors(&t),
            vec![
                "MAXWRITETIME(s)",
                "MAXWRITETIME(a)",
                "MAXWRITETIME(l)",
                "MAXWRITETIME(fl)",
                "TTL(s)",
                "TTL(a)",
                "TTL(fl)"
            ]
        );
        assert!(TimeColumns::of(&t, RowTimes::default()).is_empty());
    }

    fn wt(us: i64) -> Vec<u8> {
        us.to_be_bytes().to_vec()
    }
    fn ttl(s: i32) -> Vec<u8> {
        s.to_be_bytes().to_vec()
    }

    #[test]
    fn the_row_write_time_is_the_newest_cell_and_the_ttl_the_longest_unless_one_has_none() {
        let cols = TimeColumns {
            writetime: vec![2, 3],
            ttl: vec![2, 3],
        };
        let set = Some(&b"x"[..]);
        let (w1, w2, t1, t2) = (wt(100), wt(250), ttl(30), ttl(90));
        let data = [None, None, set, set];
        let r = cols.read(&data, &[Some(&w1), Some(&w2), Some(&t1), Some(&t2)]);
        assert_eq!(r.writetime_us, Some(250));
        assert_eq!(r.ttl_secs, Some(90));
        assert_eq!(r.expires_us(1_000), Some(1_090_000_000));
        // One set column without a TTL: the row never expires.
        let r = cols.read(&data, &[Some(&w1), Some(&w2), Some(&t1), None]);
        assert_eq!(r.ttl_secs, None);
        // A null column's (absent) TTL does not count.
        let r = cols.read(
            &[None, None, set, None],
            &[Some(&w1), None, Some(&t1), None],
        );
        assert_eq!((r.writetime_us, r.ttl_secs), (Some(100), Some(30)));
        // Nothing set: no write time, no expiry.
        let r = cols.read(&[None, None, None, None], &[None, None, None, None]);
        assert_eq!((r.writetime_us, r.ttl_secs), (None, None));
    }

    #[test]
    fn timestamptz_fields_count_from_2000() {
        let mut buf = Vec::new();
        put_timestamptz(&mut buf, Some(PG_EPOCH_US + 5));
        assert_eq!(buf, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5]);
        let mut buf = Vec::new();
        put_timestamptz(&mut buf, None);
        assert_eq!(buf, (-1i32).to_be_bytes());
    }
}
