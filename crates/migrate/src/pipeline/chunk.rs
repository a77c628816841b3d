//! One chunk's copy: its pages read (the next while the current one is sent), encoded into
//! binary COPY and streamed in the chunk's own transaction, which its commit ends with the
//! rejects and the done mark; and the replay of a captured payload.

use super::*;

/// `(start, end]` cut into `2^split` contiguous sub-ranges.
pub(super) fn sub_ranges(start: i64, end: i64, split: u32) -> Vec<(i64, i64)> {
    let n = 1i128 << split;
    let w = end as i128 - start as i128;
    (0..n)
        .map(|i| {
            (
                (start as i128 + w * i / n) as i64,
                (start as i128 + w * (i + 1) / n) as i64,
            )
        })
        .filter(|(a, b)| a < b)
        .collect()
}

/// Reads one chunk and streams it into COPY inside one transaction that also marks it done.
/// Page k+1 is fetched while page k is sent. With `split > 0` (after read timeouts) the range
/// is read as smaller sub-ranges with smaller pages. With `lease_next`, the worker's next chunk
/// is leased in the commit's flight ([`commit_chunk`]).
pub(super) async fn copy_chunk(
    ctx: &Ctx<'_>,
    conn: &Conn,
    lease: &Lease,
    split: u32,
    lease_next: bool,
) -> Result<NextLease, ChunkError> {
    let began = Instant::now();
    let pages = std::cell::Cell::new(0u32);
    // Page size: the configured fetch size is a ceiling; pages are also kept within this
    // worker's share of the memory budget once the row size is known (from any chunk, so a
    // chunk's first page keeps to it too), and shrink after read timeouts (`split`).
    let ceiling = (ctx.settings.fetch_size_rows >> split).max(100);
    let page_rows = std::cell::Cell::new(page_rows_for(ctx, ceiling, split == 0));
    let fetch = |lo: i64, hi: i64, paging: PagingState| {
        let rows = page_rows.get();
        pages.set(pages.get() + 1);
        async move {
            let t = Instant::now();
            // When the read was sent: remaining TTLs count from about then.
            let asked_secs = crate::row_times::now_secs();
            let in_flight = InFlight::new(&ctx.counters.reads_in_flight);
            let r = ctx
                .reader
                .chunk_page(
                    lease.replica_set,
                    Some(rows),
                    (lo, hi),
                    lease.clustering.as_ref(),
                    paging,
                )
                .await
                .map(|p| {
                    let c = ctx.counters;
                    c.nodes
                        .observe(Side::Source, &p.coordinator.to_string(), t.elapsed());
                    c.source_pages.record(t.elapsed());
                    c.read_retries
                        .fetch_add(u64::from(p.retries), Ordering::Relaxed);
                    if p.failed_over {
                        c.pages_failed_over.fetch_add(1, Ordering::Relaxed);
                    }
                    (p.result, p.next, asked_secs)
                })
                .map_err(ChunkError::Source);
            ctx.counters
                .source_wait_ns
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            drop(in_flight);
            r
        }
    };
    let mut ranges = sub_ranges(lease.start, lease.end, split);
    if ranges.is_empty() {
        ranges.push((lease.start, lease.end));
    }
    // The COPY starts while the first page is fetched.
    let (copy, first) = tokio::join!(
        async {
            Ok::<_, ChunkError>(match &ctx.settings.mode {
                Mode::Migrate => Out::Copy(CopyStream::begin(conn, ctx.writer).await?),
                Mode::Capture(dir) => {
                    let path = capture_file(dir, lease.chunk_id, lease.start, lease.end);
                    Out::File(std::fs::File::create(&path).map_err(|e| {
                        ChunkError::Local(anyhow!("creating {}: {e}", path.display()))
                    })?)
                }
                Mode::ScanOnly | Mode::Replay(_) => Out::Discard,
            })
        },
        fetch(ranges[0].0, ranges[0].1, PagingState::start())
    );
    let mut copy = copy?;
    let mut first = Some(first?);
    let copying = matches!(copy, Out::Copy(_));
    let mut rows_total = 0u64;
    let mut rows_in_copy = 0u64;
    let mut rejected: Vec<Reject> = Vec::new();
    // Grows to a page's encoding; starts small, as a worker may hold it while idle.
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut bytes_total = 0u64;
    encode::copy_header(&mut buf);
    for (lo, hi) in ranges {
        let mut page = match first.take() {
            Some(p) => p,
            None => fetch(lo, hi, PagingState::start()).await?,
        };
        loop {
            let (res, next, asked_secs) = page;
            let t = Instant::now();
            let n = ctx
                .encoder
                .encode_page(res, asked_secs, &mut buf, &mut rejected)
                .map_err(ChunkError::Local)?;
            ctx.counters
                .encode_ns
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            ctx.counters.rows_read.fetch_add(n.read, Ordering::Relaxed);
            if let Some(row_bytes) = (buf.len() as u64).checked_div(n.written) {
                ctx.encoder
                    .row_bytes
                    .store(row_bytes.max(16), Ordering::Relaxed);
                page_rows.set(page_rows_for(ctx, ceiling, split == 0));
            }
            rows_total += n.written;
            rows_in_copy += n.written;
            if let Some(l) = &ctx.limiter {
                l.acquire(n.read).await;
            }
            // A COPY statement ends every `batch_rows` rows; all share the chunk's transaction.
            let boundary = copying && rows_in_copy >= ctx.settings.batch_rows as u64;
            if boundary {
                encode::copy_trailer(&mut buf);
            }
            let out = buf.split().freeze();
            bytes_total += out.len() as u64;
            let more = match next {
                PagingStateResponse::HasMorePages { state } => {
                    let (sent, fetched) =
                        tokio::join!(copy.send(out, ctx.counters), fetch(lo, hi, state));
                    sent?;
                    Some(fetched?)
                }
                PagingStateResponse::NoMorePages => {
                    copy.send(out, ctx.counters).await?;
                    None
                }
            };
            if boundary {
                copy.finish(ctx.counters).await?;
                copy = Out::Copy(CopyStream::start(conn).await?);
                encode::copy_header(&mut buf);
                rows_in_copy = 0;
            }
            match more {
                Some(p) => page = p,
                None => break,
            }
        }
    }
    encode::copy_trailer(&mut buf);
    copy.send(buf.split().freeze(), ctx.counters).await?;
    let copied = began.elapsed();
    let next = commit_chunk(
        ctx,
        conn,
        lease,
        &mut copy,
        copying,
        rows_total,
        &rejected,
        bytes_total,
        lease_next,
    )
    .await?;
    tracing::debug!(
        chunk = lease.chunk_id,
        rows = rows_total,
        pages = pages.get(),
        last_page_rows = page_rows.get(),
        copy_ms = copied.as_millis() as u64,
        commit_ms = (began.elapsed() - copied).as_millis() as u64,
        "chunk done"
    );
    Ok(next)
}

/// The worker's next chunk, leased in a chunk's commit flight: `None` when not asked for;
/// otherwise the lease's outcome, whose transaction (when it came back `Ok`) is open.
pub(super) type NextLease = Option<Result<Leased, SideError>>;

/// Ends a chunk's transaction: ends its COPY (`copy`), merges staged rows (`merge`, when rows
/// were copied), records its rejected rows, marks the chunk done and commits, then counts
/// rows, rejects and bytes: only now has the target acknowledged them. The COPY's end, the
/// done mark and COMMIT go out in one flight, one round trip (the statements run in the order
/// they were sent: a failed COPY fails the done mark, and COMMIT of a failed transaction rolls
/// it back); in INSERT mode the merge, a statement of its own, goes first. With `lease_next`,
/// BEGIN and the next lease follow COMMIT in the same flight, so the worker's next chunk costs
/// no round trip of its own.
#[allow(clippy::too_many_arguments)]
pub(super) async fn commit_chunk(
    ctx: &Ctx<'_>,
    conn: &Conn,
    lease: &Lease,
    copy: &mut Out,
    merge: bool,
    rows: u64,
    rejects: &[Reject],
    bytes: u64,
    lease_next: bool,
) -> Result<NextLease, ChunkError> {
    let t = Instant::now();
    let mut rows = rows;
    // Only a COPY into the table itself sends nothing between the COPY's end and the done mark.
    if merge && ctx.writer.staged() {
        copy.finish(ctx.counters).await?;
        // Staged rows: those the merge inserted or replaced are the rows written (a key skipped,
        // or a target row newer than the incoming one, is not).
        if let Some(merged) = answer(
            conn.reply,
            &conn.node,
            "merging staged rows",
            ctx.writer.finish_tx(&conn.client),
        )
        .await?
        {
            rows = merged;
        }
    }
    let done = ChunkDone {
        job: ctx.job,
        owner: ctx.owner,
        chunk_id: lease.chunk_id,
        table: &ctx.table,
        rows,
        rejects,
    };
    // A commit whose reply never comes may or may not have happened: the done mark is in the
    // same transaction, so either the chunk is done or it is leased again.
    let commit = async {
        match tokio::time::timeout(
            conn.reply,
            ctx.progress.complete_commit(&conn.client, &conn.st, &done),
        )
        .await
        {
            Ok(r) => r.map_err(|e| classify_commit(e, &conn.node)),
            Err(_) => Err(ChunkError::Target(no_reply(
                conn.reply,
                &conn.node,
                "committing",
            ))),
        }
    };
    let next = async {
        if !lease_next {
            return None;
        }
        let leasing = format!("leasing a chunk of {}", ctx.table);
        Some(
            answered(
                conn.reply,
                &conn.node,
                &leasing,
                ctx.progress.begin_lease(&conn.client, &conn.st, ctx.job),
            )
            .await,
        )
    };
    // Polled in this order, so sent in this order: the COPY's end (a no-op when the merge
    // ended it), the rejects, done mark and COMMIT, then BEGIN and the next lease.
    let (finished, committed, next) = tokio::join!(copy.finish(ctx.counters), commit, next);
    // The COPY's own failure is the cause; the done mark then failed for it.
    finished?;
    committed?;
    let c = ctx.counters;
    c.commits.record(t.elapsed());
    c.target_wait_ns
        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    c.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    c.rows_written.fetch_add(rows, Ordering::Relaxed);
    c.rows_rejected
        .fetch_add(rejects.len() as u64, Ordering::Relaxed);
    c.chunks_done.fetch_add(1, Ordering::Relaxed);
    Ok(next)
}

/// Loads a captured chunk payload into the target in the chunk's transaction.
pub(super) async fn replay_chunk(
    ctx: &Ctx<'_>,
    conn: &Conn,
    lease: &Lease,
    dir: &std::path::Path,
) -> Result<(), ChunkError> {
    let path = capture_file(dir, lease.chunk_id, lease.start, lease.end);
    let payload = Bytes::from(std::fs::read(&path).map_err(|e| {
        ChunkError::Local(anyhow!(
            "reading {}: {e} — capture with the same plan first (--capture)",
            path.display()
        ))
    })?);
    let mut copy = CopyStream::begin(conn, ctx.writer).await?;
    let bytes = payload.len() as u64;
    // `send` cuts the payload into the COPY pieces itself.
    copy.send(payload, ctx.counters).await?;
    // The row count is the COPY's own, so it ends before the commit's flight.
    let rows = copy.finish(ctx.counters).await?;
    commit_chunk(
        ctx,
        conn,
        lease,
        &mut Out::Discard,
        true,
        rows,
        &[],
        bytes,
        false,
    )
    .await?;
    ctx.counters.rows_read.fetch_add(rows, Ordering::Relaxed);
    Ok(())
}
