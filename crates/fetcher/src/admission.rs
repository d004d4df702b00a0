//! Adaptive request admission: a concurrency limit and a request rate, both lowered when the API
//! pushes back (429, 503) and raised again (AIMD), never above what the user set.
//!
//! - **Decrease**, at most once per second so one burst of rejections counts once: the
//!   concurrency is halved and the rate set below what the API accepted in the last second.
//! - **Outages are not rate limits.** A second in which the API accepted nothing says nothing
//!   about the rate it can take (it refuses everything for now; `Retry-After` and the halved
//!   concurrency do the waiting), so it does not cut the rate. And when nothing at all was
//!   accepted between a cut and such a second, that cut was the onset of the outage (made from
//!   the few requests that got through as it began), not a measured limit: it is undone.
//! - **Increase**: the concurrency by about one per round trip; the rate by
//!   `max(1, 5% of the rate)` requests/s per second for four seconds after a cut, that increment
//!   doubling every further two seconds without push-back. Close to a limit just hit the rate
//!   creeps (few 429s under a steady limit); well past it without push-back the limit has moved
//!   and the rate is back to full speed within seconds, not minutes.
//! - **Pacing** re-reads the rate while waiting, so requests queued behind a low rate do not
//!   keep their slow slots after it has grown back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Shared by every request of one run.
#[derive(Debug)]
pub(crate) struct Admission {
    state: Mutex<State>,
    freed: Notify,
    max_concurrency: usize,
    max_rps: Option<f64>,
}

#[derive(Debug)]
struct State {
    /// Current concurrency limit; at least 1.
    limit: f64,
    in_flight: usize,
    /// Current request rate, `None` while unlimited.
    rate: Option<f64>,
    /// The earliest time the next paced request may start.
    next_slot: Instant,
    last_decrease: Option<Instant>,
    recent_successes: VecDeque<Instant>,
    /// The last cut of the rate, while it may still prove to be the onset of an outage.
    last_cut: Option<Cut>,
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    /// The rate before the cut.
    before: Option<f64>,
    /// Successes since the cut.
    successes: u64,
}

/// One admitted request; releases its slot when dropped.
pub(crate) struct Permit {
    admission: Arc<Admission>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.lock().in_flight -= 1;
        self.admission.freed.notify_one();
    }
}

/// The window over which accepted requests are counted, and the shortest time between two
/// decreases.
const WINDOW: Duration = Duration::from_secs(1);
/// Time after a decrease during which the rate grows without acceleration.
const CAREFUL: Duration = Duration::from_secs(4);
/// After [`CAREFUL`], the rate's growth per second doubles this often.
const DOUBLING: Duration = Duration::from_secs(2);
/// Growth of the rate per second as a share of the rate (at least 1 request/s per second),
/// before acceleration.
const GROWTH: f64 = 0.05;

/// The admission's current limits, for log lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// Requests in flight allowed now.
    pub(crate) concurrency: usize,
    /// The configured maximum of that.
    pub(crate) max_concurrency: usize,
    /// Requests per second allowed now, `None` when not paced.
    pub(crate) rate: Option<f64>,
}

impl Admission {
    pub(crate) fn new(max_concurrency: usize, max_rps: Option<f64>) -> Arc<Admission> {
        let max_concurrency = max_concurrency.max(1);
        Arc::new(Admission {
            state: Mutex::new(State {
                limit: max_concurrency as f64,
                in_flight: 0,
                rate: max_rps,
                next_slot: Instant::now(),
                last_decrease: None,
                recent_successes: VecDeque::new(),
                last_cut: None,
            }),
            freed: Notify::new(),
            max_concurrency,
            max_rps,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a concurrency slot, then for the next rate slot.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let freed = self.freed.notified();
            {
                let mut state = self.lock();
                if state.in_flight < state.limit.floor().max(1.0) as usize {
                    state.in_flight += 1;
                    break;
                }
            }
            freed.await;
        }
        let permit = Permit {
            admission: Arc::clone(self),
        };
        // Take the next slot when it has come; until then wait for it and look again: the
        // rate may have changed meanwhile, or another request taken the slot.
        loop {
            let wait_until = {
                let mut state = self.lock();
                let now = Instant::now();
                match state.rate {
                    None => None,
                    Some(_) if state.next_slot > now => Some(state.next_slot),
                    Some(rate) => {
                        state.next_slot = now + Duration::from_secs_f64(1.0 / rate);
                        None
                    }
                }
            };
            match wait_until {
                Some(slot) => tokio::time::sleep_until(slot).await,
                None => return permit,
            }
        }
    }

    /// A request succeeded: grow the concurrency limit by about one per round trip and the rate
    /// by about `max(1, 5% of it)` requests/s per second, doubling every [`DOUBLING`] past
    /// [`CAREFUL`] since the last decrease.
    pub(crate) fn on_success(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        state.limit = (state.limit + 1.0 / state.limit).min(self.max_concurrency as f64);
        state.recent_successes.push_back(now);
        while state
            .recent_successes
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            state.recent_successes.pop_front();
        }
        if let Some(cut) = state.last_cut.as_mut() {
            cut.successes += 1;
        }
        if let Some(rate) = state.rate {
            let calm = state
                .last_decrease
                .map_or(Duration::MAX, |t| now.duration_since(t))
                .saturating_sub(CAREFUL);
            let doublings = (calm.as_secs_f64() / DOUBLING.as_secs_f64()).min(20.0);
            let per_second = (GROWTH * rate).max(1.0) * 2f64.powf(doublings);
            // About `rate` successes arrive per second, so each adds 1/rate of the increment.
            let grown = rate + per_second / rate;
            state.rate = match self.max_rps {
                Some(max) => Some(grown.min(max)),
                // Once well above what we were throttled at, stop pacing altogether.
                None if grown > 10_000.0 => None,
                None => Some(grown),
            };
        }
        drop(state);
        self.freed.notify_one();
    }

    /// The API pushed back (429 or 503): halve the concurrency and cut the rate to below what
    /// it accepted in the last second, at most once per second so one burst of rejections
    /// counts once. A second without any success leaves the rate as it is, and undoes the
    /// cut before it if nothing succeeded since.
    pub(crate) fn on_throttle(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        if state
            .last_decrease
            .is_some_and(|t| now.duration_since(t) < WINDOW)
        {
            return;
        }
        state.last_decrease = Some(now);
        state.limit = (state.limit / 2.0).max(1.0);
        let accepted = state
            .recent_successes
            .iter()
            .filter(|t| now.duration_since(**t) <= WINDOW)
            .count() as f64;
        if accepted == 0.0 {
            if let Some(cut) = state.last_cut.take_if(|cut| cut.successes == 0) {
                state.rate = match (cut.before, state.rate) {
                    (Some(before), Some(now)) => Some(before.max(now)),
                    _ => None,
                };
            }
            return;
        }
        let before = state.rate;
        let current = before.unwrap_or(f64::INFINITY).min(accepted);
        state.rate = Some((current * 0.8).max(0.5));
        state.last_cut = Some(Cut {
            before,
            successes: 0,
        });
    }

    /// The limits as they are now.
    pub(crate) fn limits(&self) -> Limits {
        let state = self.lock();
        Limits {
            concurrency: state.limit.floor().max(1.0) as usize,
            max_concurrency: self.max_concurrency,
            rate: state.rate,
        }
    }

    /// The current concurrency limit.
    #[cfg(test)]
    pub(crate) fn concurrency(&self) -> usize {
        self.limits().concurrency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_concurrency_and_success_recovers_it() {
        let admission = Admission::new(32, None);
        assert_eq!(admission.concurrency(), 32);
        admission.on_throttle();
        assert_eq!(admission.concurrency(), 16);
        // A second rejection within the same second counts as the same event.
        admission.on_throttle();
        assert_eq!(admission.concurrency(), 16);
        for _ in 0..2000 {
            admission.on_success();
        }
        assert_eq!(admission.concurrency(), 32);
    }

    #[tokio::test]
    async fn permits_never_exceed_the_limit() {
        let admission = Admission::new(2, None);
        let a = admission.acquire().await;
        let _b = admission.acquire().await;
        let waiting = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move {
                let _c = admission.acquire().await;
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a freed slot admits the waiter")
            .expect("task ran");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_rate_spaces_requests() {
        let admission = Admission::new(8, Some(10.0));
        let start = Instant::now();
        for _ in 0..11 {
            drop(admission.acquire().await);
        }
        assert!(start.elapsed() >= Duration::from_millis(1000));
    }

    /// The rate a push-back sets after `successes` requests got through.
    async fn push_back_after(admission: &Arc<Admission>, successes: usize) -> f64 {
        succeed(admission, successes).await;
        admission.on_throttle();
        admission.limits().rate.expect("paced after a push-back")
    }

    /// Requests admitted one after another, each succeeding at once (virtual time).
    async fn succeed(admission: &Arc<Admission>, requests: usize) {
        for _ in 0..requests {
            drop(admission.acquire().await);
            admission.on_success();
        }
    }

    /// Requests admitted one after another in `seconds` seconds of virtual time, each taking
    /// 1 ms and succeeding.
    async fn admitted_within(admission: &Arc<Admission>, seconds: u64) -> usize {
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut n = 0;
        while Instant::now() < end {
            let permit = admission.acquire().await;
            tokio::time::advance(Duration::from_millis(1)).await;
            drop(permit);
            admission.on_success();
            n += 1;
        }
        n
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_refusals_with_no_success_leaves_the_rate_unpaced() {
        let admission = Admission::new(8, None);
        // Page 1 refused three times, a second apart (Retry-After: 1).
        for _ in 0..3 {
            admission.on_throttle();
            tokio::time::advance(Duration::from_millis(1010)).await;
        }
        let limits = admission.limits();
        assert_eq!(
            limits.rate, None,
            "nothing was accepted, so no rate was learnt"
        );
        assert_eq!(limits.concurrency, 1);
        // The concurrency grows by one per round trip (1 + 2 + ... + 7 successes, give or take).
        succeed(&admission, 40).await;
        assert_eq!(admission.concurrency(), 8);
        assert_eq!(admission.limits().rate, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_that_began_an_outage_is_undone() {
        let admission = Admission::new(8, None);
        // Page 1 got through, then everything is refused for three seconds.
        let cut = push_back_after(&admission, 1).await;
        assert!(cut < 1.0, "{cut}");
        tokio::time::advance(Duration::from_millis(1010)).await;
        admission.on_throttle();
        assert_eq!(
            admission.limits().rate,
            None,
            "the cut from one request is undone"
        );
        for _ in 0..2 {
            tokio::time::advance(Duration::from_millis(1010)).await;
            admission.on_throttle();
        }
        assert_eq!(admission.limits().rate, None, "no cut from an empty second");
        assert_eq!(admission.concurrency(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_followed_by_successes_is_a_limit_and_stays() {
        let admission = Admission::new(8, None);
        let cut = push_back_after(&admission, 10).await;
        succeed(&admission, 1).await;
        tokio::time::advance(Duration::from_millis(1010)).await;
        admission.on_throttle();
        succeed(&admission, 1).await;
        let rate = admission.limits().rate.expect("still paced");
        assert!(rate < 2.0 * cut, "{rate} after a cut to {cut}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_cut_during_a_brief_burst_grows_back_within_seconds() {
        let admission = Admission::new(8, None);
        let cut = push_back_after(&admission, 1).await;
        assert!(cut < 1.0, "{cut}");
        // The burst is over: every request succeeds from now on. Additive growth alone
        // (+1 request/s per second) admitted 38 requests in the next 8 s and 103 in the 8 s
        // after; this admits 43, then 2334 (the 1 ms each request takes here is the limit).
        let first = admitted_within(&admission, 8).await;
        let second = admitted_within(&admission, 8).await;
        assert!(first >= 38, "{first}");
        assert!(second > 1000, "{second}");
    }

    #[tokio::test(start_paused = true)]
    async fn under_a_steady_limit_the_rate_creeps_up_after_a_cut() {
        let admission = Admission::new(8, None);
        // 20 requests/s accepted for a second, then a 429: paced at 16/s.
        for _ in 0..20 {
            drop(admission.acquire().await);
            admission.on_success();
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        admission.on_throttle();
        let cut = admission.limits().rate.expect("paced after a push-back");
        assert!((cut - 16.0).abs() < 1e-9, "{cut}");
        // The first two seconds after it add about 1 request/s each: no rush back into the limit.
        admitted_within(&admission, 2).await;
        let rate = admission.limits().rate.expect("still paced");
        assert!(rate < 18.5, "{rate}");
    }
}
