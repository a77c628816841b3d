//! One run's workers and target connections, shared by every table it copies.
//!
//! A run of many tables copies them side by side. Each table has its own workers, but a worker
//! works only while it holds one of the run's slots ([`Budget::level`] of them, which the
//! adaptive controller may move), so the tables together never run more chunks at once than one
//! table alone would. A table waiting for its first worker goes first: other tables' workers
//! give their slot back after each chunk while one waits, so a keyspace of small tables does not
//! queue behind a big one.
//!
//! Target connections outlive the table that opened them: a worker that gives up its slot puts
//! its connection (with the per-chunk progress statements prepared on it) back in the pool, and
//! the next worker, of any table, takes it instead of connecting again — across a WAN a TLS
//! connection costs several round trips.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::progress::ChunkStatements;

/// A target connection between workers: the client, the progress statements prepared on it, and
/// the index of its node in [`crate::sink::TargetFacts::nodes`].
pub struct IdleConn {
    pub client: tokio_postgres::Client,
    pub st: ChunkStatements,
    pub node: usize,
}

/// The run's slots and idle connections.
pub struct Budget {
    level: AtomicUsize,
    in_use: AtomicUsize,
    /// Tables whose every worker is waiting for a slot.
    starving: AtomicUsize,
    idle: Mutex<Vec<IdleConn>>,
    changed: tokio::sync::Notify,
}

/// One slot, held by one worker; given back on drop.
pub struct Slot<'a> {
    budget: &'a Budget,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.budget.in_use.fetch_sub(1, Ordering::AcqRel);
        self.budget.changed.notify_waiters();
    }
}

impl Budget {
    pub fn new(level: usize) -> Self {
        Budget {
            level: AtomicUsize::new(level.max(1)),
            in_use: AtomicUsize::new(0),
            starving: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Slots the run may use at once.
    pub fn level(&self) -> usize {
        self.level.load(Ordering::Relaxed)
    }

    /// Moves the number of slots (the adaptive controller); workers over it finish their chunk
    /// and wait.
    pub fn set_level(&self, level: usize) {
        self.level.store(level.max(1), Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Slots held now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Whether a worker holding a slot should give it back after its chunk: a table is waiting
    /// for its first worker, or the level went down.
    pub fn should_yield(&self) -> bool {
        self.starving.load(Ordering::Relaxed) > 0 || self.in_use() > self.level()
    }

    /// A slot now, if one is free and no table waits for its first worker.
    pub fn try_slot(&self) -> Option<Slot<'_>> {
        if self.starving.load(Ordering::Relaxed) > 0 {
            return None;
        }
        self.take()
    }

    /// A slot for a table that has no worker working: waits for one, ahead of the other
    /// tables' extra workers.
    pub async fn first_slot(&self) -> Slot<'_> {
        if let Some(s) = self.take() {
            return s;
        }
        self.starving.fetch_add(1, Ordering::AcqRel);
        let slot = loop {
            let changed = self.changed.notified();
            if let Some(s) = self.take() {
                break s;
            }
            // Notified on every release; the timeout covers a release between `take` and
            // `notified` registering.
            let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
        };
        self.starving.fetch_sub(1, Ordering::AcqRel);
        slot
    }

    fn take(&self) -> Option<Slot<'_>> {
        let level = self.level();
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < level).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot { budget: self })
    }

    /// An idle connection, to `node` if one is there, else to any node.
    pub fn take_conn(&self, node: usize) -> Option<IdleConn> {
        let mut idle = self.idle.lock().ok()?;
        let at = idle
            .iter()
            .position(|c| c.node == node)
            .or_else(|| (!idle.is_empty()).then_some(0))?;
        Some(idle.swap_remove(at))
    }

    /// Keeps a connection (outside any transaction) for the next worker; a closed one, or one
    /// over the most the run can use, is dropped.
    pub fn give_conn(&self, conn: IdleConn) {
        if conn.client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.level().max(1) * 2 {
                idle.push(conn);
            }
        }
    }

    /// Idle connections now (tests and the log).
    pub fn idle_conns(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_never_exceed_the_level() {
        let b = Budget::new(2);
        let a = b.try_slot().expect("first");
        let c = b.try_slot().expect("second");
        assert!(b.try_slot().is_none());
        assert_eq!(b.in_use(), 2);
        drop(a);
        assert!(b.try_slot().is_some());
        drop(c);
        assert_eq!(b.in_use(), 0);
    }

    #[tokio::test]
    async fn a_starving_table_goes_before_extra_workers() {
        let b = std::sync::Arc::new(Budget::new(1));
        let held = b.try_slot().expect("slot");
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                let _s = b.first_slot().await;
            })
        };
        // The waiter registers as starving: the holder is asked to yield, and no extra worker
        // may take the slot the holder gives back.
        for _ in 0..50 {
            if b.should_yield() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(b.should_yield());
        drop(held);
        waiter.await.unwrap();
        assert_eq!(b.in_use(), 0);
        assert!(!b.should_yield());
    }

    #[tokio::test]
    async fn a_lower_level_asks_holders_to_yield() {
        let b = Budget::new(3);
        let _s: Vec<_> = (0..3).map(|_| b.try_slot().unwrap()).collect();
        assert!(!b.should_yield());
        b.set_level(2);
        assert!(b.should_yield());
        assert!(b.try_slot().is_none());
    }
}
