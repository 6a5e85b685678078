//! `--client-qps` and `--client-burst`: a token bucket in front of the Kubernetes client, as
//! client-go's rate limiter (ESO's defaults: 50 requests per second, bursts of 100). A watch
//! counts once, when it is opened.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Layer, Service};

/// The bucket: `burst` tokens, refilled at `qps` per second.
#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.qps;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// The layer for `kube::client::ClientBuilder::with_layer`. `qps <= 0` means no limit.
#[derive(Debug, Clone)]
pub struct ThrottleLayer {
    bucket: Option<Arc<Mutex<Bucket>>>,
}

impl ThrottleLayer {
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        let bucket = (qps > 0.0).then(|| {
            Arc::new(Mutex::new(Bucket {
                qps,
                burst,
                tokens: burst,
                at: Instant::now(),
            }))
        });
        Self { bucket }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            bucket: self.bucket.clone(),
            permit: false,
            wait: None,
        }
    }
}

pub struct Throttle<S> {
    inner: S,
    bucket: Option<Arc<Mutex<Bucket>>>,
    permit: bool,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> std::fmt::Debug for Throttle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

impl<S, R> Service<R> for Throttle<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Some(bucket) = &self.bucket {
            while !self.permit {
                if let Some(wait) = self.wait.as_mut() {
                    if wait.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.wait = None;
                }
                let taken = bucket
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(Instant::now());
                match taken {
                    Ok(()) => self.permit = true,
                    Err(delay) => self.wait = Some(Box::pin(tokio::time::sleep(delay))),
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permit = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut b = Bucket {
            qps: 10.0,
            burst: 3.0,
            tokens: 3.0,
            at: start,
        };
        assert!(b.take(start).is_ok());
        assert!(b.take(start).is_ok());
        assert!(b.take(start).is_ok());
        let wait = b.take(start).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(b.take(start + Duration::from_millis(100)).is_ok());
        // Never more than the burst, however long it was idle.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }
}
