//! What every reconcile shares: the client, the credential cache, the event recorder, and the
//! per-object failure counts that drive exponential backoff.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::fetch::ClientCache;

/// The name events are reported under, and the prefix of lockstep's field managers.
pub const REPORTER: &str = "lockstep";

/// How lockstep runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Stores whose `spec.controller` is set to something else are left to another controller.
    pub controller_class: String,
    /// How often stores are validated again when they do not say.
    pub store_refresh: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            controller_class: "default".into(),
            store_refresh: Duration::from_secs(300),
        }
    }
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub clients: ClientCache,
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
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
    pub fn new(client: Client, settings: Settings) -> Self {
        let reporter = Reporter {
            controller: REPORTER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            clients: ClientCache::default(),
            failures: Mutex::default(),
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

    /// Forgets the failures of `key` after a success.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}
