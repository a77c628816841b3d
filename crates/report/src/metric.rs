//! Metric names and which way is better. Names carry their unit as a suffix (`_per_sec`, `_ms`,
//! `_pct`, `_mb`), so the direction of a metric ferry has never heard of is still known.

/// Whether a larger value is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
    /// A count or a setting: shown, never judged.
    Neutral,
}

pub const RECORDS_PER_SEC: &str = "records_per_sec";
pub const MB_PER_SEC: &str = "mb_per_sec";
pub const LATENCY_METRICS: [&str; 6] =
    ["avg_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"];

pub fn direction(metric: &str) -> Direction {
    if metric.ends_with("_per_sec") || metric.ends_with("hit_ratio") {
        Direction::HigherIsBetter
    } else if metric.ends_with("_ms") || metric == "seconds" || metric.ends_with("_seconds") {
        Direction::LowerIsBetter
    } else {
        Direction::Neutral
    }
}

/// A short human label.
pub fn label(metric: &str) -> String {
    match metric {
        RECORDS_PER_SEC => "records/s".into(),
        MB_PER_SEC => "MB/s".into(),
        "p999_ms" => "p99.9 ms".into(),
        "avg_ms" => "avg ms".into(),
        m => {
            if let Some(p) = m.strip_suffix("_per_sec") {
                format!("{}/s", p.replace('_', " ").replace("mb", "MB"))
            } else if let Some(p) = m.strip_suffix("_ms") {
                format!("{} ms", p.replace("p999", "p99.9").replace('_', " "))
            } else {
                m.replace('_', " ")
            }
        }
    }
}

/// Sort key so tables show throughput, then latency, then the rest; a phase prefix (`read_`,
/// `write_`) groups a phase's metrics together in the same order.
pub fn rank(metric: &str) -> (u8, String, u8, String) {
    let (prefix, base) = ["read_", "write_", "set_", "get_"]
        .iter()
        .find_map(|p| metric.strip_prefix(p).map(|b| (*p, b)))
        .unwrap_or(("", metric));
    let r = match base {
        RECORDS_PER_SEC | "ops_per_sec" => 0,
        MB_PER_SEC => 1,
        m if m.ends_with("_per_sec") => 2,
        "avg_ms" => 3,
        "p50_ms" => 4,
        "p95_ms" => 5,
        "p99_ms" => 6,
        "p999_ms" => 7,
        "max_ms" => 8,
        m if m.ends_with("_ms") => 9,
        _ => 10,
    };
    // Unprefixed first, then each phase in turn, each ordered by r.
    let group = if r <= 9 { 0 } else { 1 };
    (group, prefix.to_string(), r, metric.to_string())
}

/// A number formatted for people: thousands separators for large values, 3 significant digits
/// for small ones.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a >= 1000.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            format!("-{out}")
        } else {
            out
        }
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions() {
        assert_eq!(direction("records_per_sec"), Direction::HigherIsBetter);
        assert_eq!(direction("read_ops_per_sec"), Direction::HigherIsBetter);
        assert_eq!(direction("p99_ms"), Direction::LowerIsBetter);
        assert_eq!(direction("seconds"), Direction::LowerIsBetter);
        assert_eq!(direction("rows_written"), Direction::Neutral);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_value(1234567.8), "1,234,568");
        assert_eq!(fmt_value(-1234.0), "-1,234");
        assert_eq!(fmt_value(999.4), "999");
        assert_eq!(fmt_value(12.345), "12.3");
        assert_eq!(fmt_value(0.01234), "0.012");
        assert_eq!(label("write_p99_ms"), "write p99 ms");
        assert_eq!(label("read_ops_per_sec"), "read ops/s");
    }
}
