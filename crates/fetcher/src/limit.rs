//! Adaptive request admission: a concurrency limit and a request rate, both lowered when the API
//! pushes back (429, 503) and raised again gradually (AIMD), never above what the user set.

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
    next_slot: Instant,
    last_decrease: Option<Instant>,
    recent_successes: VecDeque<Instant>,
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

const WINDOW: Duration = Duration::from_secs(1);

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
        let slot = {
            let mut state = self.lock();
            let now = Instant::now();
            match state.rate {
                Some(rate) => {
                    let slot = state.next_slot.max(now);
                    state.next_slot = slot + Duration::from_secs_f64(1.0 / rate);
                    Some(slot)
                }
                None => None,
            }
        };
        if let Some(slot) = slot {
            tokio::time::sleep_until(slot).await;
        }
        permit
    }

    /// A request succeeded: grow the concurrency limit by about one per round trip and the rate
    /// by about one request/s per second.
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
        if let Some(rate) = state.rate {
            let grown = rate + 1.0 / rate;
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
    /// it just accepted, at most once per second so one burst of rejections counts once.
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
        let current = state.rate.unwrap_or(f64::INFINITY).min(accepted.max(1.0));
        state.rate = Some((current * 0.8).max(0.5));
    }

    /// The current concurrency limit (for statistics).
    #[cfg(test)]
    pub(crate) fn concurrency(&self) -> usize {
        self.lock().limit.floor().max(1.0) as usize
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
}
