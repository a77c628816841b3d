//! Expectations a suite states in the seed's own terms — "Kafka: 100k msgs/sec baseline",
//! "Database: <10ms query latency" — written as `METRIC OP VALUE`, e.g. `records_per_sec >= 100k`
//! or `p99_ms < 10`, and checked against a run's summary.

use crate::record::{ExpectationResult, Metrics};

#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub text: String,
    pub metric: String,
    pub op: Op,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ge,
    Gt,
    Le,
    Lt,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
        }
    }

    fn holds(self, actual: f64, threshold: f64) -> bool {
        match self {
            Op::Ge => actual >= threshold,
            Op::Gt => actual > threshold,
            Op::Le => actual <= threshold,
            Op::Lt => actual < threshold,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("expectation {text:?}: {why} (write it as METRIC OP VALUE, e.g. \"records_per_sec >= 100k\" or \"p99_ms < 10\")")]
pub struct ExpectationError {
    pub text: String,
    pub why: String,
}

/// Parses `METRIC OP VALUE`; VALUE may end in k/K (×1e3) or m/M (×1e6), or in a unit that
/// repeats the metric's (`10ms` for a `_ms` metric).
pub fn parse(text: &str) -> Result<Expectation, ExpectationError> {
    let err = |why: &str| ExpectationError {
        text: text.to_string(),
        why: why.to_string(),
    };
    let ops = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)];
    let (pos, op_str, op) = ops
        .iter()
        .filter_map(|(s, op)| text.find(s).map(|p| (p, *s, *op)))
        .min_by_key(|(p, s, _)| (*p, usize::MAX - s.len()))
        .ok_or_else(|| err("no comparison (>=, >, <=, <)"))?;
    let metric = text[..pos].trim();
    let value = text[pos + op_str.len()..].trim();
    if metric.is_empty()
        || !metric
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(err("the metric must be a name such as records_per_sec"));
    }
    let value = value.strip_suffix("ms").unwrap_or(value).trim();
    let (num, mult) = match value.chars().last() {
        Some('k' | 'K') => (&value[..value.len() - 1], 1e3),
        Some('m' | 'M') => (&value[..value.len() - 1], 1e6),
        _ => (value, 1.0),
    };
    let threshold: f64 = num
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| err("the value is not a number"))?;
    Ok(Expectation {
        text: text.trim().to_string(),
        metric: metric.to_string(),
        op,
        threshold: threshold * mult,
    })
}

/// Checks an expectation against a summary. A missing metric is a miss.
pub fn check(e: &Expectation, summary: &Metrics) -> ExpectationResult {
    let actual = summary.get(&e.metric).copied();
    ExpectationResult {
        expect: e.text.clone(),
        metric: e.metric.clone(),
        op: e.op.as_str().to_string(),
        threshold: e.threshold,
        actual,
        met: actual.is_some_and(|a| e.op.holds(a, e.threshold)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seeds_terms() {
        let e = parse("records_per_sec >= 100k").unwrap();
        assert_eq!(
            (e.metric.as_str(), e.op, e.threshold),
            ("records_per_sec", Op::Ge, 1e5)
        );
        let e = parse("p99_ms<10ms").unwrap();
        assert_eq!(
            (e.metric.as_str(), e.op, e.threshold),
            ("p99_ms", Op::Lt, 10.0)
        );
        let e = parse("mb_per_sec > 1.5M").unwrap();
        assert_eq!(e.threshold, 1.5e6);
        assert!(parse("records_per_sec about 5").is_err());
        assert!(parse("records/s >= 5").is_err());
        assert!(parse("p99_ms < fast").is_err());
    }

    #[test]
    fn checks() {
        let s: Metrics = [("p99_ms".to_string(), 12.0)].into();
        assert!(!check(&parse("p99_ms < 10").unwrap(), &s).met);
        assert!(check(&parse("p99_ms <= 12").unwrap(), &s).met);
        let missing = check(&parse("records_per_sec > 1").unwrap(), &s);
        assert!(!missing.met && missing.actual.is_none());
    }
}
