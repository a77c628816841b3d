//! The JVM behind a probe's server (Kafka, Cassandra, Trino), read before and after the probe
//! runs: collections, time in collection pauses, heap used — the figures the seed's Task 5.3
//! (JVM tuning) needs, read from the JVM itself.
//!
//! The server's process is the `java` listening on the probe's port on this machine (the test
//! bed's servers listen on 127.0.0.2 behind a proxy on 127.0.0.1: the port number is what they
//! share). It is read with `jstat -gc` from the JVM's own JDK; a JVM that hides jstat's
//! counters (`-XX:+PerfDisableSharedMem`, in Cassandra's stock options) is read through its
//! JMX beans by a small attach program shipped inside ferry (`JvmGc.java`). A server on another
//! machine has no local process: the record then says so and holds no JVM figures.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_report::RunRecord;
use serde_json::{json, Value};

/// The attach + JMX reader, run with the target JVM's `java` as a single-file program.
const JVM_GC_JAVA: &str = include_str!("JvmGc.java");

/// One reading of a JVM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Collections so far (young + full + concurrent-cycle pauses).
    pub gc_count: u64,
    /// Time in those collections so far.
    pub gc_ms: f64,
    pub heap_used_mb: f64,
    pub heap_committed_mb: f64,
}

/// A JVM being watched around a probe.
#[derive(Debug)]
pub struct Watch {
    pid: u32,
    port: u16,
    bin: PathBuf,
    before: Result<(Reading, &'static str), String>,
}

/// The port of `host:port` or of a URL's authority.
pub fn port_of(addr: &str) -> Option<u16> {
    let a = addr.split("://").last().unwrap_or(addr);
    let a = a.split('/').next().unwrap_or(a);
    let a = a.split(',').next().unwrap_or(a);
    a.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// The `java` process listening on `port` (any local address), from /proc.
pub fn java_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the 10th field.
            let listening = f.get(3) == Some(&"0A");
            let p = f
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if listening && p == Some(port) {
                if let Some(i) = f.get(9) {
                    inodes.push(format!("socket:[{i}]"));
                }
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "java" {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| Path::new(i) == target) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// `jstat -gc` output → a reading (capacities and usages in KB, times in seconds).
pub fn parse_jstat(text: &str) -> Option<Reading> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines.next()?.split_whitespace().collect();
    let vals: Vec<f64> = lines
        .next()?
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0))
        .collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .and_then(|i| vals.get(i))
            .copied()
    };
    let sum = |names: &[&str]| names.iter().filter_map(|n| col(n)).sum::<f64>();
    let count = sum(&["YGC", "FGC", "CGC"]);
    Some(Reading {
        gc_count: count as u64,
        gc_ms: col("GCT")? * 1000.0,
        heap_used_mb: sum(&["S0U", "S1U", "EU", "OU"]) / 1024.0,
        heap_committed_mb: sum(&["S0C", "S1C", "EC", "OC"]) / 1024.0,
    })
}

fn parse_jmx(text: &str) -> Option<Reading> {
    let v: Value = serde_json::from_str(text.lines().last()?.trim()).ok()?;
    let mb = |k: &str| v[k].as_f64().map(|b| b / 1_048_576.0);
    Some(Reading {
        gc_count: v["gc_count"].as_u64()?,
        gc_ms: v["gc_ms"].as_f64()?,
        heap_used_mb: mb("heap_used_bytes")?,
        heap_committed_mb: mb("heap_committed_bytes")?,
    })
}

/// Reads the JVM: jstat first, JMX through attach when jstat cannot see it.
fn read(pid: u32, bin: &Path) -> Result<(Reading, &'static str), String> {
    let tool = |name: &str| {
        let sibling = bin.join(name);
        if sibling.exists() {
            sibling
        } else {
            PathBuf::from(name)
        }
    };
    let jstat = Command::new(tool("jstat"))
        .args(["-gc", &pid.to_string()])
        .output();
    if let Ok(out) = &jstat {
        if out.status.success() {
            if let Some(r) = parse_jstat(&String::from_utf8_lossy(&out.stdout)) {
                return Ok((r, "jstat"));
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("ferry-jvm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let src = dir.join("JvmGc.java");
    std::fs::write(&src, JVM_GC_JAVA).map_err(|e| e.to_string())?;
    let out = Command::new(tool("java"))
        .args(["--add-modules", "jdk.attach"])
        .arg(&src)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("running java: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match parse_jmx(&text) {
        Some(r) if out.status.success() => Ok((r, "jmx")),
        _ => Err(format!(
            "neither jstat nor JMX could read JVM {pid}: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("no output")
        )),
    }
}

impl Watch {
    /// Finds the JVM serving `port` on this machine and reads it; `None` when no local `java`
    /// listens there.
    pub fn start(port: u16) -> Option<Watch> {
        let pid = java_listening_on(port)?;
        let bin = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let before = read(pid, &bin);
        Some(Watch {
            pid,
            port,
            bin,
            before,
        })
    }

    /// Reads the JVM again and puts both readings, and what changed during the run, into the
    /// record: `server.jvm` and the summary's `jvm_*` figures.
    pub fn finish(self, rec: &mut RunRecord) {
        let after = read(self.pid, &self.bin);
        let run_ms = rec.seconds() * 1000.0;
        let reading = |r: &Reading| {
            json!({
                "gc_count": r.gc_count,
                "gc_ms": r.gc_ms,
                "heap_used_mb": r.heap_used_mb,
                "heap_committed_mb": r.heap_committed_mb,
            })
        };
        let mut jvm = json!({"pid": self.pid, "port": self.port});
        match (&self.before, &after) {
            (Ok((b, tool)), Ok((a, _))) => {
                let gcs = a.gc_count.saturating_sub(b.gc_count);
                let gc_ms = (a.gc_ms - b.gc_ms).max(0.0);
                let pct = if run_ms > 0.0 {
                    gc_ms / run_ms * 100.0
                } else {
                    0.0
                };
                jvm["read_with"] = json!(tool);
                jvm["before"] = reading(b);
                jvm["after"] = reading(a);
                jvm["during"] = json!({"gc_count": gcs, "gc_ms": gc_ms, "gc_time_pct": pct});
                let s = &mut rec.summary;
                s.insert("jvm_gc_count".into(), gcs as f64);
                s.insert("jvm_gc_ms".into(), gc_ms);
                s.insert("jvm_gc_time_pct".into(), pct);
                s.insert("jvm_heap_before_mb".into(), b.heap_used_mb);
                s.insert("jvm_heap_after_mb".into(), a.heap_used_mb);
            }
            (Err(e), _) | (_, Err(e)) => jvm["error"] = json!(e),
        }
        let server = rec.server.get_or_insert_with(|| json!({}));
        if let Some(o) = server.as_object_mut() {
            o.insert("jvm".into(), jvm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jstat_gc() {
        let text = "    S0C         S1C         S0U         S1U          EC           EU           OC           OU          MC         MU       CCSC      CCSU     YGC     YGCT     FGC    FGCT     CGC    CGCT       GCT   \n        0.0      1024.0         0.0       852.2      73728.0      64512.0     449536.0     166164.0    45952.0    45064.9    5632.0    5210.5     15     0.171     0     0.000     6     0.018     0.189\n";
        let r = parse_jstat(text).unwrap();
        assert_eq!(r.gc_count, 21);
        assert!((r.gc_ms - 189.0).abs() < 1e-9);
        assert!((r.heap_used_mb - (852.2 + 64512.0 + 166164.0) / 1024.0).abs() < 1e-9);
        assert!((r.heap_committed_mb - (1024.0 + 73728.0 + 449536.0) / 1024.0).abs() < 1e-9);
        assert!(parse_jstat("32341 not found").is_none());
    }

    #[test]
    fn reads_the_jmx_line_and_ports() {
        let r = parse_jmx("{\"gc_count\":408,\"gc_ms\":36333,\"heap_used_bytes\":1048576,\"heap_committed_bytes\":2097152,\"heap_max_bytes\":2097152,\"collectors\":\"G1 Young Generation\"}").unwrap();
        assert_eq!((r.gc_count, r.gc_ms, r.heap_used_mb), (408, 36333.0, 1.0));
        assert_eq!(port_of("127.0.0.1:9092"), Some(9092));
        assert_eq!(port_of("http://127.0.0.1:8080"), Some(8080));
        assert_eq!(port_of("a:9092,b:9093"), Some(9092));
        assert_eq!(port_of("localhost"), None);
    }
}
