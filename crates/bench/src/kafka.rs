//! The Kafka probe: `kafka-producer-perf-test` and `kafka-consumer-perf-test` in one, on
//! librdkafka (which accepts the Java client's property names).
//!
//! Produce: `num_records` records of `record_size` random bytes, null key (as the Java tool
//! sends), as fast as the client allows or at `throughput` records/s; latency is send() to
//! delivery report, the Java tool's definition. Throughput counts from the first send to the
//! end of the final flush (the Java tool stops its clock after `close()`).
//!
//! Consume: reads `num_records` from the beginning of every partition with no consumer group
//! coordination (assign, not subscribe), as the consumer perf test's fetch figures do.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_report::RunRecord;
use rand::RngCore;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Deserialize;
use serde_json::json;

use crate::recorder::{summarize, Recorder};
use crate::{finish_record, start_record, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Produce,
    Consume,
}

/// Where the probe goes without `--bootstrap`: Kafka's own default port, where
/// `scripts/testbed up` runs its broker.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// The topic without `--topic` (a broker that auto-creates topics makes it; the test bed's does).
pub const DEFAULT_TOPIC: &str = "ferry-bench";

/// What to run, as the CLI flags and a suite's `[[probe]]` table spell it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSpec {
    #[serde(default = "default_bootstrap")]
    pub bootstrap: String,
    #[serde(default = "default_topic")]
    pub topic: String,
    #[serde(default = "default_records")]
    pub num_records: u64,
    #[serde(default = "default_record_size")]
    pub record_size: usize,
    /// `all` (= -1), `1` or `0`.
    #[serde(default = "default_acks")]
    pub acks: String,
    /// librdkafka's and Java's default is 5 ms; pinned so both tools run alike.
    #[serde(default = "default_linger")]
    pub linger_ms: u64,
    /// Bytes per partition batch; unset = librdkafka's default (1 MB).
    #[serde(default)]
    pub batch_size: Option<u64>,
    /// none, gzip, snappy, lz4, zstd.
    #[serde(default)]
    pub compression: Option<String>,
    /// Records/s ceiling; unset or ≤ 0 = unthrottled (the Java tool's `--throughput -1`).
    #[serde(default)]
    pub throughput: Option<f64>,
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Extra client properties (`key=value`), passed through as given.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_bootstrap() -> String {
    DEFAULT_BOOTSTRAP.into()
}
fn default_topic() -> String {
    DEFAULT_TOPIC.into()
}
fn default_records() -> u64 {
    100_000
}
fn default_record_size() -> usize {
    1024
}
fn default_acks() -> String {
    "all".into()
}
fn default_linger() -> u64 {
    5
}
fn default_mode() -> Mode {
    Mode::Produce
}

impl KafkaSpec {
    fn parameters(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = json!({
            "bootstrap": self.bootstrap,
            "topic": self.topic,
            "num_records": self.num_records,
            "record_size": self.record_size,
            "acks": self.acks,
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_size,
            "compression": self.compression.clone().unwrap_or_else(|| "none".into()),
            "throughput": self.throughput.filter(|t| *t > 0.0),
            "mode": match self.mode { Mode::Produce => "produce", Mode::Consume => "consume" },
            "properties": self.properties,
        });
        v.as_object().cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), Error> {
        if !matches!(self.acks.as_str(), "all" | "-1" | "1" | "0") {
            return Err(Error::Spec(format!(
                "acks must be all, 1 or 0 (got {:?})",
                self.acks
            )));
        }
        if self.num_records == 0 || self.record_size == 0 {
            return Err(Error::Spec(
                "num_records and record_size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Collects delivery reports: one (send time, delivery time) pair per record.
struct DeliveryLog {
    origin: Instant,
    recorder: Mutex<Recorder>,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    /// Microseconds from the origin to the send() call.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        let done = Instant::now();
        let mut rec = self.recorder.lock().expect("delivery log lock");
        match result {
            Ok(_) => {
                let issued = self.origin + Duration::from_micros(sent_us as u64);
                rec.record(issued, done);
            }
            Err((e, _)) => {
                rec.errors += 1;
                let mut first = self.first_error.lock().expect("error lock");
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
    }
}

fn client_config(spec: &KafkaSpec) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &spec.bootstrap)
        .set("client.id", "ferry-bench");
    for (k, v) in &spec.properties {
        c.set(k, v);
    }
    c
}

/// Runs the probe and returns its run record.
pub fn run(spec: &KafkaSpec) -> Result<RunRecord, Error> {
    spec.validate()?;
    match spec.mode {
        Mode::Produce => produce(spec),
        Mode::Consume => consume(spec),
    }
}

fn produce(spec: &KafkaSpec) -> Result<RunRecord, Error> {
    let mut cfg = client_config(spec);
    cfg.set("acks", &spec.acks)
        .set("linger.ms", spec.linger_ms.to_string())
        .set(
            "compression.type",
            spec.compression.as_deref().unwrap_or("none"),
        );
    if let Some(b) = spec.batch_size {
        cfg.set("batch.size", b.to_string());
    }
    let (mut record, started) = start_record("kafka-produce", spec.parameters());
    record.target = Some(format!("Kafka at {} topic {}", spec.bootstrap, spec.topic));
    let log = DeliveryLog {
        origin: started,
        recorder: Mutex::new(Recorder::new(started)),
        first_error: Mutex::new(None),
    };
    let producer: ThreadedProducer<DeliveryLog> = cfg.create_with_context(log)?;
    // Fetch the topic's metadata first (creating it when the broker auto-creates) so the
    // clock does not include the first metadata round trip, as the Java tool's does not.
    producer
        .client()
        .fetch_metadata(Some(&spec.topic), Timeout::After(Duration::from_secs(30)))?;
    let mut payload = vec![0u8; spec.record_size];
    rand::rng().fill_bytes(&mut payload);
    let sampler = crate::host::Sampler::start(started, crate::SAMPLE_INTERVAL);
    let t0 = Instant::now();
    let rate = spec.throughput.filter(|t| *t > 0.0);
    for i in 0..spec.num_records {
        if let Some(rate) = rate {
            let due = t0 + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let sent_us = (Instant::now() - started).as_micros() as usize;
        let mut rec: BaseRecord<'_, (), [u8], usize> =
            BaseRecord::with_opaque_to(&spec.topic, sent_us).payload(&payload[..]);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The local queue is full: wait for deliveries to drain it.
                    producer.poll(Duration::from_millis(1));
                    rec = r;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Timeout::After(Duration::from_secs(300)))?;
    let elapsed = t0.elapsed();
    let host_samples = sampler.finish();
    let ctx = producer.context();
    let recorder = std::mem::replace(
        &mut *ctx.recorder.lock().expect("delivery log lock"),
        Recorder::new(started),
    );
    let first_error = ctx.first_error.lock().expect("error lock").take();
    // Windows are relative to the first send; shift the ops' clock to it.
    let shift = (t0 - started).as_micros() as u64;
    let ops: Vec<_> = recorder
        .ops
        .iter()
        .map(|o| crate::recorder::Op {
            done_us: o.done_us.saturating_sub(shift),
            latency_us: o.latency_us,
        })
        .collect();
    let (mut summary, samples) = summarize(&ops, elapsed, spec.record_size as f64, "", true);
    summary.insert("errors".into(), recorder.errors as f64);
    summary.insert("seconds".into(), elapsed.as_secs_f64());
    record.summary = summary;
    record.sample_unit = Some("window".into());
    record.samples = samples;
    record.host_samples = host_samples;
    if recorder.errors > 0 {
        record.error = Some(format!(
            "{} of {} records failed: {}",
            recorder.errors,
            spec.num_records,
            first_error.unwrap_or_default()
        ));
    }
    Ok(finish_record(record))
}

fn consume(spec: &KafkaSpec) -> Result<RunRecord, Error> {
    let mut cfg = client_config(spec);
    cfg.set("group.id", format!("ferry-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let (mut record, started) = start_record("kafka-consume", spec.parameters());
    record.target = Some(format!("Kafka at {} topic {}", spec.bootstrap, spec.topic));
    let consumer: BaseConsumer = cfg.create()?;
    let md = consumer.fetch_metadata(Some(&spec.topic), Timeout::After(Duration::from_secs(30)))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == spec.topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(Error::Spec(format!(
            "topic {} has no partitions at {}; produce to it first (ferry bench kafka --topic {})",
            spec.topic, spec.bootstrap, spec.topic
        )));
    }
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(&spec.topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let sampler = crate::host::Sampler::start(started, crate::SAMPLE_INTERVAL);
    let t0 = Instant::now();
    let mut rec = Recorder::new(t0);
    let (mut bytes, mut n) = (0u64, 0u64);
    let mut last_msg = Instant::now();
    let idle_limit = Duration::from_secs(10);
    while n < spec.num_records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                bytes += m.payload_len() as u64;
                n += 1;
                rec.record(now, now);
                last_msg = now;
            }
            Some(Err(e)) => return Err(e.into()),
            None if last_msg.elapsed() > idle_limit => break,
            None => {}
        }
    }
    // A short topic ends in an idle wait; the clock stops at the last record.
    let elapsed = if n < spec.num_records {
        last_msg - t0
    } else {
        t0.elapsed()
    };
    let host_samples = sampler.finish();
    let avg_size = if n > 0 { bytes as f64 / n as f64 } else { 0.0 };
    let (mut summary, samples) = summarize(&rec.ops, elapsed, avg_size, "", false);
    summary.insert("seconds".into(), elapsed.as_secs_f64());
    summary.insert("mb".into(), bytes as f64 / 1e6);
    record.summary = summary;
    record.sample_unit = Some("window".into());
    record.samples = samples;
    record.host_samples = host_samples;
    if n < spec.num_records {
        record.error = Some(format!(
            "only {n} of {} records arrived within {}s of the last one (the topic holds fewer)",
            spec.num_records,
            idle_limit.as_secs()
        ));
    }
    Ok(finish_record(record))
}
