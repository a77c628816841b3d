//! CQL timestamp, date, time and duration: conversion to PostgreSQL's binary forms with range
//! checks, and their text forms for JSON and reject reasons.

use std::fmt::{self, Write};

use super::{signed_vint, Reject};
use crate::cql::CqlType;

/// Milliseconds from 1970-01-01 (CQL's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_UNIX_MS: i64 = 946_684_800_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_UNIX_DAYS: i64 = 10_957;
/// PostgreSQL's `MIN_TIMESTAMP` (4714-11-24 00:00:00 BC) in µs since 2000-01-01, inclusive.
const PG_MIN_TIMESTAMP_US: i64 = -211_813_488_000_000_000;
/// PostgreSQL's `END_TIMESTAMP` (294277-01-01 00:00:00 AD) in µs since 2000-01-01, exclusive.
const PG_END_TIMESTAMP_US: i64 = 9_223_371_331_200_000_000;
/// PostgreSQL's smallest valid `date` (4714-11-24 BC, Julian day 0) in days since 2000-01-01.
const PG_MIN_DATE: i64 = -2_451_545;
/// PostgreSQL's `DATE_END_JULIAN` (5874898-01-01) in days since 2000-01-01, exclusive.
const PG_END_DATE: i64 = 2_147_483_494 - 2_451_545;
/// CQL `date` is an unsigned day count with 1970-01-01 at 2^31.
const CQL_DATE_EPOCH: i64 = 1 << 31;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// CQL timestamp (ms since 1970) → `timestamptz` (µs since 2000); out of range is rejected.
pub(super) fn timestamp_to_pg(ms: i64) -> Result<i64, Reject> {
    // i128: (ms - epoch) * 1000 overflows i64 long before it leaves CQL's range.
    let us = (i128::from(ms) - i128::from(PG_EPOCH_UNIX_MS)) * 1000;
    if us < i128::from(PG_MIN_TIMESTAMP_US) || us >= i128::from(PG_END_TIMESTAMP_US) {
        let mut text = String::new();
        let _ = write_timestamp(&mut text, ms);
        return Err(Reject::new(format!(
            "timestamp {text} ({ms} ms since 1970) is outside PostgreSQL's timestamptz range \
             (4714-11-24 BC to 294276-12-31 AD)"
        )));
    }
    Ok(us as i64)
}

/// CQL date (days, 1970-01-01 = 2^31) → `date` (days since 2000); out of range is rejected.
pub(super) fn date_to_pg(days: u32) -> Result<i32, Reject> {
    let pg = i64::from(days) - CQL_DATE_EPOCH - PG_EPOCH_UNIX_DAYS;
    if !(PG_MIN_DATE..PG_END_DATE).contains(&pg) {
        let mut text = String::new();
        let _ = write_date(&mut text, i64::from(days) - CQL_DATE_EPOCH);
        return Err(Reject::new(format!(
            "date {text} is outside PostgreSQL's date range (4714-11-24 BC to 5874897-12-31 AD)"
        )));
    }
    Ok(pg as i32)
}

/// CQL time (ns since midnight) → `time` (µs); sub-microsecond digits are rejected.
pub(super) fn time_to_pg(ns: i64) -> Result<i64, Reject> {
    check_time(ns)?;
    if ns % 1000 != 0 {
        let mut text = String::new();
        let _ = write_time(&mut text, ns);
        return Err(Reject::new(format!(
            "time {text} has sub-microsecond digits, which PostgreSQL time would lose"
        )));
    }
    Ok(ns / 1000)
}

pub(super) fn check_time(ns: i64) -> Result<(), Reject> {
    if (0..NANOS_PER_DAY).contains(&ns) {
        Ok(())
    } else {
        Err(Reject::malformed(
            &CqlType::Time,
            format_args!("{ns} ns is not within a day"),
        ))
    }
}

/// A CQL duration: months, days and nanoseconds, each with its own sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Duration {
    pub months: i32,
    pub days: i32,
    pub nanos: i64,
}

impl Duration {
    /// Three zig-zag vints: months, days, nanoseconds.
    pub fn decode(v: &[u8]) -> Result<Self, Reject> {
        let ty = &CqlType::Duration;
        if v.is_empty() {
            return Err(super::empty_value(ty));
        }
        let mut rest = v;
        let mut next = || signed_vint(&mut rest).ok_or_else(|| Reject::malformed(ty, "truncated"));
        let months = next()?;
        let days = next()?;
        let nanos = next()?;
        if !rest.is_empty() {
            return Err(Reject::malformed(
                ty,
                format_args!("{} trailing bytes", rest.len()),
            ));
        }
        let narrow = |v: i64, what: &str| {
            i32::try_from(v)
                .map_err(|_| Reject::malformed(ty, format_args!("{what} {v} exceeds 32 bits")))
        };
        Ok(Duration {
            months: narrow(months, "months")?,
            days: narrow(days, "days")?,
            nanos,
        })
    }

    /// The time part in µs for PostgreSQL's interval; sub-microsecond digits are rejected.
    pub fn pg_micros(&self) -> Result<i64, Reject> {
        if self.nanos % 1000 != 0 {
            let mut text = String::new();
            let _ = self.write(&mut text);
            return Err(Reject::new(format!(
                "duration '{text}' has sub-microsecond digits, which PostgreSQL interval would lose"
            )));
        }
        Ok(self.nanos / 1000)
    }

    /// PostgreSQL's interval output (IntervalStyle `postgres`), with up to nine fraction digits.
    pub fn write(&self, w: &mut impl Write) -> fmt::Result {
        let years = self.months / 12;
        let months = self.months % 12;
        let mut is_zero = true;
        let mut is_before = false;
        for (value, unit) in [
            (i64::from(years), "year"),
            (i64::from(months), "mon"),
            (i64::from(self.days), "day"),
        ] {
            if value == 0 {
                continue;
            }
            let sep = if is_zero { "" } else { " " };
            let plus = if is_before && value > 0 { "+" } else { "" };
            let plural = if value != 1 { "s" } else { "" };
            write!(w, "{sep}{plus}{value} {unit}{plural}")?;
            is_before = value < 0;
            is_zero = false;
        }
        if is_zero || self.nanos != 0 {
            let sep = if is_zero { "" } else { " " };
            let sign = if self.nanos < 0 {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            };
            let abs = self.nanos.unsigned_abs();
            let secs = abs / 1_000_000_000;
            write!(
                w,
                "{sep}{sign}{:02}:{:02}:{:02}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )?;
            write_fraction(w, abs % 1_000_000_000)?;
        }
        Ok(())
    }
}

/// `.fffffffff` with trailing zeros dropped; nothing for zero.
fn write_fraction(w: &mut impl Write, nanos: u64) -> fmt::Result {
    if nanos == 0 {
        return Ok(());
    }
    let mut digits = 9;
    let mut n = nanos;
    while n.is_multiple_of(10) {
        n /= 10;
        digits -= 1;
    }
    write!(w, ".{n:0digits$}")
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01 (Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD`; ISO 8601 expanded years outside 0000..=9999 (`+10000`, `-0001`).
pub(super) fn write_date(w: &mut impl Write, days_since_1970: i64) -> fmt::Result {
    let (y, m, d) = civil_from_days(days_since_1970);
    if y < 0 {
        write!(w, "-{:04}", y.unsigned_abs())?;
    } else if y > 9999 {
        write!(w, "+{y}")?;
    } else {
        write!(w, "{y:04}")?;
    }
    write!(w, "-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(super) fn write_timestamp(w: &mut impl Write, ms: i64) -> fmt::Result {
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    write_date(w, days)?;
    let secs = ms_of_day / 1000;
    write!(
        w,
        "T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// `HH:MM:SS[.fffffffff]` (fraction without trailing zeros), PostgreSQL's time output.
pub(super) fn write_time(w: &mut impl Write, ns: i64) -> fmt::Result {
    let secs = ns / 1_000_000_000;
    write!(
        w,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )?;
    write_fraction(w, (ns % 1_000_000_000).unsigned_abs())
}

/// A CQL date (days, 1970-01-01 = 2^31) as text.
pub(super) fn write_cql_date(w: &mut impl Write, days: u32) -> fmt::Result {
    write_date(w, i64::from(days) - CQL_DATE_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> String {
        let mut s = String::new();
        write_timestamp(&mut s, ms).unwrap();
        s
    }

    #[test]
    fn civil_dates_match_chrono_across_eras() {
        // chrono is an independent implementation of the proleptic Gregorian calendar.
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-100_000_000i64..100_000_000)
            .step_by(9_973)
            .chain(-800..800)
        {
            let Some(d) = epoch.checked_add_signed(chrono::TimeDelta::days(days)) else {
                continue;
            };
            let mut s = String::new();
            write_date(&mut s, days).unwrap();
            let year = chrono::Datelike::year(&d);
            let expect = if (0..=9999).contains(&year) {
                d.format("%Y-%m-%d").to_string()
            } else if year < 0 {
                format!("-{:04}{}", -year, d.format("-%m-%d"))
            } else {
                format!("+{year}{}", d.format("-%m-%d"))
            };
            assert_eq!(s, expect, "days {days}");
        }
    }

    #[test]
    fn timestamps_render_iso_utc_with_millis() {
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ts(253_402_300_800_000), "+10000-01-01T00:00:00.000Z");
        assert_eq!(ts(-62_167_219_200_001), "-0001-12-31T23:59:59.999Z");
        // The extremes of CQL's range must not overflow.
        assert!(ts(i64::MIN).starts_with('-'));
        assert!(ts(i64::MAX).starts_with('+'));
    }

    #[test]
    fn timestamp_range_is_postgres_range_exactly() {
        let min_ms = PG_MIN_TIMESTAMP_US / 1000 + PG_EPOCH_UNIX_MS;
        let end_ms = PG_END_TIMESTAMP_US / 1000 + PG_EPOCH_UNIX_MS;
        assert_eq!(timestamp_to_pg(min_ms), Ok(PG_MIN_TIMESTAMP_US));
        assert!(timestamp_to_pg(min_ms - 1).is_err());
        assert_eq!(timestamp_to_pg(end_ms - 1), Ok(PG_END_TIMESTAMP_US - 1000));
        assert!(timestamp_to_pg(end_ms).is_err());
        assert!(timestamp_to_pg(i64::MIN).is_err());
        assert!(timestamp_to_pg(i64::MAX).is_err());
        assert_eq!(ts(min_ms), "-4713-11-24T00:00:00.000Z");
        assert_eq!(ts(end_ms), "+294277-01-01T00:00:00.000Z");
    }

    #[test]
    fn date_range_is_postgres_range_exactly() {
        let cql = |pg: i64| (pg + PG_EPOCH_UNIX_DAYS + CQL_DATE_EPOCH) as u32;
        assert_eq!(date_to_pg(cql(0)), Ok(0));
        assert_eq!(date_to_pg(cql(PG_MIN_DATE)), Ok(PG_MIN_DATE as i32));
        assert!(date_to_pg(cql(PG_MIN_DATE - 1)).is_err());
        assert_eq!(date_to_pg(cql(PG_END_DATE - 1)), Ok(PG_END_DATE as i32 - 1));
        assert!(date_to_pg(cql(PG_END_DATE)).is_err());
        assert!(date_to_pg(0).is_err());
        assert!(date_to_pg(u32::MAX).is_err());
        let mut s = String::new();
        write_cql_date(&mut s, cql(PG_END_DATE - 1)).unwrap();
        assert_eq!(s, "+5874897-12-31");
    }

    #[test]
    fn durations_render_like_postgres() {
        let text = |months, days, nanos| {
            let mut s = String::new();
            Duration {
                months,
                days,
                nanos,
            }
            .write(&mut s)
            .unwrap();
            s
        };
        assert_eq!(text(0, 0, 0), "00:00:00");
        assert_eq!(
            text(14, 3, 14_706_789_000_000),
            "1 year 2 mons 3 days 04:05:06.789"
        );
        assert_eq!(text(-1, 0, 0), "-1 mons");
        assert_eq!(text(0, -2, -1_000), "-2 days -00:00:00.000001");
        assert_eq!(text(-12, 1, 0), "-1 years +1 day");
        assert_eq!(text(0, 0, 90_000_000_000_001), "25:00:00.000000001");
    }
}
