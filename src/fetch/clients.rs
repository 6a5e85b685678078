//! A cache of connected providers per store identity. Credentials are exchanged once and reused
//! until shortly before they expire, so reconciles cost no STS call and no TokenRequest. Each
//! identity has one [`Reader`] (its coalesced, batched reads), and each store one [`Budget`]
//! shared by its identities.
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lockstep_provider_api::SecretProvider;

use super::budget::Budget;
use super::reader::Reader;

/// Credentials are renewed this long before they expire, so no request carries dying credentials.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// What identifies a set of credentials: the store, its spec, where it is used from, and the
/// versions of the Kubernetes objects its auth reads. Never any credential material.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// `Kind/namespace/name` of the store.
    pub store: String,
    /// The store's `metadata.generation`: a changed spec means new credentials.
    pub generation: i64,
    /// The ExternalSecret's namespace (referent auth resolves per namespace).
    pub consumer_namespace: String,
    /// `namespace/name@resourceVersion` of each Secret or ServiceAccount the auth read.
    pub sources: Vec<String>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

#[derive(Clone)]
struct Entry {
    reader: Reader,
    expires_at: Option<SystemTime>,
}

#[derive(Default)]
pub struct ClientCache {
    slots: Mutex<HashMap<CacheKey, Slot>>,
    budgets: Mutex<HashMap<String, Arc<Budget>>>,
    connects: AtomicU64,
    metrics: crate::telemetry::Metrics,
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCache")
            .field("connects", &self.connects())
            .finish_non_exhaustive()
    }
}

impl ClientCache {
    /// A cache whose connections count their provider calls and credential exchanges.
    pub fn with_metrics(metrics: crate::telemetry::Metrics) -> Self {
        Self {
            metrics,
            ..Self::default()
        }
    }

    pub fn metrics(&self) -> &crate::telemetry::Metrics {
        &self.metrics
    }

    /// The reader of a provider without credentials (the fake provider: its configuration is its
    /// data), built once per store generation and shared like any other; no exchange is counted.
    pub async fn get_or_build(
        &self,
        key: CacheKey,
        build: impl FnOnce() -> Arc<dyn SecretProvider>,
    ) -> Reader {
        let budget = self.budget(&key.store);
        let slot = self.slot(key);
        let mut entry = slot.lock().await;
        if let Some(e) = entry.as_ref() {
            return e.reader.clone();
        }
        let reader = Reader::new(build(), budget);
        *entry = Some(Entry {
            reader: reader.clone(),
            expires_at: None,
        });
        reader
    }

    /// The budget of `store`, shared by all its identities.
    pub fn budget(&self, store: &str) -> Arc<Budget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        budgets
            .entry(store.to_owned())
            .or_insert_with(|| Arc::new(Budget::new(store, self.metrics.clone())))
            .clone()
    }

    /// The reader of the connected provider for `key`, connecting (once, even under concurrent
    /// callers) when there is none or its credentials are about to expire.
    pub async fn get_or_connect<E, F, Fut>(&self, key: CacheKey, connect: F) -> Result<Reader, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Arc<dyn SecretProvider>, Option<SystemTime>), E>>,
    {
        let budget = self.budget(&key.store);
        let slot = self.slot(key);
        let mut entry = slot.lock().await;
        if let Some(e) = entry
            .as_ref()
            .filter(|e| fresh(e.expires_at, SystemTime::now()))
        {
            return Ok(e.reader.clone());
        }
        let (provider, expires_at) = match connect().await {
            Ok(connected) => connected,
            Err(e) => {
                self.metrics.credential_exchange(false);
                return Err(e);
            }
        };
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.metrics.credential_exchange(true);
        let reader = Reader::new(provider, budget);
        *entry = Some(Entry {
            reader: reader.clone(),
            expires_at,
        });
        Ok(reader)
    }

    /// Forgets every identity of a store (it was deleted or its credentials were refused).
    pub fn forget_store(&self, store: &str) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|k, _| k.store != store);
        }
    }

    /// How many times credentials were exchanged (for metrics and tests).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    fn slot(&self, key: CacheKey) -> Slot {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !slots.contains_key(&key) {
            // A new generation or new source versions replace the store's older entries.
            slots.retain(|k, _| {
                !(k.store == key.store && k.consumer_namespace == key.consumer_namespace)
            });
        }
        slots.entry(key).or_default().clone()
    }
}

/// Whether credentials expiring at `expires_at` are still good to use at `now`.
fn fresh(expires_at: Option<SystemTime>, now: SystemTime) -> bool {
    expires_at.is_none_or(|at| at > now + RENEW_BEFORE_EXPIRY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_provider_fake::FakeProvider;

    fn key(generation: i64) -> CacheKey {
        CacheKey {
            store: "SecretStore/a/s".into(),
            generation,
            consumer_namespace: "a".into(),
            sources: vec![],
        }
    }

    async fn connect(
        expires_in: Option<Duration>,
    ) -> Result<(Arc<dyn SecretProvider>, Option<SystemTime>), ()> {
        Ok((
            Arc::new(FakeProvider::default()),
            expires_in.map(|d| SystemTime::now() + d),
        ))
    }

    #[tokio::test]
    async fn connects_once_per_identity() {
        let cache = ClientCache::default();
        for _ in 0..10 {
            cache
                .get_or_connect(key(1), || connect(Some(Duration::from_secs(3600))))
                .await
                .ok();
        }
        assert_eq!(cache.connects(), 1);
        cache.get_or_connect(key(2), || connect(None)).await.ok();
        assert_eq!(
            cache.connects(),
            2,
            "a new store generation means new credentials"
        );
        assert_eq!(
            cache.slots.lock().map(|s| s.len()).unwrap_or(0),
            1,
            "the old generation is dropped"
        );
    }

    #[tokio::test]
    async fn renews_credentials_before_they_expire() {
        let cache = ClientCache::default();
        cache
            .get_or_connect(key(1), || connect(Some(Duration::from_secs(60))))
            .await
            .ok();
        cache
            .get_or_connect(key(1), || connect(Some(Duration::from_secs(3600))))
            .await
            .ok();
        assert_eq!(
            cache.connects(),
            2,
            "credentials with a minute left are renewed"
        );
    }

    #[tokio::test]
    async fn a_provider_without_credentials_is_built_once_per_generation() {
        let cache = ClientCache::default();
        let builds = std::sync::atomic::AtomicUsize::new(0);
        let build = || {
            builds.fetch_add(1, Ordering::Relaxed);
            Arc::new(FakeProvider::default()) as Arc<dyn SecretProvider>
        };
        cache.get_or_build(key(1), build).await;
        cache.get_or_build(key(1), build).await;
        assert_eq!(builds.load(Ordering::Relaxed), 1);
        cache.get_or_build(key(2), build).await;
        assert_eq!(builds.load(Ordering::Relaxed), 2);
        assert_eq!(cache.connects(), 0, "no credential exchange is counted");
    }

    #[test]
    fn freshness() {
        let now = SystemTime::now();
        assert!(fresh(None, now));
        assert!(fresh(Some(now + Duration::from_secs(3600)), now));
        assert!(!fresh(Some(now + Duration::from_secs(60)), now));
    }
}
