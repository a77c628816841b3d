//! Riding through faults, in one place: how long a side may keep failing before the run stops
//! ([`Outage`], `ferry.outageDeadlineSecs`), the backoff between attempts, the deadline on a
//! reply the target owes ([`reply_deadline`]: a half-open connection, where the network stops
//! forwarding and never closes, answers nothing, and TCP alone never notices), and the run's own
//! target connection ([`Admin`]), which set-up, plan storage and the final bookkeeping use and
//! which reconnects like the workers' connections do.
//!
//! What may be retried is decided by [`crate::error::ErrorKind::retryable`], never here.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::future::BoxFuture;
use tokio_postgres::Client;

use crate::error::{kind_in, side_in, target_failure, ErrorKind, Side, SideError};
use crate::sink::TargetEndpoint;

/// Tracks how long one side has been failing; past the deadline the run stops.
pub struct Outage {
    since: Option<Instant>,
    deadline: Duration,
    /// What the stop line tells the user to do.
    hint: &'static str,
}

/// What an outage past `ferry.outageDeadlineSecs` adds to its error's chain (the line saying
/// which side failed for how long, and what to do): the command stopped, and running it again
/// once the side is back carries on. The CLI answers it with "stopped" (exit 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutageStop(String);

impl Outage {
    /// For a migration: what was committed stays, and a rerun resumes.
    pub fn new(deadline: Duration) -> Self {
        Outage {
            since: None,
            deadline,
            hint: "the progress is saved — rerun the same command to resume",
        }
    }

    /// For work that starts over when run again (a validation).
    pub fn rerun(deadline: Duration) -> Self {
        Outage {
            hint: "nothing was changed — rerun the same command once it is back",
            ..Outage::new(deadline)
        }
    }

    /// Records a failure; errors when the failures have lasted past the deadline. The error
    /// keeps `e` (which names the side's endpoint and the cause) and says how to resume.
    pub fn failed(&mut self, side: &str, what: &str, e: anyhow::Error) -> Result<Duration> {
        let since = *self.since.get_or_insert_with(Instant::now);
        let lasted = since.elapsed();
        if lasted > self.deadline {
            return Err(e.context(OutageStop(format!(
                "{side} has been failing for {}s (ferry.outageDeadlineSecs={}) while {what}; {}",
                lasted.as_secs(),
                self.deadline.as_secs(),
                self.hint
            ))));
        }
        Ok(lasted)
    }

    /// A success: the outage (if any) is over. Returns how long it lasted.
    pub fn ok(&mut self) -> Option<Duration> {
        self.since.take().map(|s| s.elapsed())
    }
}

/// The target side's backoff between attempts: 100 ms doubling, at most 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

/// After a failed attempt at work that can simply run again: the error itself when no retry
/// fixes it or its side has failed past the deadline, else (after the backoff for `attempt`)
/// `Ok`, and the caller runs the work again.
pub async fn again(outage: &mut Outage, attempt: u32, e: anyhow::Error, doing: &str) -> Result<()> {
    if !kind_in(&e).retryable() {
        return Err(e);
    }
    let side = match side_in(&e) {
        Some(Side::Source) => "Cassandra",
        _ => "the target",
    };
    tracing::warn!(attempt, doing, "{side} failed, trying again: {e:#}");
    outage.failed(side, doing, e)?;
    tokio::time::sleep(backoff(attempt)).await;
    Ok(())
}

/// Stores `lasted` in `longest_ms` when it is the longest yet.
pub fn note_recovery(longest_ms: &AtomicU64, lasted: Option<Duration>) {
    if let Some(d) = lasted {
        longest_ms.fetch_max(d.as_millis() as u64, Ordering::Relaxed);
    }
}

/// How long ferry waits for a reply the target owes (a statement's result, a COPY's end, a
/// commit) before the connection counts as lost: `yugabyte.socketTimeout` when set, else
/// [`DEFAULT_REPLY_DEADLINE`].
pub fn reply_deadline(target: &TargetEndpoint) -> Duration {
    target.socket_timeout.unwrap_or(DEFAULT_REPLY_DEADLINE)
}

/// The reply deadline when `yugabyte.socketTimeout` is 0 (the seed's value): as long as a
/// Cassandra page read may take by default (`cassandra.readTimeoutMs`).
pub const DEFAULT_REPLY_DEADLINE: Duration = Duration::from_secs(120);

/// Awaits `f`, a request to the target at `node`; past `deadline` it fails as a timeout (the
/// connection must then be dropped: the reply may still be owed on it).
pub async fn within<T>(
    deadline: Duration,
    node: &str,
    doing: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(deadline, f).await {
        Ok(r) => r,
        Err(_) => Err(no_reply(deadline, node, doing).into()),
    }
}

/// The error for a reply that did not come within `deadline`.
pub fn no_reply(deadline: Duration, node: &str, doing: &str) -> SideError {
    SideError {
        side: Side::Target,
        endpoint: node.to_string(),
        kind: ErrorKind::Timeout,
        doing: doing.to_string(),
        cause: format!(
            "no reply within {}s (yugabyte.socketTimeout, {}s when 0): the connection is \
             dropped",
            deadline.as_secs(),
            DEFAULT_REPLY_DEADLINE.as_secs()
        ),
    }
}

/// What a reconnecting connection rode through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// New connections opened after the first one was lost.
    pub reconnects: u64,
    /// The longest outage a call rode through.
    pub longest_outage: Duration,
}

/// The run's own target connection: set-up reads, plan storage and binding, the done marks and
/// the reject export. Each [`Admin::call`] runs on it; a call that fails in a way another attempt
/// can fix (a lost connection, a restart, a reply that never comes) is retried on a new
/// connection (the next node first) until `ferry.outageDeadlineSecs`, so a target restart
/// mid-run is ridden through here as the workers ride through it. Calls are serialized.
pub struct Admin {
    target: TargetEndpoint,
    nodes: Vec<(String, u16)>,
    deadline: Duration,
    conn: tokio::sync::Mutex<Option<Client>>,
    node: AtomicUsize,
    /// New connections opened after the first one was lost.
    pub reconnects: AtomicU64,
    /// The longest outage a call rode through, in ms.
    pub longest_outage_ms: AtomicU64,
}

impl Admin {
    /// `client` is connected to `nodes[node]`.
    pub fn new(
        client: Client,
        node: usize,
        target: &TargetEndpoint,
        nodes: &[(String, u16)],
        deadline: Duration,
    ) -> Self {
        Admin {
            target: target.clone(),
            nodes: nodes.to_vec(),
            deadline,
            conn: tokio::sync::Mutex::new(Some(client)),
            node: AtomicUsize::new(node),
            reconnects: AtomicU64::new(0),
            longest_outage_ms: AtomicU64::new(0),
        }
    }

    /// What this connection rode through so far.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            reconnects: self.reconnects.load(Ordering::Relaxed),
            longest_outage: Duration::from_millis(self.longest_outage_ms.load(Ordering::Relaxed)),
        }
    }

    fn endpoint(&self) -> String {
        let (h, p) = &self.nodes[self.node.load(Ordering::Relaxed) % self.nodes.len()];
        format!("{h}:{p}")
    }

    /// Runs `f` on the connection, retried on a new one while the failure is retryable and the
    /// outage has not outlasted `ferry.outageDeadlineSecs`. `f` must be safe to run again: a
    /// read, or one transaction (an attempt that failed rolled back with its connection). A
    /// retryable source failure inside `f` (set-up reads both sides) is retried the same way,
    /// keeping the connection. `f`'s second argument only ties its future to the caller's
    /// borrows (`'a`); pass `|c, _| Box::pin(async move { … })`.
    pub async fn call<'a, T>(
        &self,
        doing: &str,
        f: impl for<'c> Fn(&'c Client, &'c &'a ()) -> BoxFuture<'c, Result<T>>,
    ) -> Result<T> {
        let tie: &'a () = &();
        let mut guard = self.conn.lock().await;
        let mut outage = Outage::new(self.deadline);
        let reply = reply_deadline(&self.target);
        let mut failures = 0u32;
        loop {
            if guard.as_ref().is_none_or(|c| c.is_closed()) {
                let i = self.node.load(Ordering::Relaxed) % self.nodes.len();
                let (h, p) = &self.nodes[i];
                match within(
                    reply,
                    &self.endpoint(),
                    "connecting",
                    self.target.connect(h, *p),
                )
                .await
                {
                    Ok(c) => {
                        *guard = Some(c);
                        self.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(node = %self.endpoint(), doing, "the run's target connection is back");
                    }
                    Err(e) => {
                        if !kind_in(&e).retryable() {
                            return Err(e);
                        }
                        failures += 1;
                        outage.failed("the target", doing, e)?;
                        self.node.store(i + 1, Ordering::Relaxed);
                        tokio::time::sleep(backoff(failures)).await;
                        continue;
                    }
                }
            }
            let node = self.endpoint();
            let client = guard.as_ref().expect("connected above");
            match within(reply, &node, doing, f(client, &tie)).await {
                Ok(v) => {
                    note_recovery(&self.longest_outage_ms, outage.ok());
                    return Ok(v);
                }
                Err(e) => {
                    let source = side_in(&e) == Some(Side::Source);
                    let e = if source {
                        e
                    } else {
                        target_failure(e, &node, doing)
                    };
                    if !kind_in(&e).retryable() {
                        return Err(e);
                    }
                    tracing::warn!(node, doing, "set-up or bookkeeping failed, retrying: {e:#}");
                    failures += 1;
                    if source {
                        outage.failed("Cassandra", doing, e)?;
                    } else {
                        // Whatever the call left open (a transaction, a reply still owed) goes
                        // with the connection.
                        *guard = None;
                        outage.failed("the target", doing, e)?;
                        self.node.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(3200));
        assert_eq!(backoff(6), Duration::from_secs(5));
        assert_eq!(backoff(60), Duration::from_secs(5));
    }

    #[test]
    fn an_outage_stops_only_past_its_deadline_and_says_how_to_resume() {
        let mut o = Outage::new(Duration::from_millis(50));
        assert!(o
            .failed("the target", "leasing", anyhow::anyhow!("x"))
            .is_ok());
        std::thread::sleep(Duration::from_millis(60));
        let e = o
            .failed("the target", "leasing", anyhow::anyhow!("refused"))
            .unwrap_err();
        let line = format!("{e:#}");
        assert!(line.contains("the target has been failing"), "{line}");
        assert!(line.contains("rerun the same command to resume"), "{line}");
        assert!(line.ends_with("refused"), "{line}");
        assert!(o.ok().is_some());
        assert!(o.ok().is_none());
    }
}
