//! A store's budget of provider calls: a token bucket whose rate adapts to the provider, AIMD as
//! TCP does: halved when the provider throttles, raised a little after each call that was not
//! throttled. Each store has its own budget, so a throttled store slows only itself.
//!
//! Calls for never-synced ExternalSecrets ([`Lane::First`]) take tokens before any waiting
//! refresh does. A caller that would wait longer than [`MAX_WAIT`] is refused at once with a
//! `Throttled` error instead of queueing: its reconcile backs off and frees its place, so a
//! throttled store never holds on to the workers other stores need.
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lockstep_provider_api::{ErrorClass, ProviderError};

use super::Lane;

/// Calls per second a store starts with, and its burst.
pub const START_RATE: f64 = 50.0;
/// The rate never climbs above this many calls per second.
pub const MAX_RATE: f64 = 200.0;
/// Nor falls below this one.
pub const MIN_RATE: f64 = 0.2;
/// Added to the rate after each call the provider did not throttle.
const INCREASE: f64 = 1.0;
/// The longest a caller queues for a token before it is told to back off.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
    /// No token is handed out before this instant (a delay the provider asked for).
    paused_until: Option<Instant>,
}

#[derive(Debug)]
pub struct Budget {
    store: String,
    metrics: crate::telemetry::Metrics,
    bucket: Mutex<Bucket>,
    /// Callers of each lane waiting for a token: refreshes wait while first syncs do.
    waiting: [AtomicUsize; 2],
}

/// Counts a waiting caller for as long as it waits, even when its future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Budget {
    pub fn new(store: impl Into<String>, metrics: crate::telemetry::Metrics) -> Self {
        let store = store.into();
        metrics.budget_rate(&store, START_RATE);
        Self {
            store,
            metrics,
            bucket: Mutex::new(Bucket {
                rate: START_RATE,
                tokens: START_RATE,
                at: Instant::now(),
                paused_until: None,
            }),
            waiting: [AtomicUsize::new(0), AtomicUsize::new(0)],
        }
    }

    /// The current rate, in calls per second.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// Waits for one call's token; refused with `Throttled` when the wait would be too long.
    pub async fn acquire(&self, lane: Lane) -> Result<(), ProviderError> {
        let _waiting = Waiting::new(&self.waiting[lane as usize]);
        let deadline = Instant::now() + MAX_WAIT;
        loop {
            let now = Instant::now();
            let wait = {
                let mut bucket = self.lock();
                let first_waiting = self.waiting[Lane::First as usize].load(Ordering::Acquire);
                bucket.take(now, lane == Lane::First || first_waiting == 0)
            };
            match wait {
                None => return Ok(()),
                Some(wait) if now + wait > deadline => return Err(self.refusal()),
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// The provider throttled a call: halve the rate, and pause if it said for how long.
    pub fn throttled(&self, retry_after: Option<Duration>) {
        let mut bucket = self.lock();
        bucket.rate = (bucket.rate / 2.0).max(MIN_RATE);
        bucket.tokens = bucket.tokens.min(0.0);
        if let Some(delay) = retry_after {
            bucket.paused_until = Some(Instant::now() + delay.min(MAX_WAIT));
        }
        self.metrics.budget_rate(&self.store, bucket.rate);
        tracing::info!(store = %self.store, rate = bucket.rate, "provider throttled: slowing down");
    }

    /// A call went through without throttling: speed up a little.
    pub fn succeeded(&self) {
        let mut bucket = self.lock();
        if bucket.rate < MAX_RATE {
            bucket.rate = (bucket.rate + INCREASE).min(MAX_RATE);
            self.metrics.budget_rate(&self.store, bucket.rate);
        }
    }

    /// Counts a read that failed (metrics only: the budget reacts to throttling alone).
    pub fn read_failed(&self, class: ErrorClass) {
        self.metrics.read_failed(&self.store, class.as_str());
    }

    fn refusal(&self) -> ProviderError {
        let rate = self.rate();
        ProviderError::new(
            ErrorClass::Throttled,
            format!(
                "the provider of {} throttled lockstep, which now calls it at most {rate:.1} \
                 times per second and did not get a turn within {}s; lockstep backs off and \
                 retries (the rate rises again while calls go through)",
                self.store,
                MAX_WAIT.as_secs()
            ),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Bucket {
    /// Takes a token when one is there and `may_take`; otherwise how long to wait before trying
    /// again.
    fn take(&mut self, now: Instant, may_take: bool) -> Option<Duration> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Some(until - now);
            }
            self.paused_until = None;
        }
        let burst = self.rate.max(1.0);
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(burst);
        self.at = now;
        if self.tokens >= 1.0 && may_take {
            self.tokens -= 1.0;
            return None;
        }
        // A refresh that yields to first syncs looks again soon; otherwise at the next token.
        let next = ((1.0 - self.tokens).max(0.0) / self.rate).max(0.001);
        Some(Duration::from_secs_f64(if may_take {
            next
        } else {
            next.min(0.01)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd() {
        let budget = Budget::new("SecretStore/a/s", Default::default());
        assert_eq!(budget.rate(), START_RATE);
        budget.throttled(None);
        assert_eq!(budget.rate(), START_RATE / 2.0, "multiplicative decrease");
        budget.succeeded();
        assert_eq!(
            budget.rate(),
            START_RATE / 2.0 + INCREASE,
            "additive increase"
        );
        for _ in 0..100 {
            budget.throttled(None);
        }
        assert_eq!(budget.rate(), MIN_RATE);
        for _ in 0..1000 {
            budget.succeeded();
        }
        assert_eq!(budget.rate(), MAX_RATE);
    }

    #[test]
    fn tokens_refill_at_the_rate() {
        let now = Instant::now();
        let mut bucket = Bucket {
            rate: 10.0,
            tokens: 2.0,
            at: now,
            paused_until: None,
        };
        assert_eq!(bucket.take(now, true), None);
        assert_eq!(bucket.take(now, true), None);
        let wait = bucket.take(now, true).unwrap();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert_eq!(bucket.take(now + Duration::from_millis(100), true), None);
        // A refresh yields while a first sync waits, even with a token there.
        let later = now + Duration::from_secs(1);
        assert!(bucket.take(later, false).is_some());
        assert_eq!(bucket.take(later, true), None);
    }

    #[test]
    fn a_requested_pause_is_kept() {
        let now = Instant::now();
        let mut bucket = Bucket {
            rate: 10.0,
            tokens: 5.0,
            at: now,
            paused_until: Some(now + Duration::from_secs(2)),
        };
        assert_eq!(bucket.take(now, true), Some(Duration::from_secs(2)));
        assert_eq!(bucket.take(now + Duration::from_secs(2), true), None);
    }

    #[tokio::test]
    async fn first_syncs_go_before_waiting_refreshes() {
        let budget = std::sync::Arc::new(Budget::new("s", Default::default()));
        {
            let mut bucket = budget.lock();
            bucket.rate = 20.0;
            bucket.tokens = 0.0;
        }
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                budget.acquire(Lane::Refresh).await.unwrap();
                order.lock().unwrap().push(format!("refresh{i}"));
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (b, o) = (budget.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            b.acquire(Lane::First).await.unwrap();
            o.lock().unwrap().push("first".to_string());
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let first_at = order.iter().position(|s| s == "first").unwrap();
        assert!(
            first_at <= 1,
            "the first sync took one of the first two tokens: {order:?}"
        );
    }

    #[tokio::test]
    async fn a_long_wait_is_refused_as_throttled() {
        let budget = Budget::new("SecretStore/a/slow", Default::default());
        {
            let mut bucket = budget.lock();
            bucket.rate = MIN_RATE;
            bucket.tokens = -10.0;
        }
        let err = budget.acquire(Lane::Refresh).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Throttled);
        assert!(
            err.message.contains("SecretStore/a/slow"),
            "{}",
            err.message
        );
        assert_eq!(
            budget.waiting[Lane::Refresh as usize].load(Ordering::Acquire),
            0
        );
    }
}
