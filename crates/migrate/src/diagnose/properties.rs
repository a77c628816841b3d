//! The recommended properties file: the user's file as it is — comments, order, every key — with
//! the recommended values put in place, and recommended keys the file lacks appended under a
//! comment that says where they came from.

use std::collections::BTreeMap;

/// The key of a `key=value` / `key: value` / `key value` line, if the line is one (not a
/// comment, not blank, not a continuation of the previous line).
fn line_key(line: &str) -> Option<(&str, usize)> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
        return None;
    }
    let start = line.len() - t.len();
    let end = t
        .char_indices()
        .find(|&(_, c)| c == '=' || c == ':' || c.is_whitespace())
        .map_or(t.len(), |(i, _)| i);
    Some((&t[..end], start + end))
}

/// `text` with `recommended` applied. A key set twice is changed where it is set last (that is
/// the value that counts); values continued over several lines are replaced whole.
pub fn rewrite(text: &str, recommended: &BTreeMap<String, String>, header: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    // Which lines start a key, skipping continuation lines (a line ending in an odd number of
    // backslashes continues on the next).
    let mut starts: Vec<Option<(String, usize)>> = vec![None; lines.len()];
    let mut continued = false;
    for (i, line) in lines.iter().enumerate() {
        if !continued {
            starts[i] = line_key(line).map(|(k, _)| (k.to_string(), i));
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        continued = trailing % 2 == 1 && (continued || starts[i].is_some());
    }
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, i) in starts.iter().flatten() {
        last.insert(k.as_str(), *i);
    }
    let mut out = String::new();
    let mut skip_continuation = false;
    for (i, line) in lines.iter().enumerate() {
        if skip_continuation {
            let trailing = line.len() - line.trim_end_matches('\\').len();
            skip_continuation = trailing % 2 == 1;
            continue;
        }
        match &starts[i] {
            Some((k, _)) if last.get(k.as_str()) == Some(&i) && recommended.contains_key(k) => {
                let (_, key_end) = line_key(line).expect("a key line");
                let new = &recommended[k];
                let old = line[key_end..]
                    .trim_start_matches([' ', '\t'])
                    .trim_start_matches(['=', ':'])
                    .trim();
                if old != new {
                    out.push_str(&format!("# ferry diagnose: was {k}={old}\n"));
                }
                out.push_str(&line[..key_end]);
                out.push('=');
                out.push_str(new);
                out.push('\n');
                let trailing = line.len() - line.trim_end_matches('\\').len();
                skip_continuation = trailing % 2 == 1;
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let missing: Vec<(&String, &String)> = recommended
        .iter()
        .filter(|(k, _)| !last.contains_key(k.as_str()))
        .collect();
    if !missing.is_empty() {
        out.push_str(&format!("\n# {header}\n"));
        for (k, v) in missing {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_values_in_place_and_keeps_everything_else() {
        let text = "# source\ncassandra.host=10.0.0.1\ncassandra.fetchSizeInRows = 1000\n\n! old comment\nyugabyte.host: a,b\n";
        let out = rewrite(
            text,
            &rec(&[
                ("cassandra.fetchSizeInRows", "5000"),
                ("yugabyte.host", "a,b,c"),
            ]),
            "added",
        );
        assert_eq!(
            out,
            "# source\ncassandra.host=10.0.0.1\n# ferry diagnose: was cassandra.fetchSizeInRows=1000\ncassandra.fetchSizeInRows=5000\n\n! old comment\n# ferry diagnose: was yugabyte.host=a,b\nyugabyte.host=a,b,c\n"
        );
    }

    #[test]
    fn appends_missing_keys_and_changes_the_last_of_a_repeated_key() {
        let text = "a=1\na=2\n";
        let out = rewrite(text, &rec(&[("a", "3"), ("b", "4")]), "by diagnose");
        assert_eq!(
            out,
            "a=1\n# ferry diagnose: was a=2\na=3\n\n# by diagnose\nb=4\n"
        );
    }

    #[test]
    fn a_continued_value_is_replaced_whole() {
        let text = "yugabyte.host=a,\\\n   b\nx=1\n";
        let out = rewrite(text, &rec(&[("yugabyte.host", "a,b,c")]), "h");
        assert!(out.ends_with("yugabyte.host=a,b,c\nx=1\n"), "{out}");
    }

    #[test]
    fn an_unchanged_value_gets_no_comment() {
        assert_eq!(rewrite("a=1\n", &rec(&[("a", "1")]), "h"), "a=1\n");
    }
}
