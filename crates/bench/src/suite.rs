//! Baseline suites: several probes in one TOML file, each with the expectations the platform
//! team stated in its own terms, run into one `baseline` record.
//!
//! ```toml
//! name = "platform baseline"
//!
//! [[probe]]
//! type = "kafka"                       # kafka | postgres | cassandra | trino | redis | ray | http
//! name = "kafka-producer"              # defaults to the type
//! expect = ["records_per_sec >= 100k"] # METRIC OP VALUE
//! topic = "perf-test-topic"            # …then the probe's own settings, as its flags name them
//! num_records = 100000
//! acks = "all"
//! ```

use ferry_report::expect::{self, Expectation};
use ferry_report::RunRecord;
use serde_json::json;

use crate::{finish_record, start_record, Error, Probe};

#[derive(Debug, Clone)]
pub struct SuiteProbe {
    pub name: String,
    pub probe: Probe,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub probes: Vec<SuiteProbe>,
}

/// Parses a suite; errors name the probe and the key at fault.
pub fn parse(text: &str) -> Result<Suite, Error> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e| Error::Spec(format!("the suite is not valid TOML: {e}")))?;
    let name = match doc.remove("name") {
        Some(toml::Value::String(s)) => s,
        None => "baseline".into(),
        Some(_) => return Err(Error::Spec("suite: name must be a string".into())),
    };
    let probes = match doc.remove("probe") {
        Some(toml::Value::Array(a)) => a,
        _ => {
            return Err(Error::Spec(
                "the suite has no [[probe]] tables; add one per service to measure".into(),
            ))
        }
    };
    if let Some(k) = doc.keys().next() {
        return Err(Error::Spec(format!(
            "suite: unknown key {k:?} (known: name, [[probe]])"
        )));
    }
    let mut out = Vec::new();
    for (i, p) in probes.into_iter().enumerate() {
        let toml::Value::Table(mut t) = p else {
            return Err(Error::Spec(format!("probe {}: not a table", i + 1)));
        };
        let kind = match t.remove("type") {
            Some(toml::Value::String(s)) => s,
            _ => {
                return Err(Error::Spec(format!(
                    "probe {}: missing type = \"kafka\" | \"postgres\" | \"cassandra\" | \"trino\" | \"redis\" | \"ray\" | \"http\"",
                    i + 1
                )))
            }
        };
        let name = match t.remove("name") {
            Some(toml::Value::String(s)) => s,
            _ => kind.clone(),
        };
        let expect = match t.remove("expect") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| Error::Spec(format!("probe {name}: expect holds strings")))
                        .and_then(|s| {
                            expect::parse(s).map_err(|e| Error::Spec(format!("probe {name}: {e}")))
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(Error::Spec(format!(
                    "probe {name}: expect must be a list such as [\"p99_ms < 10\"]"
                )))
            }
        };
        let bad = |e: toml::de::Error| Error::Spec(format!("probe {name}: {}", e.message()));
        let value = toml::Value::Table(t);
        let probe = match kind.as_str() {
            "kafka" => Probe::Kafka(value.try_into().map_err(bad)?),
            "postgres" | "yugabytedb" => Probe::Postgres(value.try_into().map_err(bad)?),
            "cassandra" => Probe::Cassandra(value.try_into().map_err(bad)?),
            "trino" => Probe::Trino(value.try_into().map_err(bad)?),
            "redis" => Probe::Redis(value.try_into().map_err(bad)?),
            "ray" => Probe::Ray(value.try_into().map_err(bad)?),
            "http" => Probe::Http(value.try_into().map_err(bad)?),
            other => {
                return Err(Error::Spec(format!(
                    "probe {name}: unknown type {other:?} (known: kafka, postgres, cassandra, trino, redis, ray, http)"
                )))
            }
        };
        out.push(SuiteProbe {
            name,
            probe,
            expect,
        });
    }
    Ok(Suite { name, probes: out })
}

/// Runs every probe in order into one `baseline` record. A failing probe is recorded with its
/// error and the suite goes on; `on_probe` hears of each finished probe.
pub async fn run(suite: &Suite, mut on_probe: impl FnMut(&RunRecord)) -> RunRecord {
    let (mut record, _) = start_record("baseline", serde_json::Map::new());
    record.name = Some(suite.name.clone());
    record.parameters.insert(
        "probes".into(),
        json!(suite
            .probes
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()),
    );
    for p in &suite.probes {
        let mut r = match crate::run_probe(&p.probe).await {
            Ok(r) => r,
            Err(e) => {
                let (mut r, _) = start_record(probe_kind(&p.probe), serde_json::Map::new());
                r.error = Some(e.to_string());
                finish_record(r)
            }
        };
        r.name = Some(p.name.clone());
        r.expectations = p
            .expect
            .iter()
            .map(|e| expect::check(e, &r.summary))
            .collect();
        on_probe(&r);
        record.probes.push(r);
    }
    let exps = record.probes.iter().flat_map(|p| &p.expectations);
    let met = exps.clone().filter(|e| e.met).count();
    let all = exps.count();
    record
        .summary
        .insert("probes".into(), record.probes.len() as f64);
    record.summary.insert(
        "probes_failed".into(),
        record.probes.iter().filter(|p| p.error.is_some()).count() as f64,
    );
    record.summary.insert("expectations_met".into(), met as f64);
    record
        .summary
        .insert("expectations_missed".into(), (all - met) as f64);
    finish_record(record)
}

fn probe_kind(p: &Probe) -> &'static str {
    match p {
        Probe::Kafka(k) if k.mode == crate::kafka::Mode::Consume => "kafka-consume",
        Probe::Kafka(_) => "kafka-produce",
        Probe::Postgres(_) => "postgres",
        Probe::Cassandra(_) => "cassandra",
        Probe::Trino(_) => "trino",
        Probe::Redis(_) => "redis",
        Probe::Ray(_) => "ray",
        Probe::Http(_) => "http",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_suite_with_expectations() {
        let s = parse(
            r#"
            name = "day 5"
            [[probe]]
            type = "kafka"
            name = "kafka-producer"
            expect = ["records_per_sec >= 100k", "p99_ms < 50"]
            topic = "perf-test-topic"
            num_records = 1000
            [[probe]]
            type = "postgres"
            hosts = ["127.0.0.1:5433"]
            dbname = "ferry"
            duration_s = 2.0
            expect = ["p99_ms < 10ms"]
            [[probe]]
            type = "redis"
            host = "127.0.0.1:6390"
            pipeline = 32
            [[probe]]
            type = "ray"
            num_cpus = 1
            tasks = 20
            "#,
        )
        .unwrap();
        assert_eq!(s.name, "day 5");
        assert_eq!(s.probes.len(), 4);
        assert_eq!(s.probes[0].expect.len(), 2);
        assert_eq!(s.probes[1].name, "postgres");
        let Probe::Kafka(k) = &s.probes[0].probe else {
            panic!()
        };
        assert_eq!((k.num_records, k.acks.as_str()), (1000, "all"));
        let Probe::Redis(r) = &s.probes[2].probe else {
            panic!()
        };
        assert_eq!((r.pipeline, r.host.as_str()), (32, "127.0.0.1:6390"));
        let Probe::Ray(r) = &s.probes[3].probe else {
            panic!()
        };
        assert_eq!((r.num_cpus, r.tasks, r.rounds), (Some(1), 20, 3));
    }

    #[test]
    fn errors_name_the_probe_and_key() {
        let e = parse("[[probe]]\ntype = \"kafka\"\ntopic = \"t\"\nnum_recrods = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("probe kafka") && e.contains("num_recrods"),
            "{e}"
        );
        let e = parse("[[probe]]\ntype = \"memcached\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown type"), "{e}");
        let e = parse("[[probe]]\ntype = \"kafka\"\ntopic = \"t\"\nexpect = [\"fast\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("METRIC OP VALUE"), "{e}");
    }
}
