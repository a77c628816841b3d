//! A worker: its target connection (the run's, reused across tables) and its loop — lease a
//! chunk, copy it, commit, and on a failure decide by [`crate::error::ErrorKind`] whether to
//! retry (on another node, after a backoff) or stop.

use super::*;

/// One worker's target connection, with the per-chunk statements prepared on it.
pub(super) struct Conn {
    pub(super) client: tokio_postgres::Client,
    pub(super) st: ChunkStatements,
    /// The table's COPY statement (migrate and replay).
    pub(super) copy: Option<tokio_postgres::Statement>,
    pub(super) node: String,
    /// Its node's index in [`TargetFacts::nodes`].
    pub(super) index: usize,
    /// How long a reply on it may take.
    pub(super) reply: Duration,
}

impl Conn {
    /// A connection to `nodes[node]`: an idle one of the run's if there is one (to that node,
    /// else to any: the returned index says which), else a new one. Only the table's COPY
    /// statement is prepared on a reused connection, and the worker's first lease goes out in
    /// the same flight (returned as the next lease; `None` for a new connection).
    pub(super) async fn get(ctx: &Ctx<'_>, node: usize) -> Result<(Conn, usize, NextLease)> {
        if let Some(idle) = ctx.budget.take_conn(node) {
            let (h, p) = &ctx.facts.nodes[idle.node];
            let at_node = format!("{h}:{p}");
            let leasing = format!("leasing a chunk of {}", ctx.table);
            // Polled in this order, so sent in this order: the COPY's Parse, then BEGIN and
            // the lease. A failed prepare drops the connection, and its transaction with it.
            let (copy, leased) = tokio::join!(
                crate::retry::within(
                    ctx.reply,
                    &at_node,
                    "preparing COPY",
                    Self::prepare_copy(ctx, &idle.client),
                ),
                answered(
                    ctx.reply,
                    &at_node,
                    &leasing,
                    ctx.progress.begin_lease(&idle.client, &idle.st, ctx.job),
                )
            );
            let copy = copy.map_err(|e| target_failure(e, &at_node, "preparing COPY"))?;
            let at = idle.node;
            return Ok((
                Conn {
                    client: idle.client,
                    st: idle.st,
                    copy,
                    node: at_node,
                    index: at,
                    reply: ctx.reply,
                },
                at,
                Some(leased),
            ));
        }
        let (h, p) = &ctx.facts.nodes[node];
        Ok((Self::open(ctx, h, *p, node).await?, node, None))
    }

    /// Gives the connection to the run's pool, for the next worker of any table.
    pub(super) fn park(self, budget: &Budget) {
        budget.give_conn(IdleConn {
            client: self.client,
            st: self.st,
            node: self.index,
        });
    }

    pub(super) async fn prepare_copy(
        ctx: &Ctx<'_>,
        client: &tokio_postgres::Client,
    ) -> Result<Option<tokio_postgres::Statement>> {
        if matches!(ctx.settings.mode, Mode::Migrate | Mode::Replay(_)) {
            client
                .prepare(&ctx.writer.copy_sql)
                .await
                .map(Some)
                .with_context(|| format!("preparing {}", ctx.writer.copy_sql))
        } else {
            Ok(None)
        }
    }

    /// Connects to `host:port` and prepares everything in one more round trip. The server is
    /// told to probe the connection (TCP keepalives) so that a worker that vanishes without
    /// closing it frees its chunk within about `ferry.leaseSecs`.
    pub(super) async fn open(ctx: &Ctx<'_>, host: &str, port: u16, index: usize) -> Result<Conn> {
        let node = format!("{host}:{port}");
        let client = crate::retry::within(
            ctx.reply,
            &node,
            "connecting",
            ctx.target.connect(host, port),
        )
        .await?;
        let keepalive = keepalive_sql(ctx.settings.lease);
        let (st, copy, _) =
            crate::retry::within(ctx.reply, &node, "preparing the chunk statements", async {
                tokio::try_join!(
                    ctx.progress.chunk_statements(&client),
                    Self::prepare_copy(ctx, &client),
                    async {
                        client
                            .batch_execute(&keepalive)
                            .await
                            .context("setting TCP keepalives")
                    },
                )
            })
            .await
            .map_err(|e| target_failure(e, &node, "preparing the chunk statements"))?;
        Ok(Conn {
            client,
            st,
            copy,
            node,
            index,
            reply: ctx.reply,
        })
    }
}

/// The server probes a worker's connection (TCP keepalives), so that a worker that vanishes
/// without closing it frees its chunk within about `lease` (`ferry.leaseSecs`).
fn keepalive_sql(lease: Duration) -> String {
    let lease = lease.as_secs().max(3);
    format!(
        "SET tcp_keepalives_idle = {}; SET tcp_keepalives_interval = {}; SET tcp_keepalives_count = 3",
        (lease / 2).max(1),
        (lease / 6).max(1)
    )
}

/// A worker connection opened ahead: its node's index, the node's address, the outcome.
pub type OpenedConn = (usize, String, Result<tokio_postgres::Client>);

/// Opens `n` connections, the i-th to node `(first + i) mod nodes`, each within the target's
/// reply deadline. A connection is several round trips; they are opened all at once.
pub async fn open_connections(
    target: &TargetEndpoint,
    facts: &TargetFacts,
    first: usize,
    n: usize,
) -> Vec<OpenedConn> {
    let reply = crate::retry::reply_deadline(target);
    let nodes = &facts.nodes;
    futures::future::join_all((0..n).map(|i| {
        let node = (first + i) % nodes.len();
        let (h, p) = &nodes[node];
        async move {
            let at = format!("{h}:{p}");
            let c = crate::retry::within(reply, &at, "connecting", target.connect(h, *p)).await;
            (node, at, c)
        }
    }))
    .await
}

/// Opens `n` worker connections for a run before its first table starts (node `i mod nodes`
/// for the i-th), so that across a WAN the first chunks do not wait for connection set-up:
/// `connected` is awaited between connecting and preparing the per-chunk statements (they
/// need the progress tables, which the run creates meanwhile). Each goes to `budget`'s pool,
/// where the tables' workers take it as they start; one that fails is left out (a worker opens
/// its own then). `ahead` are connections opened while the run was prepared
/// ([`open_connections`]): how many, and them once open; they count towards `n`. `warmed`
/// turns true once the `ahead` ones are in the pool (when there are none, once all are), or
/// will not be: a table starts copying after
/// that, so that its workers take them instead of opening their own; the rest join the pool
/// as they open.
#[allow(clippy::too_many_arguments)]
pub async fn warm_connections(
    target: &TargetEndpoint,
    facts: &TargetFacts,
    progress: &Progress,
    lease: Duration,
    budget: &Budget,
    n: usize,
    ahead: (usize, impl std::future::Future<Output = Vec<OpenedConn>>),
    connected: impl std::future::Future<Output = bool>,
    warmed: tokio::sync::watch::Sender<bool>,
) {
    use futures::FutureExt;
    let reply = crate::retry::reply_deadline(target);
    // Said when done, whatever the outcome (also when this future is dropped).
    let warmed = Warmed(warmed);
    let connected = connected.shared();
    let keepalive = keepalive_sql(lease);
    // Each connection joins the pool once it is open and the progress tables are there.
    let join = |(node, at, c): OpenedConn| {
        let (keepalive, connected) = (&keepalive, connected.clone());
        async move {
            if !connected.await {
                return;
            }
            let prepared = async {
                let client = c?;
                let (st, ()) =
                    crate::retry::within(reply, &at, "preparing the chunk statements", async {
                        tokio::try_join!(progress.chunk_statements(&client), async {
                            client
                                .batch_execute(keepalive)
                                .await
                                .context("setting TCP keepalives")
                        })
                    })
                    .await?;
                anyhow::Ok(IdleConn { client, st, node })
            };
            match prepared.await {
                Ok(conn) => budget.give_conn(conn),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), node = %at, "a worker connection opened ahead")
                }
            }
        }
    };
    // The tables start once the connections opened ahead are in the pool (or, when none
    // were, all of them); the rest join as they open.
    let (first, ahead) = ahead;
    let early = async {
        futures::future::join_all(ahead.await.into_iter().map(join)).await;
        if first > 0 {
            warmed.0.send_replace(true);
        }
    };
    let rest = async {
        let opened = open_connections(target, facts, first, n.saturating_sub(first)).await;
        futures::future::join_all(opened.into_iter().map(join)).await;
    };
    tokio::join!(early, rest);
}

/// Tells the run's tables that the connections opened ahead are in the pool (or will not be).
struct Warmed(tokio::sync::watch::Sender<bool>);

impl Drop for Warmed {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// One worker: a connection to its node; leases a chunk (locking its progress row in the
/// chunk's own transaction), copies it, commits, repeats. A failed attempt rolls back, which
/// hands the chunk to whichever worker leases next (often this one, after a backoff). On a lost
/// node it moves to the next one; while a side is down it keeps retrying until
/// `outage_deadline`.
pub(super) async fn worker(ctx: &Ctx<'_>, index: usize) -> Result<()> {
    let nodes = &ctx.facts.nodes;
    let mut node = index % nodes.len();
    let mut conn: Option<Conn> = None;
    let mut slot: Option<Slot<'_>> = None;
    let mut target_down = Outage::new(ctx.settings.outage_deadline);
    let mut source_down = Outage::new(ctx.settings.outage_deadline);
    let mut failures = 0u32;
    // This worker's connection was lost (the next one it opens is a reconnect).
    let mut lost = false;
    // Gives up the slot, and the connection to the run's pool (both are the run's).
    let release = |slot: &mut Option<Slot<'_>>, conn: &mut Option<Conn>| {
        *slot = None;
        if let Some(c) = conn.take() {
            c.park(ctx.budget);
        }
    };
    let idle = Idle::new(&ctx.idle);
    // The next chunk's lease, taken in the last chunk's commit flight (its transaction open).
    let mut next: NextLease = None;
    loop {
        let leaving = ctx.stop.load(Ordering::Relaxed)
            || ctx.finished.load(Ordering::Relaxed)
            || index >= ctx.active.load(Ordering::Relaxed)
            || (ctx.budget.should_yield() && next.is_some());
        if leaving && matches!(next, Some(Ok(_))) {
            // A lease taken ahead is given back (rolled back) before the connection and the
            // slot go back to the run.
            next = None;
            if let Some(c) = &conn {
                if !matches!(
                    tokio::time::timeout(c.reply, c.client.batch_execute("ROLLBACK")).await,
                    Ok(Ok(()))
                ) {
                    conn = None;
                }
            }
            release(&mut slot, &mut conn);
        }
        if leaving && next.is_some() {
            // A lease that failed: the connection goes (the failure is met again if it stays).
            next = None;
            conn = None;
        }
        if ctx.stop.load(Ordering::Relaxed) || ctx.finished.load(Ordering::Relaxed) {
            release(&mut slot, &mut conn);
            return Ok(());
        }
        if index >= ctx.active.load(Ordering::Relaxed) {
            // Not needed at the current level (adaptive concurrency).
            release(&mut slot, &mut conn);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if slot.is_none() {
            // Worker 0 waits its turn ahead of other tables' extra workers; the others take a
            // free slot or wait.
            slot = if index == 0 {
                Some(ctx.budget.first_slot().await)
            } else {
                ctx.budget.try_slot()
            };
            if slot.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            lost = true;
        }
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            match Conn::get(ctx, node).await {
                Ok((c, at, leased)) => {
                    conn = Some(c);
                    node = at;
                    next = leased;
                    if std::mem::take(&mut lost) {
                        ctx.counters
                            .target_reconnects
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    // A node that is down is retried (on the next node); refused credentials,
                    // a missing privilege or a TLS refusal stop the run now.
                    if !kind_in(&e).retryable() {
                        return Err(e);
                    }
                    conn = None;
                    lost = true;
                    failures += 1;
                    target_down.failed("the target", "connecting", e)?;
                    node = (node + 1) % nodes.len();
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
            }
        }
        let c = conn.as_ref().expect("connected above");
        let leased = match next.take() {
            Some(leased) => leased,
            None => {
                let asked = Instant::now();
                let leasing = format!("leasing a chunk of {}", ctx.table);
                let leased = answered(
                    c.reply,
                    &c.node,
                    &leasing,
                    ctx.progress.begin_lease(&c.client, &c.st, ctx.job),
                )
                .await;
                if leased.is_ok() {
                    ctx.counters
                        .nodes
                        .observe(Side::Target, &c.node, asked.elapsed());
                }
                leased
            }
        };
        let lease = match leased {
            Ok(l) => l,
            Err(e) => {
                if !e.retryable() {
                    return Err(e.into());
                }
                conn = None;
                lost = true;
                failures += 1;
                target_down.failed("the target", "leasing a chunk", e.into())?;
                node = (node + 1) % nodes.len();
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        let lease = match lease {
            Leased::Chunk(lease) => lease,
            Leased::Nothing { unfinished } => {
                // Nothing free: all done, or the rest is held by live workers, whose chunks
                // come back if they fail. Meanwhile this worker's page memory is theirs.
                idle.set(true);
                crate::progress::roll_back_unwaited(&c.client);
                if unfinished == 0 {
                    ctx.finished.store(true, Ordering::Relaxed);
                    ctx.settled.notify_waiters();
                    release(&mut slot, &mut conn);
                    return Ok(());
                }
                // The rest is in other workers' hands: this one's slot goes to other tables.
                // Worker 0 stays to pick up a chunk that comes back (from a worker of another
                // process, whose lease ends with its connection: it looks again every half
                // second), and stops as soon as a worker here finds the table copied.
                release(&mut slot, &mut conn);
                if index > 0 {
                    return Ok(());
                }
                // Made before the flag is read, the notification cannot slip in between.
                let settled = ctx.settled.notified();
                if !ctx.finished.load(Ordering::Relaxed) {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = settled => {}
                    }
                }
                continue;
            }
        };
        idle.set(false);
        let _leased = InFlight::new(&ctx.counters.chunks_in_flight);
        // Read timeouts split the chunk's token range into 2^split sub-ranges.
        let split = ctx
            .splits
            .lock()
            .map(|m| m.get(&lease.chunk_id).copied().unwrap_or(0))
            .unwrap_or(0);
        // Whether this worker goes on after this chunk: then its next lease rides on this
        // chunk's commit.
        let lease_next = !ctx.stop.load(Ordering::Relaxed)
            && !ctx.finished.load(Ordering::Relaxed)
            && index < ctx.active.load(Ordering::Relaxed)
            && !ctx.budget.should_yield();
        let attempt = match &ctx.settings.mode {
            Mode::Replay(dir) => replay_chunk(ctx, c, &lease, dir).await.map(|()| None),
            _ => copy_chunk(ctx, c, &lease, split, lease_next).await,
        };
        let err = match attempt {
            Ok(leased) => {
                failures = 0;
                note_recovery(&ctx.counters.target_outage_ms, target_down.ok());
                note_recovery(&ctx.counters.source_outage_ms, source_down.ok());
                next = leased;
                if next.is_none() && ctx.budget.should_yield() {
                    release(&mut slot, &mut conn);
                }
                continue;
            }
            Err(err) => err,
        };
        // The chunk's transaction did not commit: rolling it back frees the chunk.
        // A reply that never came may still be owed on the connection: it goes, unasked.
        let unanswered =
            matches!(&err, ChunkError::Target(e) if e.kind == crate::error::ErrorKind::Timeout);
        if unanswered
            || c.client.is_closed()
            || !matches!(
                tokio::time::timeout(c.reply, c.client.batch_execute("ROLLBACK")).await,
                Ok(Ok(()))
            )
        {
            conn = None;
            lost = true;
        }
        failures += 1;
        let chunk = format!(
            "chunk {} (token range ({}, {}]) of {}",
            lease.chunk_id, lease.start, lease.end, ctx.table
        );
        let what = format!("copying {chunk}");
        match err {
            ChunkError::Source(e) => {
                // The page was retried under the source policy already: a consistency level
                // that cannot be met, or an error no retry fixes, ends the run now.
                if e.kind() == FailureKind::Unavailable {
                    return Err(anyhow!(e).context(format!("chunk {}", lease.chunk_id)));
                }
                if let ReadError::Failed {
                    kind: FailureKind::Fatal,
                    source,
                    ..
                } = &e
                {
                    let node = ctx.reader.endpoint(lease.replica_set);
                    return Err(SideError::source(source, &node, what).into());
                }
                ctx.counters
                    .source_chunk_retries
                    .fetch_add(1, Ordering::Relaxed);
                ctx.counters.note_error(format!("{e:#}"));
                let mut split = split;
                if e.kind() == FailureKind::Timeout && split < 6 {
                    split += 1;
                    if let Ok(mut m) = ctx.splits.lock() {
                        m.insert(lease.chunk_id, split);
                    }
                }
                tracing::warn!(
                    chunk = lease.chunk_id,
                    failures,
                    split,
                    "source read failed, retrying the chunk: {e:#}"
                );
                source_down.failed("Cassandra", &what, anyhow!(e))?;
                tokio::time::sleep(ctx.settings.retry_policy().delay(failures)).await;
                continue;
            }
            ChunkError::Target(mut e) => {
                e.doing = format!("{what} ({})", e.doing);
                if !e.retryable() {
                    return Err(e.into());
                }
                let e = anyhow::Error::from(e);
                ctx.counters.write_retries.fetch_add(1, Ordering::Relaxed);
                ctx.counters.note_error(format!("{e:#}"));
                tracing::warn!(
                    chunk = lease.chunk_id,
                    failures,
                    "target write failed, retrying the chunk: {e:#}"
                );
                target_down.failed("the target", &what, e)?;
                if conn.is_none() {
                    node = (node + 1) % nodes.len();
                }
            }
            ChunkError::Local(e) => {
                return Err(e.context(what));
            }
        }
        tokio::time::sleep(backoff(failures)).await;
    }
}
