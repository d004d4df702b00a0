//! The fault engine: seeded draws per request, the rate limiter and the drift schedule.

use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Drift, DriftKind, Faults, probability};

/// A status fault replacing the normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusFault {
    Internal,
    BadGateway,
    Unavailable,
}

/// A fault in the body of a `200` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFault {
    Truncate,
    Reset,
    Slow(Duration),
}

/// Everything decided for one request up front.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Draw {
    pub(crate) latency: Duration,
    pub(crate) status: Option<StatusFault>,
    pub(crate) body: Option<BodyFault>,
    /// Random value for the cut point of a truncated or reset body.
    pub(crate) cut: u64,
}

/// Token bucket of capacity `rate`, refilled at `rate` tokens per second, starting full.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rps: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rps),
            tokens: f64::from(rps),
            last: now,
        }
    }

    /// Takes a token, or says how many whole seconds (at least 1) to wait for one.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Err(1);
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// How one request's answer is bent, beyond the fault draw (from a second RNG, so adding these
/// behaviours changes no existing fault sequence).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bend {
    /// Seed of this answer's order among ties.
    pub(crate) shuffle: Option<u64>,
    pub(crate) total_offset: i64,
    /// Served by the lagging replica.
    pub(crate) lagged: bool,
    /// Seed of the transient drops of this answer ([`Faults::p_drop`]).
    pub(crate) drop_seed: u64,
}

/// Changes of a live listing due now.
#[derive(Debug, Default)]
pub(crate) struct LiveChanges {
    pub(crate) signups: usize,
    /// Positions to delete, as fractions of the listing's length.
    pub(crate) deletes: Vec<f64>,
}

/// The installed faults and their running state.
#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    rng: ChaCha8Rng,
    aux: ChaCha8Rng,
    installed: Instant,
    signups_done: u64,
    deletes_done: u64,
    bucket: Option<TokenBucket>,
    /// Contacts requests counted before these faults were installed.
    drift_base: u64,
    /// Pending drift, in schedule order.
    drift: Vec<Drift>,
    next_drift: usize,
}

impl FaultState {
    /// Installs `faults` when `requests_so_far` contacts requests have been counted.
    pub(crate) fn new(faults: Faults, requests_so_far: u64) -> FaultState {
        let mut drift = faults.drift.clone();
        drift.sort_by_key(|d| d.after_request);
        FaultState {
            rng: ChaCha8Rng::seed_from_u64(faults.fault_seed),
            aux: ChaCha8Rng::seed_from_u64(faults.fault_seed ^ 0x5eed_1e55_b0a7_d00d),
            installed: Instant::now(),
            signups_done: 0,
            deletes_done: 0,
            bucket: faults
                .rate_limit_rps
                .map(|rps| TokenBucket::new(rps, Instant::now())),
            drift_base: requests_so_far,
            drift,
            next_drift: 0,
            faults,
        }
    }

    /// Draws the fate of one request. Always draws the same number of values, so the sequence
    /// of fates depends only on the seed and the request order.
    pub(crate) fn draw(&mut self) -> Draw {
        let jitter_nanos = u64::try_from(self.faults.latency_jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = self.rng.random_range(0..=jitter_nanos);
        let u_status: f64 = self.rng.random();
        let u_body: f64 = self.rng.random();
        let cut: u64 = self.rng.random();
        let f = &self.faults;

        let status = pick(
            u_status,
            [
                (f.p_500, StatusFault::Internal),
                (f.p_502, StatusFault::BadGateway),
                (f.p_503, StatusFault::Unavailable),
            ],
        );
        let body = pick(
            u_body,
            [
                (f.p_truncate, BodyFault::Truncate),
                (f.p_reset, BodyFault::Reset),
                (f.p_slow, BodyFault::Slow(f.slow_body)),
            ],
        );

        Draw {
            latency: f.latency.saturating_add(Duration::from_nanos(jitter)),
            status,
            body,
            cut,
        }
    }

    /// Draws how this request's answer is bent (ties, total, replica).
    pub(crate) fn bend(&mut self) -> Bend {
        let f = &self.faults;
        let seed: u64 = self.aux.random();
        let jitter = i64::try_from(f.total_jitter).unwrap_or(i64::MAX);
        let total_offset = if jitter > 0 {
            self.aux.random_range(-jitter..=jitter)
        } else {
            0
        };
        let lagged = f.replica_lag.is_some() && self.aux.random_bool(0.5);
        Bend {
            shuffle: f.shuffle_ties.then_some(seed),
            total_offset,
            lagged,
            drop_seed: seed,
        }
    }

    /// The page-size cap of the pod answering the `requests`-th contacts request (total
    /// count, 1-based), if [`Faults::page_cap`] sets one.
    pub(crate) fn page_cap(&self, requests: u64) -> Option<u64> {
        let cap = self.faults.page_cap?;
        let nth = requests.saturating_sub(self.drift_base);
        if let Some(other) = cap.other_pod
            && nth.is_multiple_of(2)
        {
            return Some(other);
        }
        Some(match cap.change {
            Some(change) if nth > change.after_request => change.cap,
            _ => cap.cap,
        })
    }

    /// The sign-ups and deletions of a live listing due by `now` and not applied yet.
    pub(crate) fn due_live(&mut self, now: Instant) -> LiveChanges {
        let Some(live) = self.faults.live else {
            return LiveChanges::default();
        };
        let elapsed = now.saturating_duration_since(self.installed).as_secs_f64();
        let due = |rate: f64| (elapsed * rate.max(0.0)).floor() as u64;
        let signups = due(live.signups_per_sec).saturating_sub(self.signups_done);
        let deletes = due(live.deletes_per_sec).saturating_sub(self.deletes_done);
        self.signups_done += signups;
        self.deletes_done += deletes;
        LiveChanges {
            signups: signups as usize,
            deletes: (0..deletes).map(|_| self.aux.random::<f64>()).collect(),
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Takes a rate-limit token; `Err(seconds)` is the `Retry-After` of a `429`.
    pub(crate) fn take_token(&mut self, now: Instant) -> Result<(), u64> {
        match &mut self.bucket {
            Some(bucket) => bucket.take(now),
            None => Ok(()),
        }
    }

    /// Pops the drift due once `requests` contacts requests (total count) have been answered.
    pub(crate) fn due_drift(&mut self, requests: u64) -> Vec<DriftKind> {
        let mut due = Vec::new();
        while let Some(d) = self.drift.get(self.next_drift) {
            if self.drift_base.saturating_add(d.after_request) > requests {
                break;
            }
            due.push(d.kind);
            self.next_drift += 1;
        }
        due
    }
}

/// The first of `choices` whose probability, laid end to end with the ones before it, covers
/// the uniform draw `u`; `None` past them all.
fn pick<T>(u: f64, choices: [(f64, T); 3]) -> Option<T> {
    let mut upto = 0.0;
    for (p, choice) in choices {
        upto += probability(p);
        if u < upto {
            return Some(choice);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_capacity_then_asks_to_wait_at_least_a_second() {
        let now = Instant::now();
        let mut b = TokenBucket::new(3, now);
        assert_eq!(b.take(now), Ok(()));
        assert_eq!(b.take(now), Ok(()));
        assert_eq!(b.take(now), Ok(()));
        assert_eq!(b.take(now), Err(1));
        assert_eq!(b.take(now + Duration::from_millis(400)), Ok(()));
        assert_eq!(TokenBucket::new(0, now).take(now), Err(1));
    }

    #[test]
    fn draws_are_reproducible_and_exclusive() {
        let faults = Faults {
            p_500: 0.2,
            p_502: 0.2,
            p_503: 0.2,
            p_truncate: 0.3,
            p_reset: 0.3,
            p_slow: 0.3,
            fault_seed: 9,
            ..Faults::default()
        };
        let mut a = FaultState::new(faults.clone(), 0);
        let mut b = FaultState::new(faults, 0);
        let mut kinds = std::collections::HashSet::new();
        for _ in 0..500 {
            let (x, y) = (a.draw(), b.draw());
            assert_eq!((x.status, x.body, x.cut), (y.status, y.body, y.cut));
            kinds.insert(format!("status {:?}", x.status));
            kinds.insert(format!("body {:?}", x.body));
        }
        assert_eq!(kinds.len(), 8);
    }

    #[test]
    fn certain_faults_always_fire_and_none_never() {
        let mut s = FaultState::new(
            Faults {
                p_502: 1.0,
                p_slow: 7.0,
                ..Faults::default()
            },
            0,
        );
        let mut none = FaultState::new(Faults::default(), 0);
        for _ in 0..100 {
            let d = s.draw();
            assert_eq!(d.status, Some(StatusFault::BadGateway));
            assert_eq!(d.body, Some(BodyFault::Slow(Duration::ZERO)));
            let d = none.draw();
            assert_eq!((d.status, d.body, d.latency), (None, None, Duration::ZERO));
        }
    }

    #[test]
    fn drift_is_due_relative_to_installation() {
        let mut s = FaultState::new(
            Faults {
                drift: vec![
                    Drift {
                        after_request: 3,
                        kind: DriftKind::Delete(1),
                    },
                    Drift {
                        after_request: 1,
                        kind: DriftKind::Insert(2),
                    },
                ],
                ..Faults::default()
            },
            10,
        );
        assert!(s.due_drift(10).is_empty());
        assert_eq!(s.due_drift(11), vec![DriftKind::Insert(2)]);
        assert!(s.due_drift(12).is_empty());
        assert_eq!(s.due_drift(20), vec![DriftKind::Delete(1)]);
        assert!(s.due_drift(30).is_empty());
    }

    #[test]
    fn the_page_cap_changes_after_its_request_and_alternates_between_pods() {
        use crate::config::{CapChange, CapReport, PageCap};
        let cap = PageCap {
            cap: 100,
            report: CapReport::Reported,
            change: Some(CapChange {
                after_request: 3,
                cap: 40,
            }),
            other_pod: None,
        };
        let s = FaultState::new(
            Faults {
                page_cap: Some(cap),
                ..Faults::default()
            },
            10,
        );
        let caps: Vec<_> = (11..=15).map(|n| s.page_cap(n)).collect();
        assert_eq!(caps, [Some(100), Some(100), Some(100), Some(40), Some(40)]);
        let s = FaultState::new(
            Faults {
                page_cap: Some(PageCap {
                    other_pod: Some(70),
                    ..cap
                }),
                ..Faults::default()
            },
            0,
        );
        let caps: Vec<_> = (1..=6).map(|n| s.page_cap(n)).collect();
        assert_eq!(
            caps,
            [Some(100), Some(70), Some(100), Some(70), Some(40), Some(70)]
        );
        assert_eq!(FaultState::new(Faults::default(), 0).page_cap(1), None);
    }
}
