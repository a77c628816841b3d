//! The HTTP probe: requests/s and latency percentiles against one URL, as wrk and oha report
//! them — for the seed's web services (DolphinScheduler's API, Superset, Kong).
//!
//! `concurrency` keep-alive HTTP/1.1 connections each send one request, read the whole
//! response, and send the next, for `duration_s` or until `requests` were sent over all
//! connections (closed-loop, as wrk and oha do). A request's latency runs from its write to
//! the last byte of its response. A response whose status is not the expected one (any 2xx
//! unless `expect_status` is given) is counted and timed like any other, and the run is then
//! marked failed with the count; a transport error (refused, reset, timeout) is counted, the
//! connection reopened, and the run goes on — and is marked failed too, with the first error. The first connection is opened before the clock
//! starts, so a server that is not there is a one-line error, not a run of errors.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_report::RunRecord;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;

use crate::recorder::{summarize, Recorder};
use crate::{finish_record, start_record, Error};

fn default_method() -> String {
    "GET".into()
}
fn default_concurrency() -> usize {
    10
}
fn default_timeout() -> f64 {
    30.0
}

/// What to load and how hard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `http://host:port/path?query`.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// `Name: value`, sent with every request.
    #[serde(default)]
    pub headers: Vec<String>,
    /// The request body (sent with every request).
    #[serde(default)]
    pub body: Option<String>,
    /// Connections, each with one request in flight.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Run this long…
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// …or send this many requests over all connections (10 s when neither is given).
    #[serde(default)]
    pub requests: Option<u64>,
    /// The status every response must have; any 2xx when unset.
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Give up on one request after this long (counted as an error).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

/// The parts of the URL and request every connection reuses.
struct Target {
    addr: String,
    host_header: String,
    path: Uri,
    method: Method,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    body: Bytes,
}

impl HttpSpec {
    fn parameters(&self) -> Map<String, Value> {
        // Header values may carry credentials (Authorization, API keys): only names are kept.
        let header_names: Vec<&str> = self
            .headers
            .iter()
            .map(|h| h.split(':').next().unwrap_or("").trim())
            .collect();
        let v = json!({
            "url": self.url,
            "method": self.method,
            "header_names": header_names,
            "body_bytes": self.body.as_ref().map(|b| b.len()),
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "expect_status": self.expect_status,
            "timeout_s": self.timeout_s,
        });
        v.as_object().cloned().unwrap_or_default()
    }

    /// Checks the settings and parses what every request reuses.
    fn target(&self) -> Result<Target, Error> {
        if self.concurrency == 0 {
            return Err(Error::Spec("http: concurrency must be at least 1".into()));
        }
        if self.requests == Some(0) {
            return Err(Error::Spec("http: requests must be at least 1".into()));
        }
        if self.duration_s.is_some_and(|d| d.is_nan() || d <= 0.0)
            || self.timeout_s.is_nan()
            || self.timeout_s <= 0.0
        {
            return Err(Error::Spec(
                "http: the duration and timeout must be positive".into(),
            ));
        }
        if self.duration_s.is_some() && self.requests.is_some() {
            return Err(Error::Spec(
                "http: give a duration or a number of requests, not both".into(),
            ));
        }
        if let Some(s) = self.expect_status.filter(|s| !(100..=599).contains(s)) {
            return Err(Error::Spec(format!(
                "http: expected status {s} is not an HTTP status (100–599)"
            )));
        }
        let uri: Uri = self.url.parse().map_err(|e| {
            Error::Spec(format!(
                "http: {:?} is not a URL ({e}); write it as http://host:port/path",
                self.url
            ))
        })?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(Error::Spec(format!(
                    "http: {} is https; this probe speaks plain HTTP/1.1 — point it at the service's http port (inside the cluster, or through kubectl port-forward)",
                    self.url
                )))
            }
            _ => {
                return Err(Error::Spec(format!(
                    "http: {:?} has no http:// scheme; write it as http://host:port/path",
                    self.url
                )))
            }
        }
        let host = uri
            .host()
            .ok_or_else(|| Error::Spec(format!("http: {:?} names no host", self.url)))?;
        let port = uri.port_u16().unwrap_or(80);
        let host_header = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let path: Uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e| Error::Spec(format!("http: the URL's path: {e}")))?;
        let method = Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::Spec(format!("http: {:?} is not a method", self.method)))?;
        let mut headers = Vec::new();
        for h in &self.headers {
            let (name, value) = h.split_once(':').ok_or_else(|| {
                Error::Spec(format!(
                    "http: header {:?} has no colon; write it as \"Name: value\"",
                    h.split(':').next().unwrap_or(h)
                ))
            })?;
            let name =
                hyper::header::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                    Error::Spec(format!("http: {:?} is not a header name", name.trim()))
                })?;
            let value = hyper::header::HeaderValue::from_str(value.trim()).map_err(|_| {
                Error::Spec(format!("http: the value of header {name} is not valid"))
            })?;
            headers.push((name, value));
        }
        Ok(Target {
            addr: format!(
                "{}:{port}",
                host.trim_start_matches('[').trim_end_matches(']')
            ),
            host_header,
            path,
            method,
            headers,
            body: Bytes::from(self.body.clone().unwrap_or_default()),
        })
    }
}

impl Target {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.path.clone())
            .header(hyper::header::HOST, &self.host_header);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body.clone()))
            .expect("parts were validated")
    }
}

/// One keep-alive connection. Its driver (hyper's connection future) is polled by the worker's
/// own task alongside each request, not spawned: a response then wakes one task, not two across
/// threads, which keeps the client's cost per request near wrk's on a busy machine.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

async fn connect(t: &Target, timeout: Duration) -> Result<Conn, String> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(&t.addr))
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs_f64()))?
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (send, driver) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Conn {
        send,
        driver: Box::pin(driver),
    })
}

/// One request on a connection: status, body bytes, the Server header; and whether the
/// connection is still usable.
async fn exchange(c: &mut Conn, t: &Target) -> (Result<(u16, u64, Option<String>), String>, bool) {
    let Conn { send, driver } = c;
    let req = async {
        send.ready().await?;
        let resp = send.send_request(t.request()).await?;
        let status = resp.status().as_u16();
        let server = resp
            .headers()
            .get(hyper::header::SERVER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            if let Some(d) = frame?.data_ref() {
                n += d.len() as u64;
            }
        }
        Ok::<_, hyper::Error>((status, n, server))
    };
    tokio::pin!(req);
    tokio::select! {
        biased;
        r = &mut req => {
            let alive = r.is_ok();
            (r.map_err(|e| e.to_string()), alive)
        }
        d = driver.as_mut() => match d {
            // The server closed the connection (HTTP/1.0, `Connection: close`) after its
            // response: the response is complete in the body's buffer.
            Ok(()) => (req.await.map_err(|e| e.to_string()), false),
            Err(e) => (Err(e.to_string()), false),
        },
    }
}

/// One connection's tally.
struct Worker {
    rec: Recorder,
    body_bytes: u64,
    /// Status code → responses.
    statuses: std::collections::BTreeMap<u16, u64>,
    first_error: Option<String>,
    server: Option<String>,
}

fn fail(w: &mut Worker, e: String) {
    w.rec.errors += 1;
    w.first_error.get_or_insert(e);
}

/// When to stop issuing requests.
enum Stop {
    At(Instant),
    /// Tickets: a request is sent only when its ticket is below the total.
    Count(Arc<AtomicU64>, u64),
}

impl Stop {
    fn another(&self) -> bool {
        match self {
            Stop::At(t) => Instant::now() < *t,
            Stop::Count(n, total) => n.fetch_add(1, Ordering::Relaxed) < *total,
        }
    }
}

async fn worker(
    t: Arc<Target>,
    mut conn: Option<Conn>,
    stop: Arc<Stop>,
    origin: Instant,
    timeout: Duration,
) -> Worker {
    let mut w = Worker {
        rec: Recorder::new(origin),
        body_bytes: 0,
        statuses: Default::default(),
        first_error: None,
        server: None,
    };
    while stop.another() {
        let c = match conn.as_mut() {
            Some(c) if !c.send.is_closed() => c,
            _ => match connect(&t, timeout).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    fail(&mut w, format!("connect: {e}"));
                    conn = None;
                    // A refused connection returns at once: do not spin on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let issued = Instant::now();
        match tokio::time::timeout(timeout, exchange(c, &t)).await {
            Ok((Ok((status, n, server)), alive)) => {
                w.rec.record(issued, Instant::now());
                w.body_bytes += n;
                *w.statuses.entry(status).or_default() += 1;
                if w.server.is_none() {
                    w.server = server;
                }
                if !alive {
                    conn = None;
                }
            }
            Ok((Err(e), _)) => {
                fail(&mut w, e);
                conn = None;
            }
            Err(_) => {
                fail(
                    &mut w,
                    format!("no response within {} s", timeout.as_secs_f64()),
                );
                conn = None;
            }
        }
    }
    w
}

pub async fn run(spec: &HttpSpec) -> Result<RunRecord, Error> {
    let t = Arc::new(spec.target()?);
    let timeout = Duration::from_secs_f64(spec.timeout_s);
    // Every connection opened before the clock starts (as wrk does), so the first request of each
    // is not charged with its TCP connect; the first failure is the one-line error.
    let mut conns = Vec::with_capacity(spec.concurrency);
    for _ in 0..spec.concurrency {
        conns.push(connect(&t, timeout).await.map_err(|e| {
            Error::Http(format!(
                "cannot connect to {} ({}): {e} — is the service listening there?",
                t.addr, spec.url
            ))
        })?);
    }
    let (mut record, origin) = start_record("http", spec.parameters());
    let stop = Arc::new(match spec.requests {
        Some(n) => Stop::Count(Arc::new(AtomicU64::new(0)), n),
        None => Stop::At(origin + Duration::from_secs_f64(spec.duration_s.unwrap_or(10.0))),
    });
    let sampler = crate::host::Sampler::start(origin, crate::SAMPLE_INTERVAL);
    let handles: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(worker(t.clone(), Some(c), stop.clone(), origin, timeout)))
        .collect();
    let mut rec = Recorder::new(origin);
    let (mut body_bytes, mut first_error, mut server) = (0u64, None, None);
    let mut statuses: std::collections::BTreeMap<u16, u64> = Default::default();
    for h in handles {
        let w = h
            .await
            .map_err(|e| Error::Io(format!("an HTTP worker failed: {e}")))?;
        rec.merge(w.rec);
        body_bytes += w.body_bytes;
        for (s, n) in w.statuses {
            *statuses.entry(s).or_default() += n;
        }
        first_error = first_error.or(w.first_error);
        server = server.or(w.server);
    }
    let elapsed = origin.elapsed();
    record.host_samples = sampler.finish();
    let (mut summary, samples) = summarize(&rec.ops, elapsed, 0.0, "", true);
    let secs = elapsed.as_secs_f64().max(1e-9);
    summary.insert("mb_per_sec".into(), body_bytes as f64 / 1e6 / secs);
    summary.insert("errors".into(), rec.errors as f64);
    let expected = |s: u16| match spec.expect_status {
        Some(e) => s == e,
        None => (200..300).contains(&s),
    };
    let unexpected: u64 = statuses
        .iter()
        .filter(|(s, _)| !expected(**s))
        .map(|(_, n)| *n)
        .sum();
    summary.insert("unexpected_status".into(), unexpected as f64);
    summary.insert("seconds".into(), secs);
    record.summary = summary;
    record.sample_unit = Some("window".into());
    record.samples = samples;
    record.target = Some(match &server {
        Some(s) => format!("HTTP {} ({s})", spec.url),
        None => format!("HTTP {}", spec.url),
    });
    record.server = Some(json!({
        "server_header": server,
        "status_counts": statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<Map<_, _>>(),
        "response_body_bytes": body_bytes,
    }));
    let total = rec.ops.len() as u64;
    let want = match spec.expect_status {
        Some(s) => s.to_string(),
        None => "2xx".into(),
    };
    record.error = if unexpected > 0 {
        let seen: Vec<String> = statuses
            .iter()
            .filter(|(s, _)| !expected(**s))
            .map(|(s, n)| format!("{n} × {s}"))
            .collect();
        Some(format!(
            "{unexpected} of {total} responses had another status than {want} ({}); give --expect-status if that status is the one the endpoint should return",
            seen.join(", ")
        ))
    } else if total == 0 {
        Some(format!(
            "no request completed: {}",
            first_error.unwrap_or_else(|| "no time to send one".into())
        ))
    } else if rec.errors > 0 {
        Some(format!(
            "{} requests failed without a response (first: {}); {total} completed",
            rec.errors,
            first_error.unwrap_or_default()
        ))
    } else {
        None
    };
    Ok(finish_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> HttpSpec {
        toml::from_str(&format!("url = {url:?}")).unwrap()
    }

    #[test]
    fn parses_the_url_and_request_parts() {
        let mut s = spec("http://127.0.0.1:8088/api/v1/health?x=1");
        s.headers = vec!["Authorization: Bearer secret".into(), "X-A:b".into()];
        s.method = "post".into();
        let t = s.target().unwrap();
        assert_eq!(t.addr, "127.0.0.1:8088");
        assert_eq!(t.host_header, "127.0.0.1:8088");
        assert_eq!(t.path.to_string(), "/api/v1/health?x=1");
        assert_eq!(t.method, Method::POST);
        assert_eq!(t.headers.len(), 2);
        // Header values never reach the record.
        let p = Value::Object(s.parameters()).to_string();
        assert!(p.contains("Authorization") && !p.contains("secret"), "{p}");
        assert_eq!(
            spec("http://example.com").target().unwrap().addr,
            "example.com:80"
        );
        assert_eq!(spec("http://example.com").target().unwrap().path, "/");
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        for (url, why) in [
            ("https://x:443/", "is https"),
            ("/health", "no http:// scheme"),
            ("ftp://x/", "no http:// scheme"),
            ("not a url", "is not a URL"),
        ] {
            let e = spec(url).target().err().unwrap().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
        let mut s = spec("http://x/");
        s.concurrency = 0;
        assert!(s.target().is_err());
        let mut s = spec("http://x/");
        s.headers = vec!["NoColon".into()];
        assert!(s.target().err().unwrap().to_string().contains("no colon"));
        let mut s = spec("http://x/");
        s.expect_status = Some(42);
        assert!(s.target().is_err());
        let mut s = spec("http://x/");
        (s.duration_s, s.requests) = (Some(1.0), Some(5));
        assert!(s.target().is_err());
        assert!(toml::from_str::<HttpSpec>("url = \"http://x/\"\nconcurency = 2").is_err());
    }
}
