//! Parsing one value by its declared [`Kind`]: the only place that turns the text a user wrote
//! into a typed value. The error text says what was expected; the caller adds key and fix.

use super::registry::Kind;

/// A value that passed its kind's check.
#[derive(Clone, PartialEq)]
pub enum Value {
    Text(String),
    List(Vec<String>),
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Milliseconds, from a Spark duration string.
    DurationMs(u64),
    /// Bytes, from a Spark size string.
    SizeBytes(u64),
    Hosts(Vec<HostEntry>),
    /// The canonical (upper-case) spelling of an enum word.
    Word(&'static str),
}

// Secrets are `Value::Text` too; keep any value out of Debug output to be safe by construction.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Value(…)")
    }
}

/// One `host` or `host:port` entry as written; the port is filled in from the default later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub host: String,
    pub port: Option<u16>,
}

/// Checks `raw` (already trimmed, non-empty) against `kind`.
pub fn parse(kind: &Kind, raw: &str) -> Result<Value, String> {
    match *kind {
        Kind::Text | Kind::Secret | Kind::Path => Ok(Value::Text(raw.to_string())),
        Kind::Name => parse_name(raw).map(|s| Value::Text(s.to_string())),
        Kind::NameList => parse_name_list(raw).map(Value::List),
        Kind::Bool => parse_bool(raw).map(Value::Bool),
        Kind::Int { min, max, .. } => parse_int(raw, min, max).map(Value::Int),
        Kind::Float { min, max } => match raw.parse::<f64>() {
            Ok(f) if (min..=max).contains(&f) => Ok(Value::Float(f)),
            Ok(_) => Err("out of range".into()),
            Err(_) => Err("not a number".into()),
        },
        Kind::SparkDuration => parse_spark_duration_ms(raw).map(Value::DurationMs),
        Kind::SparkSize => parse_spark_size_bytes(raw).map(Value::SizeBytes),
        Kind::Hosts => parse_hosts(raw).map(Value::Hosts),
        Kind::Enum(words) => words
            .iter()
            .find(|w| w.eq_ignore_ascii_case(raw))
            .map(|w| Value::Word(w))
            .ok_or_else(|| "not one of the accepted words".into()),
        Kind::Regex => regex::Regex::new(raw)
            .map(|_| Value::Text(raw.to_string()))
            .map_err(|e| {
                format!(
                    "not a valid regular expression ({})",
                    last_line(&e.to_string())
                )
            }),
    }
}

/// `regex` errors span several lines (pattern, caret, message); the last one says what is wrong.
fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

fn parse_name(raw: &str) -> Result<&str, String> {
    if raw.chars().any(char::is_whitespace) {
        Err("contains spaces".into())
    } else {
        Ok(raw)
    }
}

fn parse_name_list(raw: &str) -> Result<Vec<String>, String> {
    raw.split(',')
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                Err("has an empty entry".to_string())
            } else {
                parse_name(part).map(str::to_string)
            }
        })
        .collect()
}

/// Stricter than Java's `Boolean.parseBoolean`, which reads every word but `true` as false:
/// `maybe` is a mistake worth reporting, not a silent `false`.
fn parse_bool(raw: &str) -> Result<bool, String> {
    if raw.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if raw.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("not true or false".into())
    }
}

fn parse_int(raw: &str, min: i64, max: i64) -> Result<i64, String> {
    // Digit group separators are common in hand-written numbers (100_000); accept `_` only.
    let cleaned: String = raw.chars().filter(|c| *c != '_').collect();
    match cleaned.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(_) => Err("out of range".into()),
        Err(_) if cleaned.parse::<f64>().is_ok() => Err("not a whole number".into()),
        Err(_) => Err("not a number".into()),
    }
}

/// Splits `800s` into (800, "s").
fn number_and_suffix(raw: &str) -> Option<(u64, String)> {
    let digits_end = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let n = raw[..digits_end].parse::<u64>().ok()?;
    Some((n, raw[digits_end..].trim().to_ascii_lowercase()))
}

fn parse_spark_duration_ms(raw: &str) -> Result<u64, String> {
    let (n, suffix) = number_and_suffix(raw).ok_or("not a duration")?;
    // Spark reads a bare number in this family as seconds or milliseconds depending on the key;
    // requiring a unit avoids guessing.
    let ms_per_unit: u64 = match suffix.as_str() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err("has no unit".into()),
        _ => return Err("has an unknown unit".into()),
    };
    n.checked_mul(ms_per_unit).ok_or_else(|| "too large".into())
}

fn parse_spark_size_bytes(raw: &str) -> Result<u64, String> {
    let (n, suffix) = number_and_suffix(raw).ok_or("not a size")?;
    let shift = match suffix.as_str() {
        "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        "" => return Err("has no unit".into()),
        _ => return Err("has an unknown unit".into()),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| "too large".into())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address (several colons, no brackets)
/// is taken as a host without a port.
pub fn parse_host_entry(raw: &str) -> Result<HostEntry, String> {
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{raw}' has '[' without ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("'{raw}' has text after ']'")),
            },
        }
    } else if raw.matches(':').count() == 1 {
        let (h, p) = raw.split_once(':').unwrap_or((raw, ""));
        (h, Some(p))
    } else {
        (raw, None)
    };
    if host.is_empty() {
        return Err(format!("'{raw}' has no host"));
    }
    if host.chars().any(char::is_whitespace) {
        return Err(format!("'{raw}' contains spaces"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => return Err(format!("'{raw}' has port '{p}', not 1 to 65535")),
        },
    };
    Ok(HostEntry {
        host: host.to_string(),
        port,
    })
}

fn parse_hosts(raw: &str) -> Result<Vec<HostEntry>, String> {
    raw.split(',')
        .map(|e| {
            let e = e.trim();
            if e.is_empty() {
                Err("has an empty entry".to_string())
            } else {
                parse_host_entry(e)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, port: Option<u16>) -> HostEntry {
        HostEntry {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn host_entries_with_and_without_ports() {
        assert_eq!(parse_host_entry("db1"), Ok(entry("db1", None)));
        assert_eq!(parse_host_entry("db1:5434"), Ok(entry("db1", Some(5434))));
        assert_eq!(parse_host_entry("[::1]:9042"), Ok(entry("::1", Some(9042))));
        assert_eq!(parse_host_entry("[::1]"), Ok(entry("::1", None)));
        assert_eq!(parse_host_entry("fe80::1"), Ok(entry("fe80::1", None)));
        assert!(parse_host_entry("db1:0").is_err());
        assert!(parse_host_entry("db1:70000").is_err());
        assert!(parse_host_entry("db1:").is_err());
        assert!(parse_host_entry(":5433").is_err());
        assert!(parse_host_entry("[::1]x").is_err());
        assert_eq!(
            parse(&Kind::Hosts, "a, b:1 ,c"),
            Ok(Value::Hosts(vec![
                entry("a", None),
                entry("b", Some(1)),
                entry("c", None)
            ]))
        );
        assert!(parse(&Kind::Hosts, "a,,b").is_err());
    }

    #[test]
    fn ints_are_range_checked() {
        let k = Kind::Int {
            min: 1,
            max: 10,
            unit: "",
        };
        assert_eq!(parse(&k, "10"), Ok(Value::Int(10)));
        assert_eq!(parse(&k, "1_0"), Ok(Value::Int(10)));
        assert_eq!(parse(&k, "0"), Err("out of range".into()));
        assert_eq!(parse(&k, "-5"), Err("out of range".into()));
        assert_eq!(parse(&k, "abc"), Err("not a number".into()));
        assert_eq!(parse(&k, "2.5"), Err("not a whole number".into()));
    }

    #[test]
    fn spark_strings() {
        assert_eq!(
            parse(&Kind::SparkDuration, "800s"),
            Ok(Value::DurationMs(800_000))
        );
        assert_eq!(parse(&Kind::SparkDuration, "0s"), Ok(Value::DurationMs(0)));
        assert_eq!(
            parse(&Kind::SparkDuration, "5min"),
            Ok(Value::DurationMs(300_000))
        );
        assert!(parse(&Kind::SparkDuration, "800").is_err());
        assert_eq!(
            parse(&Kind::SparkSize, "2048m"),
            Ok(Value::SizeBytes(2048 << 20))
        );
        assert_eq!(parse(&Kind::SparkSize, "8g"), Ok(Value::SizeBytes(8 << 30)));
        assert!(parse(&Kind::SparkSize, "8x").is_err());
    }

    #[test]
    fn bools_enums_and_regexes() {
        assert_eq!(parse(&Kind::Bool, "TRUE"), Ok(Value::Bool(true)));
        assert!(parse(&Kind::Bool, "maybe").is_err());
        assert!(parse(&Kind::Bool, "1").is_err());
        assert_eq!(
            parse(&Kind::Enum(&["COPY", "INSERT"]), "copy"),
            Ok(Value::Word("COPY"))
        );
        assert!(parse(&Kind::Enum(&["COPY", "INSERT"]), "UPSERT").is_err());
        assert!(parse(&Kind::Regex, "\\|").is_ok());
        assert!(parse(&Kind::Regex, "(").is_err());
    }
}
