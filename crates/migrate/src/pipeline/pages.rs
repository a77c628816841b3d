//! The page budget: how much page memory the workers may hold, and each worker's page size.

use super::*;

/// The page memory a nearby source needs at most: on loopback, 16 workers' pages of the default
/// 5,000-row fetch size read no faster from more (it was a third of the old 48 MiB default).
pub const NEAR: u64 = 16 << 20;

/// The page memory for a source `rtt` away, out of at most `max`. Pages in flight are what hides
/// the round trip, and the memory that takes grows with it (the bandwidth-delay product); close
/// by, [`NEAR`] (or a third of `max`, if less) reads as fast (measured on loopback), so the rest
/// comes in step with the round trip, all of it from 50 ms on (25 ms each way). An unmeasured
/// round trip gets all of `max`.
pub fn page_budget(max: u64, rtt: Option<Duration>) -> u64 {
    const FULL_AT: Duration = Duration::from_millis(50);
    let Some(rtt) = rtt else { return max };
    let floor = (max / 3).min(NEAR);
    let f = (rtt.as_secs_f64() / FULL_AT.as_secs_f64()).min(1.0);
    floor + ((max - floor) as f64 * f) as u64
}

/// Rows per page ([`crate::page_size`]): the fetch size (`ceiling`) within this worker's share
/// of the page budget; past it, when chunks are fewer than workers, unless `grow` is false
/// (the chunk's reads timed out).
pub(super) fn page_rows_for(ctx: &Ctx<'_>, ceiling: i32, grow: bool) -> i32 {
    crate::page_size::page_rows(&crate::page_size::PageInputs {
        budget: ctx.page_budget,
        row_bytes: ctx.encoder.row_bytes.load(Ordering::Relaxed),
        active: ctx.active.load(Ordering::Relaxed) as u64,
        // The run's slots in use count too: tables copied beside this one share the budget.
        holding: ctx
            .counters
            .chunks_in_flight
            .load(Ordering::Relaxed)
            .max(ctx.budget.in_use() as u64),
        idle: ctx.idle.load(Ordering::Relaxed),
        fetch_rows: ceiling.max(1) as u64,
        grow,
        frame_bytes: ctx.frame_bytes,
    })
}
