//! `ferry bench http` against a real HTTP server this test starts (Python's standard
//! `http.server`, threading, keep-alive HTTP/1.1), which logs every request it serves: the
//! probe's counts are checked against the server's own log, its method, headers and body against
//! what the server received. Its requests/s against wrk's is a timing comparison, so it lives in
//! the benchmark bench/http, which starts the same server.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

/// The server bench/http also starts; its header comment says what it serves and logs.
const SERVER: &str = include_str!("../../../bench/http_server.py");

/// A running server and the file its request log goes to.
struct Server {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path) -> Server {
        let script = dir.join("server.py");
        std::fs::write(&script, SERVER).unwrap();
        let log = dir.join("requests.log");
        let mut child = Command::new("python3")
            .arg(&script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (the test's HTTP server)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("the server's port");
        let port: u16 = line.trim().parse().expect("a port number");
        // The rest of stdout is the request log: copy it to a file as it comes.
        let mut file = std::fs::File::create(&log).unwrap();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut file);
        });
        Server { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests logged so far.
    fn requests(&self) -> Vec<String> {
        // The copier thread may trail the server by a moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
}

#[test]
fn counts_statuses_and_bytes_match_the_servers_log() {
    let d = bench_dir("ferry_bench_http");
    let server = Server::start(&d);
    let rec = d.join("get.json");
    let out = ferry_ok(&[
        "bench",
        "http",
        &server.url("/blob"),
        "-c",
        "4",
        "-n",
        "400",
        "--out",
        rec.to_str().unwrap(),
    ]);
    assert!(
        out.contains("400 requests") && out.contains("200: 400"),
        "{out}"
    );
    let v = read_record(&rec);
    assert_eq!(v["kind"], "http");
    let s = &v["summary"];
    assert_eq!(s["records"], 400.0);
    assert_eq!(s["errors"], 0.0);
    assert_eq!(v["server"]["status_counts"]["200"], 400);
    // Every body byte counted: 400 × 4096.
    assert_eq!(v["server"]["response_body_bytes"], 400 * 4096);
    for k in [
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
        "records_per_sec",
    ] {
        assert!(s[k].as_f64().unwrap() > 0.0, "{k}: {s}");
    }
    assert!(s["p50_ms"].as_f64() <= s["p99_ms"].as_f64());
    assert!(v["target"].as_str().unwrap().contains("BaseHTTP"), "{v}");
    let log = server.requests();
    assert_eq!(log.len(), 400, "the server saw what the probe counted");
    assert!(log.iter().all(|l| l == "GET /blob 0 -"), "{:?}", &log[..3]);

    // POST with a header and a body: the server checks both and answers 201.
    let rec = d.join("post.json");
    let out = ferry_ok(&[
        "bench",
        "http",
        &server.url("/echo"),
        "-m",
        "POST",
        "-H",
        "X-Ferry: yes",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"probe":"ferry"}"#,
        "--expect-status",
        "201",
        "-c",
        "2",
        "-n",
        "50",
        "--out",
        rec.to_str().unwrap(),
    ]);
    assert!(out.contains("201: 50"), "{out}");
    let v = read_record(&rec);
    assert_eq!(v["parameters"]["header_names"][0], "X-Ferry");
    let log = server.requests();
    assert_eq!(
        log.iter().filter(|l| *l == "POST /echo 17 yes").count(),
        50,
        "{log:?}"
    );

    // A status other than the expected one fails the run (exit 1) and says how many.
    let out = run_ferry(&[
        "bench",
        "http",
        &server.url("/missing"),
        "-n",
        "20",
        "--out",
        d.join("404.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("20 of 20 responses had another status than 2xx (20 × 404)"),
        "{err}"
    );
    // …and passes when that status is the one expected.
    ferry_ok(&[
        "bench",
        "http",
        &server.url("/missing"),
        "-n",
        "20",
        "--expect-status",
        "404",
        "--out",
        d.join("404ok.json").to_str().unwrap(),
    ]);
}

#[test]
fn a_server_that_is_not_there_is_one_line_and_exit_2() {
    let d = bench_dir("ferry_bench_http");
    // Nothing listens on port 1.
    let out = run_ferry(&[
        "bench",
        "http",
        "http://127.0.0.1:1/health",
        "-z",
        "1s",
        "--out",
        d.join("x.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("HTTP: cannot connect to 127.0.0.1:1 (http://127.0.0.1:1/health)"),
        "{err}"
    );
    assert!(!d.join("x.json").exists());
    let out = run_ferry(&["bench", "http", "https://127.0.0.1:1/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is https"));
}
