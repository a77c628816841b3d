//! The host: its facts (CPU model and count, memory, OS) and a sampler that reads /proc every
//! interval while a probe runs — CPU, ferry's own CPU, memory, disk and network.
//!
//! Linux only by design (the test bed and the seed's platform are Linux); elsewhere the facts
//! are empty and the sampler records nothing, and the report says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_report::{HostFacts, HostSample};

/// CPU model and count, memory, OS, hostname, kernel.
pub fn facts() -> HostFacts {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let memory_mb = meminfo_kb(&read("/proc/meminfo"), "MemTotal:").unwrap_or(0) / 1024;
    let os = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    HostFacts {
        cpu_model,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_mb,
        os,
        hostname: read("/etc/hostname").trim().to_string(),
        kernel: (!kernel.is_empty()).then_some(kernel),
    }
}

fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Cumulative counters at one instant.
#[derive(Debug, Clone, Default)]
struct Counters {
    cpu_busy: u64,
    cpu_total: u64,
    self_ticks: u64,
    mem_used_pct: f64,
    disk_read_sectors: u64,
    disk_write_sectors: u64,
    /// Per disk: milliseconds with I/O in flight.
    disk_io_ms: Vec<(String, u64)>,
    net_rx: u64,
    net_tx: u64,
    load1: f64,
}

fn read_counters() -> Counters {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut c = Counters::default();
    if let Some(line) = read("/proc/stat").lines().find(|l| l.starts_with("cpu ")) {
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest is inside user)
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        c.cpu_total = total;
        c.cpu_busy = total.saturating_sub(idle);
    }
    // /proc/self/stat fields 14 and 15 (utime, stime) after the parenthesised command name.
    let stat = read("/proc/self/stat");
    if let Some(rest) = stat.rsplit(')').next() {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        c.self_ticks = t(11) + t(12);
    }
    let mem = read("/proc/meminfo");
    if let (Some(total), Some(avail)) = (
        meminfo_kb(&mem, "MemTotal:"),
        meminfo_kb(&mem, "MemAvailable:"),
    ) {
        c.mem_used_pct = 100.0 * total.saturating_sub(avail) as f64 / total.max(1) as f64;
    }
    for line in read("/proc/diskstats").lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 13 || !is_whole_disk(f[2]) {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        c.disk_read_sectors += n(5);
        c.disk_write_sectors += n(9);
        c.disk_io_ms.push((f[2].to_string(), n(12)));
    }
    for line in read("/proc/net/dev").lines().skip(2) {
        let Some((_, rest)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        c.net_rx += f.first().copied().unwrap_or(0);
        c.net_tx += f.get(8).copied().unwrap_or(0);
    }
    c.load1 = read("/proc/loadavg")
        .split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0);
    c
}

/// Whole disks only (partitions would count the same I/O twice); no loop or RAM devices.
fn is_whole_disk(name: &str) -> bool {
    if name.starts_with("loop") || name.starts_with("ram") || name.starts_with("dm-") {
        return false;
    }
    std::path::Path::new(&format!("/sys/block/{name}")).exists()
}

fn sample(prev: &Counters, now: &Counters, secs: f64, t_s: f64, ticks_per_sec: f64) -> HostSample {
    let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
    let secs = secs.max(1e-3);
    let cpu_total = d(prev.cpu_total, now.cpu_total);
    let disk_busy = now
        .disk_io_ms
        .iter()
        .map(|(name, ms)| {
            let before = prev
                .disk_io_ms
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .unwrap_or(*ms);
            d(before, *ms) / (secs * 1000.0) * 100.0
        })
        .fold(0.0, f64::max);
    HostSample {
        t_s,
        cpu_busy_pct: if cpu_total > 0.0 {
            100.0 * d(prev.cpu_busy, now.cpu_busy) / cpu_total
        } else {
            0.0
        },
        self_cpu_pct: 100.0 * d(prev.self_ticks, now.self_ticks) / ticks_per_sec / secs,
        mem_used_pct: now.mem_used_pct,
        disk_read_mb_s: d(prev.disk_read_sectors, now.disk_read_sectors) * 512.0 / 1e6 / secs,
        disk_write_mb_s: d(prev.disk_write_sectors, now.disk_write_sectors) * 512.0 / 1e6 / secs,
        disk_busy_pct: disk_busy.min(100.0),
        net_rx_mb_s: d(prev.net_rx, now.net_rx) / 1e6 / secs,
        net_tx_mb_s: d(prev.net_tx, now.net_tx) / 1e6 / secs,
        load1: now.load1,
    }
}

/// Samples the host on a thread of its own until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<HostSample>>>,
}

impl Sampler {
    /// Starts sampling every `interval`; times are relative to `origin` (the probe's start).
    pub fn start(origin: Instant, interval: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("ferry-host-sampler".into())
            .spawn(move || {
                // USER_HZ is 100 on every Linux architecture ferry targets.
                let ticks_per_sec = 100.0;
                let mut out = Vec::new();
                let mut prev = read_counters();
                let mut prev_t = Instant::now();
                loop {
                    // Sleep in short steps so finish() returns promptly.
                    let due = prev_t + interval;
                    while Instant::now() < due && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20).min(interval));
                    }
                    let now = read_counters();
                    let t = Instant::now();
                    let secs = (t - prev_t).as_secs_f64();
                    if secs >= 0.05 {
                        out.push(sample(
                            &prev,
                            &now,
                            secs,
                            (t - origin).as_secs_f64(),
                            ticks_per_sec,
                        ));
                    }
                    prev = now;
                    prev_t = t;
                    if flag.load(Ordering::Relaxed) {
                        return out;
                    }
                }
            })
            .ok();
        Sampler { stop, handle }
    }

    /// Stops the sampler and returns its samples.
    pub fn finish(mut self) -> Vec<HostSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_and_samples_on_this_machine() {
        let f = facts();
        assert!(f.cpus >= 1);
        assert!(f.memory_mb > 0, "{f:?}");
        let s = Sampler::start(Instant::now(), Duration::from_millis(100));
        // Burn some CPU so ferry's own share is visible.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(350) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        assert!(x != 1);
        let samples = s.finish();
        assert!(samples.len() >= 3, "{samples:?}");
        assert!(samples.iter().any(|s| s.self_cpu_pct > 20.0), "{samples:?}");
        assert!(samples
            .iter()
            .all(|s| (0.0..=100.0).contains(&s.cpu_busy_pct)));
    }
}
