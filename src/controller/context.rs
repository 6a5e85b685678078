//! What every reconcile shares: the client, the credential cache, the event recorder, and the
//! per-object failure counts that drive exponential backoff.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;

use crate::api::external_secret::{ExternalSecret, ExternalSecretStatus};
use crate::controller::external_secret::refresh::Slots;
use crate::fetch::ClientCache;
use crate::telemetry::{Metrics, Readiness};

/// The name events are reported under, and the prefix of lockstep's field managers.
pub const REPORTER: &str = "lockstep";

/// How lockstep runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Stores whose `spec.controller` is set to something else are left to another controller.
    pub controller_class: String,
    /// Where the audit records of every operation go (disabled: nowhere).
    pub audit: crate::audit::Auditor,
    /// How often stores are validated again when they do not say.
    pub store_refresh: Duration,
    /// Only this namespace's ExternalSecrets and SecretStores; ClusterSecretStores are left alone.
    pub namespace: Option<String>,
    /// ExternalSecrets reconciled at the same time; 0: no limit.
    pub concurrency: u16,
    /// Periodic refreshes running at the same time (see [`lanes`]).
    pub refresh_lane: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            controller_class: "default".into(),
            audit: crate::audit::Auditor::disabled(),
            store_refresh: Duration::from_secs(300),
            namespace: None,
            concurrency: 0,
            refresh_lane: lanes::width(50.0, 0),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub clients: ClientCache,
    pub metrics: Metrics,
    /// Set once the ExternalSecret cache has synced.
    pub readiness: Readiness,
    /// The stores as the ExternalSecret controller's watches see them, once it runs.
    pub stores: std::sync::OnceLock<crate::controller::stores::Cache>,
    /// The ExternalSecrets as the controller's watch caches them, once it runs.
    pub external_secrets: std::sync::OnceLock<kube::runtime::reflector::Store<ExternalSecret>>,
    /// The refresh slots of the cached ExternalSecrets, and when they were dealt.
    slots: Mutex<(Option<Instant>, Arc<Slots>)>,
    events: super::events::Events,
    refresh_lane: Arc<tokio::sync::Semaphore>,
    refresh_places: Arc<super::places::Places>,
    first_lane: Arc<tokio::sync::Semaphore>,
    failures: Mutex<HashMap<String, u32>>,
    /// The status lockstep last wrote per ExternalSecret uid. The watch cache can lag behind a
    /// status write, and a reconcile that saw the old status would fetch from the provider again.
    written: Mutex<HashMap<String, ExternalSecretStatus>>,
    /// The resourceVersion each Secret had after lockstep's last write to it, by
    /// `namespace/name`. The watch brings every write back; reconciling for lockstep's own write
    /// would only read the Secret again to find it intact (one API request per sync).
    own_writes: OwnWrites,
}

/// The resourceVersion of each Secret after lockstep's last write to it, by `namespace/name`.
#[derive(Debug, Default)]
pub struct OwnWrites(Mutex<HashMap<String, String>>);

impl OwnWrites {
    /// Records a write (`Some(resourceVersion)`), or forgets the Secret (`None`: deleted).
    pub fn record(&self, namespace: &str, name: &str, resource_version: Option<String>) {
        let mut own = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = format!("{namespace}/{name}");
        match resource_version {
            Some(rv) => own.insert(key, rv),
            None => own.remove(&key),
        };
    }

    /// Whether the Secret is as lockstep's last write left it, as far as the watch has told:
    /// the record stays until the watch brings a state that is not lockstep's own.
    pub fn untouched(&self, namespace: &str, name: &str) -> bool {
        let own = self.0.lock().unwrap_or_else(|p| p.into_inner());
        own.contains_key(&format!("{namespace}/{name}"))
    }

    /// Whether this state of the Secret is the one lockstep's last write left.
    pub fn is_own(&self, namespace: &str, name: &str, resource_version: Option<&str>) -> bool {
        let own = self.0.lock().unwrap_or_else(|p| p.into_inner());
        resource_version.is_some_and(|rv| {
            own.get(&format!("{namespace}/{name}"))
                .is_some_and(|ours| ours == rv)
        })
    }
}

/// Whether a watched status is at least as recent as the one lockstep wrote, to the second:
/// the API server keeps `refreshTime` to the second, the copy lockstep kept has more.
fn caught_up(written: &ExternalSecretStatus, seen: Option<&ExternalSecretStatus>) -> bool {
    let second = |s: &ExternalSecretStatus| s.refresh_time.as_ref().map(|t| t.0.as_second());
    second(written) <= seen.and_then(second)
}

#[cfg(test)]
mod tests {
    use super::OwnWrites;

    #[test]
    fn a_status_read_back_to_the_second_has_caught_up() {
        use super::{ExternalSecretStatus, caught_up};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        use k8s_openapi::jiff::{SignedDuration, Timestamp};
        let at = |t: Timestamp| ExternalSecretStatus {
            refresh_time: Some(Time(t)),
            ..Default::default()
        };
        let written =
            Timestamp::from_second(1_700_000_000).unwrap() + SignedDuration::from_millis(400);
        let read_back = Timestamp::from_second(1_700_000_000).unwrap();
        assert!(caught_up(&at(written), Some(&at(read_back))));
        let older = read_back - SignedDuration::from_secs(60);
        assert!(!caught_up(&at(written), Some(&at(older))), "the cache lags");
        assert!(!caught_up(&at(written), None));
    }

    #[test]
    fn only_the_state_lockstep_left_is_its_own() {
        let own = OwnWrites::default();
        assert!(!own.is_own("ns", "app", Some("7")), "nothing written yet");
        own.record("ns", "app", Some("7".into()));
        assert!(own.is_own("ns", "app", Some("7")));
        assert!(!own.is_own("ns", "app", Some("8")), "someone else's edit");
        assert!(!own.is_own("ns", "app", None));
        assert!(!own.is_own("other", "app", Some("7")));
        assert!(own.untouched("ns", "app"));
        own.record("ns", "app", None);
        assert!(
            !own.is_own("ns", "app", Some("7")),
            "forgotten after a delete"
        );
        assert!(!own.untouched("ns", "app"));
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Backoff after the first failure, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the refresh slots are dealt again from the cache: an ExternalSecret created since
/// uses its secret's hash until then.
const SLOTS_DEALT_EVERY: Duration = Duration::from_secs(30);

impl Context {
    pub fn new(client: Client, settings: Settings, metrics: Metrics, readiness: Readiness) -> Self {
        let instance = std::env::var("POD_NAME").ok();
        Self {
            events: super::events::Events::start(client.clone(), REPORTER, instance),
            stores: std::sync::OnceLock::new(),
            external_secrets: std::sync::OnceLock::new(),
            slots: Mutex::default(),
            refresh_lane: Arc::new(tokio::sync::Semaphore::new(settings.refresh_lane.max(1))),
            refresh_places: super::places::Places::new(lanes::in_flight(
                settings.concurrency,
                settings.refresh_lane,
            )),
            first_lane: Arc::new(tokio::sync::Semaphore::new(lanes::FIRST_WIDTH)),
            client,
            settings,
            clients: ClientCache::with_metrics(metrics.clone()),
            metrics,
            readiness,
            failures: Mutex::default(),
            written: Mutex::default(),
            own_writes: OwnWrites::default(),
        }
    }

    /// The ExternalSecret's refresh slot ([`Slots`]). The slots are dealt once the cache holds
    /// every ExternalSecret (before that, each secret's hash picks its slot), and again every
    /// [`SLOTS_DEALT_EVERY`].
    pub fn refresh_slot(&self, es: &ExternalSecret) -> u64 {
        let slots = {
            let mut dealt = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let stale = dealt.0.is_none_or(|at| at.elapsed() >= SLOTS_DEALT_EVERY);
            if let Some(cache) = self.external_secrets.get()
                && stale
                && self.readiness.get()
            {
                let cached = cache.state();
                *dealt = (
                    Some(Instant::now()),
                    Arc::new(Slots::new(cached.iter().map(AsRef::as_ref))),
                );
            }
            dealt.1.clone()
        };
        slots.of(es)
    }

    /// An API for `K` in the namespace lockstep is scoped to, or in every namespace.
    pub fn scoped_api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.settings.namespace {
            Some(ns) => kube::Api::namespaced(self.client.clone(), ns),
            None => kube::Api::all(self.client.clone()),
        }
    }

    /// Publishes an event in the background (see [`super::events`]); a failure to publish is
    /// logged, never fatal.
    pub async fn event(
        &self,
        reference: &ObjectReference,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = super::events::Event {
            warning,
            reason: reason.into(),
            note,
            regarding: reference.clone(),
        };
        self.events.send(event).await;
    }

    /// The delay before retrying `key` after one more failure: 5s, 10s, 20s ... 5m.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        FIRST_BACKOFF
            .saturating_mul(1 << (*n - 1).min(6))
            .min(MAX_BACKOFF)
    }

    /// The ExternalSecret with the status lockstep last wrote, when the cached copy is older.
    pub fn with_written_status(&self, es: Arc<ExternalSecret>) -> Arc<ExternalSecret> {
        let Some(uid) = es.metadata.uid.as_deref() else {
            return es;
        };
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let Some(status) = written.get(uid) else {
            return es;
        };
        let cached_time = es
            .status
            .as_ref()
            .and_then(|s| s.refresh_time.as_ref())
            .map(|t| t.0);
        let written_time = status.refresh_time.as_ref().map(|t| t.0);
        if written_time > cached_time {
            let mut newer = (*es).clone();
            newer.status = Some(status.clone());
            return Arc::new(newer);
        }
        es
    }

    /// The watch brought `es`: once it carries the status lockstep wrote, the copy kept for
    /// [`Self::with_written_status`] goes (or there would be one per ExternalSecret, for good).
    pub fn status_seen(&self, es: &ExternalSecret) {
        let Some(uid) = es.metadata.uid.as_deref() else {
            return;
        };
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if written
            .get(uid)
            .is_some_and(|w| caught_up(w, es.status.as_ref()))
        {
            written.remove(uid);
        }
    }

    /// Records a status just written (see [`Self::with_written_status`]).
    pub fn status_written(&self, uid: &str, status: &ExternalSecretStatus) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid.to_owned(), status.clone());
    }

    /// Records the resourceVersion a write of lockstep's left Secret `namespace/name` at.
    pub fn secret_written(&self, namespace: &str, name: &str, resource_version: Option<String>) {
        self.own_writes.record(namespace, name, resource_version);
    }

    /// Whether this state of a Secret, as the watch brings it, is the one lockstep's own last
    /// write left: nobody else has touched it since, so there is nothing to restore. Any other
    /// state is forgotten, so [`Self::untouched_since_written`] answers no until the next write.
    pub fn seen_by_watch(
        &self,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> bool {
        let own = self.own_writes.is_own(namespace, name, resource_version);
        if !own {
            self.own_writes.record(namespace, name, None);
        }
        own
    }

    /// Whether the Secret `namespace/name` is still as lockstep's last write left it, by the
    /// managed-Secret watch: a reconcile that is not due then has nothing to check and need not
    /// read the Secret. No answers "do not know": the Secret is read.
    pub fn untouched_since_written(&self, namespace: &str, name: &str) -> bool {
        self.own_writes.untouched(namespace, name)
    }

    /// Forgets what was recorded for a deleted ExternalSecret.
    pub fn forget(&self, uid: &str) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }

    /// One of the [`lanes::REFRESHES_IN_FLIGHT`] places of a periodic refresh that reads
    /// `secret` (see [`super::places`]), held until it ends. Without `--concurrent` every
    /// reconcile runs, and refreshes queue here. With it, a refresh waiting here would hold one
    /// of the controller's slots, so when no place is free the answer is `None` and the refresh
    /// is requeued instead.
    pub async fn refresh_in_flight(&self, secret: u64) -> Option<super::places::Place> {
        if self.settings.concurrency == 0 {
            let depth = self.metrics.workqueue_depth(lanes::REFRESH);
            self.refresh_places.enter(secret, &depth).await
        } else {
            self.refresh_places.try_enter(secret)
        }
    }

    /// A turn in the first lane, held for the whole sync: it bounds how many syncs hold objects
    /// and values in memory at once (a cold start of thousands would otherwise hold them all),
    /// in the order they came.
    pub async fn first_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let depth = self.metrics.workqueue_depth(lanes::FIRST_SYNC);
        lanes::wait_turn(self.first_lane.clone(), &depth).await
    }

    /// A turn in the refresh lane, which a refresh holds while it makes API requests (reading
    /// its Secret, writing it and the status), never while it reads the provider.
    pub async fn refresh_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let depth = self.metrics.workqueue_depth(lanes::REFRESH);
        lanes::wait_turn(self.refresh_lane.clone(), &depth).await
    }

    /// Forgets the failures of `key` after a success.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// The two lanes of reconciles. kube-runtime's controller runs due reconciles in due order, with
/// no priorities, and a refresh wave of thousands would otherwise queue its requests ahead of a
/// new ExternalSecret's at the API server's rate limit (`--client-qps`) and at the provider.
/// Periodic refreshes therefore take a turn in a lane of bounded width first; first syncs (never
/// synced, or spec changed) do not wait for it. The fetch layer keeps the same two lanes for
/// provider calls (`crate::fetch::Lane`).
pub mod lanes {
    use std::sync::Arc;
    use std::time::Duration;

    use prometheus_client::metrics::gauge::Gauge;
    use tokio::sync::{OwnedSemaphorePermit, Semaphore};

    /// The lanes' names in `lockstep_workqueue_depth{lane}`.
    pub const FIRST_SYNC: &str = "first-sync";
    pub const REFRESH: &str = "refresh";

    /// Waits for a turn in `lane`, counted in `depth` while waiting: lockstep's work-queue depth
    /// (kube-runtime's own scheduler queue is not visible from outside it).
    pub async fn wait_turn(lane: Arc<Semaphore>, depth: &Gauge) -> Option<OwnedSemaphorePermit> {
        let _waiting = Waiting::new(depth);
        lane.acquire_owned().await.ok()
    }

    /// One more waiting in `depth` while it lives: counted down again however the wait ends,
    /// a cancelled reconcile included.
    #[derive(Debug)]
    pub struct Waiting<'a>(&'a Gauge);

    impl<'a> Waiting<'a> {
        pub fn new(depth: &'a Gauge) -> Self {
            depth.inc();
            Self(depth)
        }
    }

    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }

    /// Periodic refreshes under way at once (`places`). A refresh takes a turn in the refresh
    /// lane only for its API requests, so without this bound a wave of 10,000 would hold 10,000
    /// reconciles (and the values they read) waiting for a turn. Waiting refreshes are let in a
    /// batch of secrets at a time, in groups of up to half of this: 512 lets in 20 secrets with
    /// 10 readers each while 256 stay busy. (Measured in BENCHMARKS.md: 1,024 cost 10 MiB more
    /// at 10,000 ExternalSecrets.)
    pub const REFRESHES_IN_FLIGHT: usize = 512;

    /// Refreshes under way at once: [`REFRESHES_IN_FLIGHT`]; with `--concurrent`, no more than
    /// the refresh lane is wide, so that a quarter of the controller's slots stay free for
    /// first syncs.
    pub fn in_flight(concurrency: u16, refresh_lane: usize) -> usize {
        match concurrency {
            0 => REFRESHES_IN_FLIGHT,
            _ => refresh_lane.clamp(1, REFRESHES_IN_FLIGHT),
        }
    }

    /// First syncs running at once. Far more than the API budget lets finish in a second, so
    /// it never slows a cold start; it only bounds the memory a cold start of thousands takes.
    pub const FIRST_WIDTH: usize = 128;

    /// When the refresh lane is full and the controller is bounded, try again after this long.
    pub const BUSY_RETRY: Duration = Duration::from_secs(1);

    /// How many refreshes make API requests at once: a twentieth of a second's API budget, at
    /// least 4 and at most 32. Each refresh has one request in flight at a time, so a first sync
    /// finds at most that many refresh requests ahead of its own, at lockstep's rate limit and
    /// at the API server (which may serve fewer than `--client-qps`: measured in BENCHMARKS.md,
    /// a wider lane let new ExternalSecrets wait seconds behind a wave on a loaded server). With
    /// `--concurrent` set, a quarter of the slots also stay free for first syncs.
    pub fn width(client_qps: f64, concurrency: u16) -> usize {
        let by_qps = if client_qps > 0.0 {
            ((client_qps / 20.0) as usize).clamp(4, 32)
        } else {
            32
        };
        match usize::from(concurrency) {
            0 => by_qps,
            c => by_qps.min(c - c / 4).max(1),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn waiting_reconciles_are_counted_until_they_get_their_turn() {
            let lane = Arc::new(Semaphore::new(1));
            let depth = Gauge::default();
            let held = wait_turn(lane.clone(), &depth).await.unwrap();
            assert_eq!(depth.get(), 0, "a free lane is no wait");
            let waiter = tokio::spawn({
                let (lane, depth) = (lane.clone(), depth.clone());
                async move { wait_turn(lane, &depth).await.is_some() }
            });
            let cancelled = tokio::spawn({
                let (lane, depth) = (lane.clone(), depth.clone());
                async move { wait_turn(lane, &depth).await.is_some() }
            });
            while depth.get() < 2 {
                tokio::task::yield_now().await;
            }
            cancelled.abort();
            let _ = cancelled.await;
            assert_eq!(depth.get(), 1, "a cancelled wait counts down");
            drop(held);
            assert!(waiter.await.unwrap());
            assert_eq!(depth.get(), 0);
        }

        #[test]
        fn widths() {
            assert_eq!(width(50.0, 0), 4);
            assert_eq!(width(500.0, 0), 25);
            assert_eq!(width(10_000.0, 0), 32);
            assert_eq!(width(0.0, 0), 32, "no API limit");
            assert_eq!(
                width(500.0, 10),
                8,
                "a quarter of 10 slots kept for first syncs"
            );
            assert_eq!(width(50.0, 1), 1);
            assert_eq!(in_flight(0, 25), REFRESHES_IN_FLIGHT);
            assert_eq!(
                in_flight(10, width(500.0, 10)),
                8,
                "slots kept for first syncs"
            );
        }
    }
}
