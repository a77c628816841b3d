//! How many rows a worker asks for per page. The page memory (`ferry.pageMemoryMb`, scaled to
//! the round trip: [`crate::pipeline::page_budget`]) is shared by the workers holding chunks.
//! While every worker has a chunk, a page keeps to the fetch size and to its worker's share.
//! When the chunks left are fewer than the workers (the tail of a table, or a table that is one
//! large partition's few ranges), the idle workers' memory goes to the pages still being read:
//! they grow past the fetch size, up to the share and to the frame a response may fill — each
//! page is a round trip, so across a WAN fewer, larger pages finish the tail sooner.

use std::time::Duration;

use scylla::client::session::Session;

/// Cassandra's default `native_transport_max_frame_size` (16 MiB), when the server does not say.
pub const DEFAULT_FRAME_BYTES: u64 = 16 << 20;

/// A page is kept to this share of the frame limit: a row's wire size is about its COPY size
/// (both a 4-byte length per value), and the rest is headroom.
const FRAME_SHARE: u64 = 2;

/// What a worker knows when it sizes its next page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInputs {
    /// Bytes all workers' pages may take at once.
    pub budget: u64,
    /// Encoded bytes per row as last measured; 0 before the first page.
    pub row_bytes: u64,
    /// Workers allowed to work now (adaptive concurrency).
    pub active: u64,
    /// Chunks this process holds now.
    pub holding: u64,
    /// Workers that found no chunk left to lease (the rest are held by others or done).
    pub idle: u64,
    /// `cassandra.fetchSizeInRows`, halved per read timeout of the chunk.
    pub fetch_rows: u64,
    /// Whether the page may grow past `fetch_rows` (not after a read timeout of its chunk).
    pub grow: bool,
    /// The server's frame limit.
    pub frame_bytes: u64,
}

/// Rows for the next page. A worker holds a page fetched, and at once the previous page's
/// encoding being sent and the current one being built: all three are counted. A power of two:
/// as the share moves, pages take a few sizes the allocator can reuse.
pub fn page_rows(i: &PageInputs) -> i32 {
    let fetch = i.fetch_rows.clamp(1, i32::MAX as u64);
    if i.row_bytes == 0 {
        return fetch as i32;
    }
    let row_bytes = i.row_bytes.max(1);
    // Workers the controller has just stood down finish their chunks first: they count too.
    let all_busy = i.idle == 0 || !i.grow;
    let (holders, ceiling) = if all_busy {
        (i.active.max(i.holding), fetch)
    } else {
        // Fewer chunks than workers: the pages in flight take the idle workers' memory, up to
        // the frame.
        let frame_rows = i.frame_bytes / FRAME_SHARE / row_bytes;
        (i.holding, fetch.max(frame_rows))
    };
    let share = i.budget / holders.max(1);
    let rows = (share / (3 * row_bytes)).min(ceiling).max(128);
    (1u64 << (63 - rows.leading_zeros())).min(ceiling) as i32
}

/// The source's frame limit (`native_transport_max_frame_size` from `system_views.settings`,
/// Cassandra 4.0 and later), else [`DEFAULT_FRAME_BYTES`].
pub async fn frame_bytes(session: &Session) -> u64 {
    let read = async {
        let rows = session
            .query_unpaged(
                "SELECT value FROM system_views.settings WHERE name = 'native_transport_max_frame_size'",
                &[],
            )
            .await
            .ok()?
            .into_rows_result()
            .ok()?;
        let (value,): (Option<String>,) = rows.maybe_first_row().ok()??;
        parse_size(&value?)
    };
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Some(b)) if b >= 1 << 20 => b,
        _ => DEFAULT_FRAME_BYTES,
    }
}

/// `16MiB`, `16384KiB`, `16777216B` or a bare number of bytes (how Cassandra's settings table
/// prints a data size).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit = match s[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> PageInputs {
        PageInputs {
            budget: 48 << 20,
            row_bytes: 100,
            active: 16,
            holding: 16,
            idle: 0,
            fetch_rows: 5000,
            grow: true,
            frame_bytes: DEFAULT_FRAME_BYTES,
        }
    }

    #[test]
    fn with_every_worker_busy_a_page_keeps_to_the_fetch_size_and_its_share() {
        assert_eq!(page_rows(&inputs()), 4096);
        // A small budget: the share wins.
        let small = PageInputs {
            budget: 4 << 20,
            ..inputs()
        };
        assert_eq!(page_rows(&small), 512);
        // Unknown row size: the fetch size.
        let first = PageInputs {
            row_bytes: 0,
            ..inputs()
        };
        assert_eq!(page_rows(&first), 5000);
    }

    #[test]
    fn pages_grow_into_idle_workers_memory_up_to_the_frame() {
        let tail = PageInputs {
            holding: 2,
            idle: 14,
            ..inputs()
        };
        // 24 MiB each / 300 B = 83K rows; the frame's half (8 MiB) at 100 B is 83,886 rows.
        assert_eq!(page_rows(&tail), 65_536);
        let one = PageInputs {
            holding: 1,
            idle: 15,
            row_bytes: 1000,
            ..inputs()
        };
        // 8 MiB of frame / 1000 B = 8,388 rows, under the 16K the budget allows.
        assert_eq!(page_rows(&one), 8192);
        // The page memory still bounds it: all of it over three pages.
        let tight = PageInputs {
            budget: 3 << 20,
            ..one
        };
        assert_eq!(page_rows(&tight), 1024);
        // A smaller frame limit keeps pages smaller.
        let frame = PageInputs {
            frame_bytes: 2 << 20,
            ..tail
        };
        assert!(page_rows(&frame) as u64 * 100 <= 1 << 20);
        // After a read timeout the page stays within its shrunk fetch size.
        let shrunk = PageInputs {
            fetch_rows: 2500,
            grow: false,
            ..tail
        };
        assert_eq!(page_rows(&shrunk), 2048);
    }

    #[test]
    fn sizes_parse_as_cassandra_prints_them() {
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("16384KiB"), Some(16 << 20));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("1048576B"), Some(1 << 20));
        assert_eq!(parse_size("lots"), None);
    }
}
