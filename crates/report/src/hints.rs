//! Bottleneck hints (the seed's Task 5.2): saturation of CPU, memory, disk or the probe client,
//! a low cache hit ratio, a connection limit in sight, tail latency — each with the figure that
//! raised it. Derived from a record when it is read, never stored, so old records gain new
//! hints.

use ferry_stats::{mean, percentile};

use crate::record::RunRecord;

/// Thresholds; each hint's text states the figure and the threshold it crossed.
const CPU_BUSY_PCT: f64 = 85.0;
const SELF_CPU_PCT: f64 = 90.0;
const MEM_USED_PCT: f64 = 90.0;
const DISK_BUSY_PCT: f64 = 80.0;
const CACHE_HIT_RATIO: f64 = 0.99;
const CONNECTIONS_SHARE: f64 = 0.8;
const TAIL_FACTOR: f64 = 10.0;
const GC_TIME_PCT: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    pub probe: String,
    /// `cpu`, `memory`, `disk`, `client`, `cache`, `connections`, `jvm`, `latency`.
    pub resource: &'static str,
    pub message: String,
}

/// The hints for every measurement in a record.
pub fn hints(rec: &RunRecord) -> Vec<Hint> {
    rec.measurements()
        .into_iter()
        .flat_map(measurement_hints)
        .collect()
}

fn measurement_hints(rec: &RunRecord) -> Vec<Hint> {
    let mut out = Vec::new();
    let mut hint = |resource, message: String| {
        out.push(Hint {
            probe: rec.label().to_string(),
            resource,
            message,
        })
    };
    // The first sample covers the sampler's start-up interval; skip it when there are more.
    let hs = if rec.host_samples.len() > 2 {
        &rec.host_samples[1..]
    } else {
        &rec.host_samples[..]
    };
    let series =
        |f: fn(&crate::record::HostSample) -> f64| -> Vec<f64> { hs.iter().map(f).collect() };
    let cpu = series(|s| s.cpu_busy_pct);
    if let (Some(avg), Some(peak)) = (mean(&cpu), percentile(&cpu, 100.0)) {
        if avg >= CPU_BUSY_PCT {
            hint(
                "cpu",
                format!(
                    "CPU saturated: {avg:.0}% busy on average (peak {peak:.0}%) over {} CPUs while the probe ran (threshold {CPU_BUSY_PCT:.0}%); client and server share this machine, so the figures are a floor",
                    rec.host.cpus
                ),
            );
        }
    }
    let own = series(|s| s.self_cpu_pct);
    if let Some(avg) = mean(&own) {
        if avg >= SELF_CPU_PCT {
            hint(
                "client",
                format!("the probe itself used {avg:.0}% of one CPU on average (threshold {SELF_CPU_PCT:.0}%): the client may limit the result"),
            );
        }
    }
    let mem = series(|s| s.mem_used_pct);
    if let Some(peak) = percentile(&mem, 100.0) {
        if peak >= MEM_USED_PCT {
            hint(
                "memory",
                format!("memory {peak:.0}% used at peak (threshold {MEM_USED_PCT:.0}%)"),
            );
        }
    }
    let disk = series(|s| s.disk_busy_pct);
    if let (Some(avg), Some(peak)) = (mean(&disk), percentile(&disk, 100.0)) {
        if avg >= DISK_BUSY_PCT {
            let w = mean(&series(|s| s.disk_write_mb_s)).unwrap_or(0.0);
            let r = mean(&series(|s| s.disk_read_mb_s)).unwrap_or(0.0);
            hint(
                "disk",
                format!("disk busy {avg:.0}% of the time on average (peak {peak:.0}%; {r:.1} MB/s read, {w:.1} MB/s written; threshold {DISK_BUSY_PCT:.0}%)"),
            );
        }
    }
    if let Some(server) = &rec.server {
        let ratio = server
            .pointer("/during/cache_hit_ratio")
            .or_else(|| server.pointer("/database/cache_hit_ratio"))
            .and_then(|v| v.as_f64());
        if let Some(r) = ratio {
            if r < CACHE_HIT_RATIO {
                hint(
                    "cache",
                    format!("cache hit ratio {:.2}% (below {:.0}%): reads go to disk; shared_buffers is {}", r * 100.0, CACHE_HIT_RATIO * 100.0,
                        server.pointer("/settings/shared_buffers").and_then(|v| v.as_str()).unwrap_or("unknown")),
                );
            }
        }
        let conns = server.pointer("/connections").and_then(|v| v.as_f64());
        let max = server.pointer("/settings/max_connections").and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .or(v.as_f64())
        });
        if let (Some(c), Some(m)) = (conns, max) {
            if m > 0.0 && c / m >= CONNECTIONS_SHARE {
                hint(
                    "connections",
                    format!(
                        "{c:.0} of max_connections {m:.0} in use ({:.0}%, threshold {:.0}%)",
                        c / m * 100.0,
                        CONNECTIONS_SHARE * 100.0
                    ),
                );
            }
        }
    }
    if let Some(server) = rec.server.as_ref().filter(|_| rec.kind == "redis") {
        let during = |k: &str| {
            server
                .pointer(&format!("/during/{k}"))
                .and_then(|v| v.as_f64())
        };
        if let Some(n) = during("evicted_keys").filter(|n| *n > 0.0) {
            hint(
                "memory",
                format!(
                    "Redis evicted {n:.0} keys during the run: the data outgrew maxmemory {} (policy {})",
                    server.pointer("/memory/maxmemory_human").and_then(|v| v.as_str()).unwrap_or("?"),
                    server.pointer("/memory/maxmemory_policy").and_then(|v| v.as_str()).unwrap_or("?"),
                ),
            );
        }
        if let Some(r) = during("keyspace_hit_ratio").filter(|r| *r < CACHE_HIT_RATIO) {
            hint(
                "cache",
                format!(
                    "Redis keyspace hit ratio {:.2}% during the run (below {:.0}%): {:.0} GETs found no key",
                    r * 100.0,
                    CACHE_HIT_RATIO * 100.0,
                    during("keyspace_misses").unwrap_or(0.0)
                ),
            );
        }
    }
    if let Some(jvm) = rec.server.as_ref().and_then(|s| s.get("jvm")) {
        let during = |k: &str| {
            jvm.pointer(&format!("/during/{k}"))
                .and_then(|v| v.as_f64())
        };
        if let Some(pct) = during("gc_time_pct").filter(|p| *p > GC_TIME_PCT) {
            hint(
                "jvm",
                format!(
                    "the server's JVM spent {pct:.0}% of the run in GC pauses ({:.0} collections, {:.0} ms; heap {:.0} → {:.0} MB; threshold {GC_TIME_PCT:.0}%): try the seed's G1 settings — a fixed heap (-Xms = -Xmx, large enough for the live set), -XX:+UseG1GC -XX:MaxGCPauseMillis=200 -XX:+UnlockExperimentalVMOptions -XX:G1NewSizePercent=30 -XX:G1MaxNewSizePercent=40 -XX:InitiatingHeapOccupancyPercent=35 (the seed's G1NewCollectionPercentage is not a HotSpot flag; G1NewSizePercent is), and for Trino -XX:G1HeapRegionSize=32M -XX:+ParallelRefProcEnabled -XX:+AlwaysPreTouch",
                    during("gc_count").unwrap_or(0.0),
                    during("gc_ms").unwrap_or(0.0),
                    jvm.pointer("/before/heap_used_mb").and_then(|v| v.as_f64()).unwrap_or(0.0),
                    jvm.pointer("/after/heap_used_mb").and_then(|v| v.as_f64()).unwrap_or(0.0),
                ),
            );
        }
    }
    for prefix in ["", "read_", "write_", "set_", "get_"] {
        let p50 = rec.summary.get(&format!("{prefix}p50_ms"));
        let p99 = rec.summary.get(&format!("{prefix}p99_ms"));
        if let (Some(&p50), Some(&p99)) = (p50, p99) {
            if p50 > 0.0 && p99 / p50 >= TAIL_FACTOR {
                hint(
                    "latency",
                    format!("{prefix}p99 is {:.0}× {prefix}p50 ({p99:.1} ms vs {p50:.1} ms): requests queue behind each other", p99 / p50),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HostFacts, HostSample};

    #[test]
    fn flags_cpu_and_cache_with_figures() {
        let mut rec = RunRecord::new(
            "postgres",
            HostFacts {
                cpus: 2,
                ..Default::default()
            },
            0.0,
        );
        for i in 0..5 {
            rec.host_samples.push(HostSample {
                t_s: i as f64,
                cpu_busy_pct: 97.0,
                mem_used_pct: 40.0,
                ..Default::default()
            });
        }
        rec.server = Some(serde_json::json!({
            "during": {"cache_hit_ratio": 0.9},
            "settings": {"shared_buffers": "128MB", "max_connections": "100"},
            "connections": 90
        }));
        let h = hints(&rec);
        let kinds: Vec<_> = h.iter().map(|h| h.resource).collect();
        assert_eq!(kinds, ["cpu", "cache", "connections"]);
        assert!(h[0].message.contains("97%"));
        assert!(h[1].message.contains("90.00%") && h[1].message.contains("128MB"));
    }

    #[test]
    fn gc_time_over_a_tenth_of_the_run_names_the_g1_flags() {
        let mut rec = RunRecord::new("kafka-produce", HostFacts::default(), 0.0);
        let jvm = |pct: f64| {
            serde_json::json!({"jvm": {"during": {"gc_time_pct": pct, "gc_count": 40, "gc_ms": 900},
                "before": {"heap_used_mb": 200.0}, "after": {"heap_used_mb": 700.0}}})
        };
        rec.server = Some(jvm(9.5));
        assert!(hints(&rec).is_empty());
        rec.server = Some(jvm(18.0));
        let h = hints(&rec);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].resource, "jvm");
        for s in [
            "18%",
            "40 collections",
            "200 → 700 MB",
            "MaxGCPauseMillis=200",
            "G1NewSizePercent=30",
            "InitiatingHeapOccupancyPercent=35",
        ] {
            assert!(h[0].message.contains(s), "{s}: {}", h[0].message);
        }
    }
}
