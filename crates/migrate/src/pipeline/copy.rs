//! Where a chunk's encoded bytes go: a COPY statement in the chunk's transaction (every wait
//! on the target bounded by the reply deadline), a capture file, or nowhere.

use super::*;

/// Where a chunk's encoded bytes go.
pub(super) enum Out {
    Copy(CopyStream),
    Discard,
    File(std::fs::File),
}

impl Out {
    pub(super) async fn send(
        &mut self,
        bytes: Bytes,
        counters: &Counters,
    ) -> Result<(), ChunkError> {
        match self {
            Out::Copy(c) => c.send(bytes, counters).await,
            Out::Discard => Ok(()),
            Out::File(f) => f
                .write_all(&bytes)
                .map_err(|e| ChunkError::Local(anyhow!("writing the capture: {e}"))),
        }
    }

    /// Ends the COPY statement (once: a finished COPY is done with), or flushes the file.
    pub(super) async fn finish(&mut self, counters: &Counters) -> Result<(), ChunkError> {
        match self {
            Out::Copy(c) => {
                let r = c.finish(counters).await.map(|_| ());
                *self = Out::Discard;
                r
            }
            Out::Discard => Ok(()),
            Out::File(f) => f
                .flush()
                .map_err(|e| ChunkError::Local(anyhow!("writing the capture: {e}"))),
        }
    }
}

/// A COPY statement in progress inside the chunk's transaction.
pub(super) struct CopyStream {
    sink: std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>,
    /// The node it goes to, for error lines.
    node: String,
    /// How long the server may take to take data or answer.
    reply: Duration,
}

impl CopyStream {
    /// Opens the chunk's transaction's writing: what the writer runs first (a staging table,
    /// YugabyteDB's settings), then the COPY.
    pub(super) async fn begin(conn: &Conn, writer: &TableWriter) -> Result<Self, ChunkError> {
        answer(
            conn.reply,
            &conn.node,
            "preparing the transaction",
            writer.prepare_tx(&conn.client),
        )
        .await?;
        Self::start(conn).await
    }

    pub(super) async fn start(conn: &Conn) -> Result<Self, ChunkError> {
        let stmt = conn
            .copy
            .as_ref()
            .ok_or_else(|| ChunkError::Local(anyhow!("internal: no COPY statement prepared")))?;
        let sink = answer(
            conn.reply,
            &conn.node,
            "starting COPY",
            conn.client.copy_in::<_, Bytes>(stmt),
        )
        .await?;
        Ok(CopyStream {
            sink: Box::pin(sink),
            node: conn.node.clone(),
            reply: conn.reply,
        })
    }

    pub(super) async fn send(
        &mut self,
        bytes: Bytes,
        counters: &Counters,
    ) -> Result<(), ChunkError> {
        use futures::SinkExt;
        let t = Instant::now();
        let _in_flight = InFlight::new(&counters.writes_in_flight);
        // tokio-postgres copies each CopyData message into the connection's write buffer, which
        // keeps its largest size: small pieces keep that buffer (per connection) small.
        const PIECE: usize = 64 << 10;
        let mut r = Ok(());
        let mut at = 0;
        while at < bytes.len() && r.is_ok() {
            let end = (at + PIECE).min(bytes.len());
            r = answer(
                self.reply,
                &self.node,
                "sending COPY data",
                self.sink.send(bytes.slice(at..end)),
            )
            .await;
            at = end;
        }
        counters
            .target_wait_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }

    pub(super) async fn finish(&mut self, counters: &Counters) -> Result<u64, ChunkError> {
        let t = Instant::now();
        let _in_flight = InFlight::new(&counters.writes_in_flight);
        let r = answer(
            self.reply,
            &self.node,
            "finishing COPY",
            self.sink.as_mut().finish(),
        )
        .await;
        counters
            .target_wait_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
}
