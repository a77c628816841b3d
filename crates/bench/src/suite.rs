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
    parse_with(text, &[])
}

/// One `--set PROBE.KEY=VALUE`: a setting of one probe of the suite replaced for this run (the
/// day's tuning: the same suite, a documented change).
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub probe: String,
    pub key: String,
    pub value: toml::Value,
}

/// `PROBE.KEY=VALUE`; VALUE is read as TOML (`16`, `true`, `"lz4"`, `[1, 2]`), else as a string.
pub fn parse_override(s: &str) -> Result<Override, String> {
    let (path, raw) = s
        .split_once('=')
        .ok_or_else(|| format!("expected PROBE.KEY=VALUE, got {s:?}"))?;
    let (probe, key) = path
        .trim()
        .split_once('.')
        .ok_or_else(|| format!("expected PROBE.KEY=VALUE, got {s:?}"))?;
    let value = format!("v = {}", raw.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    Ok(Override {
        probe: probe.to_string(),
        key: key.to_string(),
        value,
    })
}

/// Parses a suite with some probes' settings replaced.
pub fn parse_with(text: &str, sets: &[Override]) -> Result<Suite, Error> {
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
        for o in sets.iter().filter(|o| o.probe == name) {
            if ["type", "name", "expect"].contains(&o.key.as_str()) {
                return Err(Error::Spec(format!(
                    "--set {}.{}: only a probe's own settings can be set",
                    o.probe, o.key
                )));
            }
            t.insert(o.key.clone(), o.value.clone());
        }
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
    if let Some(o) = sets
        .iter()
        .find(|o| !out.iter().any(|p: &SuiteProbe| p.name == o.probe))
    {
        return Err(Error::Spec(format!(
            "--set {}.{}: the suite has no probe named {:?} (its probes: {})",
            o.probe,
            o.key,
            o.probe,
            out.iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
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
    fn the_platform_day_suite_holds_every_step_and_the_seeds_expectations() {
        let s = parse(include_str!("../../../bench/suites/platform-day.toml")).unwrap();
        let kinds: Vec<&str> = s.probes.iter().map(|p| probe_kind(&p.probe)).collect();
        for k in [
            "kafka-produce",
            "kafka-consume",
            "trino",
            "ray",
            "postgres",
            "redis",
            "http",
        ] {
            assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
        }
        let exp: Vec<&str> = s
            .probes
            .iter()
            .flat_map(|p| p.expect.iter().map(|e| e.text.as_str()))
            .collect();
        for e in [
            "records_per_sec >= 100k",
            "elapsed_p95_ms < 2000",
            "cpu_tasks_per_sec >= 1000",
            "p99_ms < 10",
        ] {
            assert!(exp.contains(&e), "{e} missing: {exp:?}");
        }
        let Probe::Kafka(k) = &s.probes[0].probe else {
            panic!()
        };
        assert_eq!(
            (k.num_records, k.record_size, k.acks.as_str()),
            (100_000, 1024, "all")
        );
        // The demo's tuning applies to this suite.
        let tuned = parse_with(
            include_str!("../../../bench/suites/platform-day.toml"),
            &[
                parse_override("redis.pipeline=16").unwrap(),
                parse_override("kafka-producer.linger_ms=50").unwrap(),
                parse_override("kafka-producer.compression=lz4").unwrap(),
                parse_override("postgres-tps.concurrency=8").unwrap(),
            ],
        );
        assert!(tuned.is_ok(), "{tuned:?}");
    }

    #[test]
    fn overrides_replace_one_probes_settings() {
        let text = "[[probe]]\ntype = \"redis\"\nname = \"redis\"\npipeline = 1\n[[probe]]\ntype = \"kafka\"\nname = \"k\"\n";
        let sets = vec![
            parse_override("redis.pipeline=16").unwrap(),
            parse_override("k.compression=lz4").unwrap(),
        ];
        let s = parse_with(text, &sets).unwrap();
        let Probe::Redis(r) = &s.probes[0].probe else {
            panic!()
        };
        assert_eq!(r.pipeline, 16);
        let Probe::Kafka(k) = &s.probes[1].probe else {
            panic!()
        };
        assert_eq!(k.compression.as_deref(), Some("lz4"));
        let e = parse_with(text, &[parse_override("nope.pipeline=2").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no probe named \"nope\"") && e.contains("redis, k"),
            "{e}"
        );
        let e = parse_with(text, &[parse_override("redis.pipelines=2").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipelines"), "{e}");
        assert!(parse_override("redis=2").is_err());
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
