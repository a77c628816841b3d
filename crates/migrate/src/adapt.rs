//! Adaptive concurrency: how many chunks a process works on at once.
//!
//! Across a WAN every chunk spends round trips waiting (lease, COPY start, pages, commit), so
//! more chunks in flight hide more latency — until a server or the CPU saturates, where more
//! only adds contention. The controller climbs the throughput curve: it adds workers while each
//! step raises the measured rate, steps back when a step did not pay, and backs off
//! multiplicatively on timeouts and errors. It probes upwards again now and then, as the best
//! level moves with the load.
//!
//! The controller is pure logic, fed one measurement per window; [`steer`] feeds it and applies
//! its level, for one table's workers ([`crate::pipeline`]) or a run's slots ([`crate::job`]).

/// What one window measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Rows per second over the window.
    pub rate: f64,
    /// Reads or writes that failed (and were retried) in the window.
    pub errors: u64,
    /// The 99th percentile of the window's Cassandra page reads, in milliseconds.
    pub source_p99_ms: Option<f64>,
}

/// Why the level changed (or did not), for the log and the live page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Waiting for the first full window at this level.
    Settling,
    /// The last step paid: one more.
    Raise,
    /// Probing whether fewer do as well.
    Lower,
    /// The last step did not pay: back to the level before it.
    Revert,
    /// At the best level found; hold.
    Hold,
    /// Errors or timeouts: fewer at once.
    BackOff,
    /// The source's page reads are slower than `ferry.sourceLatencyTargetMs`: fewer at once.
    OverLatency,
}

/// The controller's state.
#[derive(Clone, Debug)]
pub struct Controller {
    min: usize,
    max: usize,
    level: usize,
    /// The level before the last probe, its rate, and whether the probe went up.
    before: Option<(usize, f64, bool)>,
    /// The next probe goes down (probes alternate, so noise cannot only ratchet upwards).
    down_next: bool,
    /// Windows to hold before probing upwards again.
    hold: u32,
    /// The first window after a change is discarded (workers are still starting).
    settling: bool,
    /// Rates of the windows measured at this level since it was set (after settling).
    rates: Vec<f64>,
    /// How much one window's rate differs from the previous at a steady level, relative
    /// (an exponentially weighted mean): a raise must gain clearly more than this noise.
    noise: f64,
    /// `ferry.sourceLatencyTargetMs`: the page reads' p99 stays under it.
    latency_target_ms: Option<f64>,
    /// The last window's page-read p99.
    last_p99_ms: Option<f64>,
}

/// A raise must gain at least this much to count (more when the rate is noisy).
const GAIN: f64 = 0.05;
/// Windows averaged at a level before a raise is judged.
const MEASURE_WINDOWS: usize = 2;
/// Windows held at the best level before probing upwards again.
const HOLD_WINDOWS: u32 = 5;

impl Controller {
    /// Starts at `start`, within `min..=max`.
    pub fn new(start: usize, min: usize, max: usize) -> Self {
        let min = min.max(1);
        let max = max.max(min);
        Controller {
            min,
            max,
            level: start.clamp(min, max),
            before: None,
            hold: 0,
            settling: true,
            rates: Vec::new(),
            noise: 0.0,
            down_next: false,
            latency_target_ms: None,
            last_p99_ms: None,
        }
    }

    /// Keeps the p99 of the source's page reads under `ms` (`ferry.sourceLatencyTargetMs`): a
    /// window over it lowers the level by a quarter, and the level is not raised while the p99
    /// is within 80% of it.
    pub fn with_latency_target(mut self, ms: Option<f64>) -> Self {
        self.latency_target_ms = ms;
        self
    }

    /// Workers allowed now.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Feeds one window's measurement; returns the decision and the new level.
    pub fn observe(&mut self, w: Window) -> (Decision, usize) {
        self.last_p99_ms = w.source_p99_ms;
        if let (Some(target), Some(p99)) = (self.latency_target_ms, w.source_p99_ms) {
            if p99 > target && !self.settling {
                self.level = (self.level * 3 / 4).max(self.min);
                self.before = None;
                self.hold = HOLD_WINDOWS;
                self.changed();
                return (Decision::OverLatency, self.level);
            }
        }
        if w.errors > 0 {
            // Multiplicative decrease, and a longer wait before probing again.
            self.level = (self.level * 3 / 4).max(self.min);
            self.before = None;
            self.hold = HOLD_WINDOWS * 2;
            self.changed();
            return (Decision::BackOff, self.level);
        }
        if self.settling {
            self.settling = false;
            return (Decision::Settling, self.level);
        }
        if let Some(&last) = self.rates.last() {
            let mean = (last + w.rate) / 2.0;
            if mean > 0.0 {
                let d = (w.rate - last).abs() / mean;
                self.noise = if self.noise == 0.0 {
                    d
                } else {
                    0.8 * self.noise + 0.2 * d
                };
            }
        }
        self.rates.push(w.rate);
        if self.rates.len() < MEASURE_WINDOWS {
            return (Decision::Settling, self.level);
        }
        let rate = self.rates.iter().sum::<f64>() / self.rates.len() as f64;
        // Averages of MEASURE_WINDOWS windows: their noise is about noise / √2 each.
        let need = GAIN.max(2.0 * self.noise / std::f64::consts::SQRT_2);
        if let Some((prev_level, prev_rate, up)) = self.before.take() {
            if up && rate >= prev_rate * (1.0 + need) {
                return self.raise(rate);
            }
            if !up && rate >= prev_rate * (1.0 - GAIN) {
                // As good with fewer: stay down, and keep looking down next time.
                self.hold = HOLD_WINDOWS;
                self.down_next = true;
                self.rates.clear();
                return (Decision::Hold, self.level);
            }
            // The probe did not pay: back to the level before it.
            self.level = prev_level;
            self.hold = HOLD_WINDOWS;
            self.changed();
            return (Decision::Revert, self.level);
        }
        if self.hold > 0 {
            self.hold -= 1;
            return (Decision::Hold, self.level);
        }
        if self.down_next && self.level > self.min {
            self.down_next = false;
            let step = (self.level / 3).max(1);
            self.before = Some((self.level, rate, false));
            self.level = (self.level - step).max(self.min);
            self.changed();
            return (Decision::Lower, self.level);
        }
        self.down_next = true;
        self.raise(rate)
    }

    fn changed(&mut self) {
        self.settling = true;
        self.rates.clear();
    }

    fn raise(&mut self, rate: f64) -> (Decision, usize) {
        let near_target = matches!(
            (self.latency_target_ms, self.last_p99_ms),
            (Some(t), Some(p)) if p > 0.8 * t
        );
        if self.level >= self.max || near_target {
            self.hold = HOLD_WINDOWS;
            self.rates.clear();
            return (Decision::Hold, self.level);
        }
        // Steps of half the level: a 16-worker start reaches 48 in three steps.
        let step = (self.level / 2).max(2);
        self.before = Some((self.level, rate, true));
        self.level = (self.level + step).min(self.max);
        self.changed();
        (Decision::Raise, self.level)
    }
}

/// A source round trip at least this long is a WAN's, not a data centre's: see [`start_level`].
pub const WAN_RTT: std::time::Duration = std::time::Duration::from_millis(20);

/// Where the controller of a run of several tables starts (one table's starts at `writers`):
/// `writers` (the parallelism setting), or, when the source's measured round trip is a WAN's
/// ([`WAN_RTT`] or more), one raise step above it (16 → 24), within `max`: every chunk then
/// spends most of its time waiting, and the controller's first
/// raise comes three windows (6 s) in, which a short run across a WAN spends at too few workers.
/// It still probes up and down from there. With `ferry.sourceLatencyTargetMs` set the start stays
/// at `writers`: that bound asks ferry to go easy on the source, and a start above it would
/// overshoot before the first window says so.
pub fn start_level(
    writers: usize,
    max: usize,
    source_rtt: Option<std::time::Duration>,
    latency_target: bool,
) -> usize {
    let writers = writers.max(1);
    match source_rtt {
        Some(rtt) if rtt >= WAN_RTT && !latency_target => {
            (writers + (writers / 2).max(2)).min(max.max(writers))
        }
        _ => writers,
    }
}

/// How long one window measures.
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `c` forever: every [`WINDOW`], the rows moved (`rows`, a running total) and the retried
/// failures (`errors`, a running total) since the last window go in, and `apply` gets the level
/// whenever it is decided.
pub async fn steer(
    mut c: Controller,
    rows: impl Fn() -> u64,
    errors: impl Fn() -> u64,
    pages: impl Fn() -> crate::latency::Snapshot,
    apply: impl Fn(usize, Option<f64>),
) {
    let mut last_pages = pages();
    let (mut last_rows, mut last_errors, mut last_t) =
        (rows(), errors(), std::time::Instant::now());
    loop {
        tokio::time::sleep(WINDOW).await;
        let (r, e, t) = (rows(), errors(), std::time::Instant::now());
        let now_pages = pages();
        let window = Window {
            rate: r.saturating_sub(last_rows) as f64 / t.duration_since(last_t).as_secs_f64(),
            errors: e.saturating_sub(last_errors),
            source_p99_ms: now_pages.percentile_since(&last_pages, 99.0),
        };
        last_pages = now_pages;
        (last_rows, last_errors, last_t) = (r, e, t);
        let before = c.level();
        let (decision, level) = c.observe(window);
        if level != before {
            tracing::info!(
                ?decision,
                from = before,
                to = level,
                rate = window.rate as u64,
                source_p99_ms = window.source_p99_ms.map(|p| p as u64),
                "adaptive concurrency"
            );
        }
        apply(level, window.source_p99_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throughput curve: linear in workers up to a knee, flat after it.
    fn curve(knee: usize, per_worker: f64) -> impl Fn(usize) -> f64 {
        move |n| per_worker * n.min(knee) as f64
    }

    fn run(c: &mut Controller, f: &dyn Fn(usize) -> f64, windows: usize) -> Vec<usize> {
        (0..windows)
            .map(|_| {
                let rate = f(c.level());
                c.observe(Window {
                    rate,
                    errors: 0,
                    source_p99_ms: None,
                })
                .1
            })
            .collect()
    }

    #[test]
    fn climbs_to_the_knee_and_stays_near_it() {
        let mut c = Controller::new(16, 4, 64);
        let levels = run(&mut c, &curve(40, 1000.0), 60);
        // Most of the second half at the knee or one step above it (probes revert).
        let settled = levels[30..]
            .iter()
            .filter(|&&l| (40..=64).contains(&l))
            .count();
        assert!(settled >= 25, "{levels:?}");
        // Never above the ceiling, and it went up from the start.
        assert!(levels.iter().all(|&l| l <= 64));
        assert!(levels.iter().any(|&l| l > 16));
    }

    #[test]
    fn comes_down_to_a_knee_below_the_start() {
        // Saturated at 8 (a busy machine): raises are reverted, fewer do as well, so it settles
        // near 8 and never runs away upwards.
        let mut c = Controller::new(16, 4, 64);
        let levels = run(&mut c, &curve(8, 1000.0), 60);
        assert!(levels.iter().all(|&l| l <= 24), "{levels:?}");
        let near = levels[40..]
            .iter()
            .filter(|&&l| (6..=12).contains(&l))
            .count();
        assert!(near >= 15, "{levels:?}");
    }

    #[test]
    fn noise_alone_does_not_ratchet_the_level_up() {
        // A flat curve measured with ±15 % noise per window (deterministic pseudo-random).
        let mut c = Controller::new(16, 4, 64);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut levels = Vec::new();
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let jitter = (x % 3001) as f64 / 10_000.0 - 0.15;
            let rate = 80_000.0 * (1.0 + jitter);
            levels.push(
                c.observe(Window {
                    rate,
                    errors: 0,
                    source_p99_ms: None,
                })
                .1,
            );
        }
        let high = levels[150..].iter().filter(|&&l| l > 24).count();
        assert!(high <= 15, "{levels:?}");
    }

    #[test]
    fn backs_off_on_errors_and_respects_the_floor() {
        let mut c = Controller::new(16, 4, 64);
        let (d, l) = c.observe(Window {
            rate: 1.0,
            errors: 3,
            source_p99_ms: None,
        });
        assert_eq!((d, l), (Decision::BackOff, 12));
        for _ in 0..10 {
            c.observe(Window {
                rate: 1.0,
                errors: 1,
                source_p99_ms: None,
            });
        }
        assert_eq!(c.level(), 4);
    }

    #[test]
    fn stops_at_the_ceiling() {
        let mut c = Controller::new(16, 4, 24);
        let levels = run(&mut c, &curve(1000, 1000.0), 30);
        assert_eq!(levels.iter().max(), Some(&24));
    }

    #[test]
    fn a_wan_round_trip_starts_one_raise_step_up_within_the_ceiling() {
        use std::time::Duration;
        let ms = |n| Some(Duration::from_millis(n));
        // Loopback, a data centre, or nothing measured: the parallelism setting.
        assert_eq!(start_level(16, 48, ms(1), false), 16);
        assert_eq!(start_level(16, 48, ms(19), false), 16);
        assert_eq!(start_level(16, 48, None, false), 16);
        // A WAN: one raise step (what `raise` adds) up, never over the ceiling.
        assert_eq!(start_level(16, 48, ms(20), false), 24);
        assert_eq!(start_level(16, 48, ms(200), false), 24);
        assert_eq!(start_level(16, 20, ms(200), false), 20);
        assert_eq!(start_level(1, 48, ms(200), false), 3);
        // A ceiling under the setting keeps the setting (the run's ceiling is never below it).
        assert_eq!(start_level(16, 8, ms(200), false), 16);
        // With ferry.sourceLatencyTargetMs the start stays where the user put it.
        assert_eq!(start_level(16, 48, ms(200), true), 16);
        // The step is the controller's own.
        let mut c = Controller::new(16, 4, 48);
        let raised = run(&mut c, &curve(1000, 1000.0), 3);
        assert_eq!(raised[2], start_level(16, 48, ms(200), false));
    }

    #[test]
    fn start_is_clamped() {
        assert_eq!(Controller::new(100, 4, 48).level(), 48);
        assert_eq!(Controller::new(1, 4, 48).level(), 4);
        assert_eq!(Controller::new(0, 0, 0).level(), 1);
    }

    /// A source whose page reads slow down as more run at once (p99 = 5 ms per worker) while
    /// the rate still grows: unbounded, the controller climbs to its maximum; with a 60 ms
    /// target it backs off and settles where the p99 stays under it.
    #[test]
    fn a_latency_target_caps_the_level_where_the_p99_stays_under_it() {
        let run = |target: Option<f64>| {
            let mut c = Controller::new(16, 2, 64).with_latency_target(target);
            let mut levels = Vec::new();
            for _ in 0..200 {
                let l = c.level() as f64;
                let w = Window {
                    rate: 5_000.0 * l,
                    errors: 0,
                    source_p99_ms: Some(5.0 * l),
                };
                levels.push(c.observe(w).1);
            }
            levels
        };
        let free = run(None);
        // At the maximum but for its probes downwards now and then.
        let at_max = free[100..].iter().filter(|&&l| l == 64).count();
        assert!(at_max >= 70, "{free:?}");
        let capped = run(Some(60.0));
        // 60 ms at 5 ms per worker: at most 12 workers, and well above the floor.
        let over = capped[20..].iter().filter(|&&l| l > 12).count();
        assert!(over <= 5, "{capped:?}");
        assert!(capped[100..].iter().all(|&l| l >= 6), "{capped:?}");
    }
}
