//! What every reconcile shares: the client, the credential cache, the event recorder, and the
//! per-object failure counts that drive exponential backoff.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::api::external_secret::{ExternalSecret, ExternalSecretStatus};
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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            controller_class: "default".into(),
            audit: crate::audit::Auditor::disabled(),
            store_refresh: Duration::from_secs(300),
            namespace: None,
            concurrency: 0,
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
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
    /// The status lockstep last wrote per ExternalSecret uid. The watch cache can lag behind a
    /// status write, and a reconcile that saw the old status would fetch from the provider again.
    written: Mutex<HashMap<String, ExternalSecretStatus>>,
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

impl Context {
    pub fn new(client: Client, settings: Settings, metrics: Metrics, readiness: Readiness) -> Self {
        let reporter = Reporter {
            controller: REPORTER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            clients: ClientCache::with_metrics(metrics.clone()),
            metrics,
            readiness,
            failures: Mutex::default(),
            written: Mutex::default(),
        }
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

    /// Publishes an event; a failure to publish is logged, never fatal.
    pub async fn event(
        &self,
        reference: &ObjectReference,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!(error = %e, reason, "could not publish an event");
        }
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

    /// Records a status just written (see [`Self::with_written_status`]).
    pub fn status_written(&self, uid: &str, status: &ExternalSecretStatus) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid.to_owned(), status.clone());
    }

    /// Forgets what was recorded for a deleted ExternalSecret.
    pub fn forget(&self, uid: &str) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }

    /// Forgets the failures of `key` after a success.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}
