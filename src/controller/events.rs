//! Kubernetes Events (`events.k8s.io/v1`), published in the background. An event tells people
//! what a sync did; the sync itself never waits for the API server to take it. At a cold start
//! of thousands of ExternalSecrets, one `Created` event each would otherwise be one more request
//! on every sync's path, and the last ExternalSecret would be Ready that much later.
//!
//! A repeated event (the same type, reason, note and object within [`SERIES_TTL`]) becomes a
//! series on the first one, as client-go and kube's `Recorder` do, so a failing ExternalSecret
//! retried every few seconds leaves one Event with a count, not hundreds. lockstep keeps only a
//! hash and the event's name per series: kube's `Recorder` keeps each whole Event for six
//! minutes and scans them all on every publish, which at a cold start of 10,000 ExternalSecrets
//! held about 70 MiB and most of lockstep's CPU (BENCHMARKS.md).
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::mpsc;

/// Events waiting to be published. Past this many a sync waits for room (a few hundred bytes
/// each: a few MiB at most).
const QUEUE: usize = 16_384;

/// How long a repeated event still counts in the first one's series (client-go's and kube's).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// What lockstep reports and on which object.
#[derive(Debug, Clone)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub note: String,
    pub regarding: ObjectReference,
}

/// The sending side; one task publishes, in order.
#[derive(Debug, Clone)]
pub struct Events {
    queue: mpsc::Sender<Event>,
}

impl Events {
    /// Starts the publishing task (on the current Tokio runtime). `controller` and `instance`
    /// are the event's `reportingController` and `reportingInstance`.
    pub fn start(client: Client, controller: &str, instance: Option<String>) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Event>(QUEUE);
        let mut publisher = Publisher {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
            series: Series::default(),
        };
        tokio::spawn(async move {
            while let Some(event) = waiting.recv().await {
                if let Err(e) = publisher.publish(&event).await {
                    tracing::warn!(error = %e, reason = %event.reason, "could not publish an event");
                }
            }
        });
        Self { queue }
    }

    /// Queues an event; waits only when [`QUEUE`] events are already waiting.
    pub async fn send(&self, event: Event) {
        if self.queue.send(event).await.is_err() {
            tracing::warn!("the event publisher has stopped; event dropped");
        }
    }
}

struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    series: Series,
}

impl Publisher {
    async fn publish(&mut self, event: &Event) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let namespace = event.regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let key = Series::key(event);
        if let Some((name, count)) = self.series.repeat(key, now) {
            let patch =
                json!({"series": EventSeries { count, last_observed_time: MicroTime(now) }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone (the API server's event TTL): a new series starts below.
                Err(kube::Error::Api(e)) if e.code == 404 => self.series.forget(key),
                Err(e) => return Err(e),
            }
        }
        let created = api
            .create(&PostParams::default(), &self.event(event, now))
            .await?;
        self.series
            .start(key, created.metadata.name.unwrap_or_default(), now);
        Ok(())
    }

    fn event(&self, event: &Event, now: Timestamp) -> K8sEvent {
        let object = event.regarding.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: event.regarding.namespace.clone(),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some("Reconcile".into()),
            reason: Some(event.reason.clone()),
            note: Some(event.note.clone()),
            type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
            regarding: Some(event.regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }
}

/// The series of recent events: by a hash of what makes two events the same, the first event's
/// name, how many there were, and when the last was.
#[derive(Debug, Default)]
struct Series {
    recent: HashMap<u64, (String, i32, Timestamp)>,
    pruned: Option<Timestamp>,
}

impl Series {
    fn key(event: &Event) -> u64 {
        let mut h = DefaultHasher::new();
        let r = &event.regarding;
        (event.warning, &event.reason, &event.note).hash(&mut h);
        (&r.uid, &r.kind, &r.namespace, &r.name).hash(&mut h);
        h.finish()
    }

    /// The event to count `key` in, and its new count, when it is a repeat.
    fn repeat(&mut self, key: u64, now: Timestamp) -> Option<(String, i32)> {
        self.prune(now);
        let (name, count, last) = self.recent.get_mut(&key)?;
        if *last + SERIES_TTL <= now {
            return None;
        }
        *count = count.saturating_add(1);
        *last = now;
        Some((name.clone(), *count))
    }

    fn start(&mut self, key: u64, name: String, now: Timestamp) {
        self.recent.insert(key, (name, 1, now));
    }

    fn forget(&mut self, key: u64) {
        self.recent.remove(&key);
    }

    /// Drops expired series, at most once a minute, and gives back the table's room after a
    /// burst (a cold start).
    fn prune(&mut self, now: Timestamp) {
        if self
            .pruned
            .is_some_and(|at| at + SignedDuration::from_mins(1) > now)
        {
            return;
        }
        self.pruned = Some(now);
        self.recent
            .retain(|_, (_, _, last)| *last + SERIES_TTL > now);
        if self.recent.capacity() > 4 * self.recent.len().max(64) {
            self.recent.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(note: &str) -> Event {
        Event {
            warning: true,
            reason: "UpdateFailed".into(),
            note: note.into(),
            regarding: ObjectReference {
                kind: Some("ExternalSecret".into()),
                namespace: Some("ns".into()),
                name: Some("app".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_same_event_again_is_counted_in_the_first_ones_series() {
        let mut series = Series::default();
        let t0 = Timestamp::now();
        let key = Series::key(&event("denied"));
        assert_eq!(
            series.repeat(key, t0),
            None,
            "a first event starts a series"
        );
        series.start(key, "app.1".into(), t0);
        let later = t0 + SignedDuration::from_secs(30);
        assert_eq!(series.repeat(key, later), Some(("app.1".into(), 2)));
        assert_eq!(
            series.repeat(key, later + SignedDuration::from_secs(30)),
            Some(("app.1".into(), 3))
        );
        assert_ne!(key, Series::key(&event("other note")), "another note");
        let mut other = event("denied");
        other.regarding.uid = Some("u2".into());
        assert_ne!(key, Series::key(&other), "another object");
    }

    #[test]
    fn a_series_ends_after_its_ttl_and_the_table_shrinks_after_a_burst() {
        let mut series = Series::default();
        let t0 = Timestamp::now();
        for i in 0..10_000 {
            series.start(i, format!("e.{i}"), t0);
        }
        let late = t0 + SERIES_TTL + SignedDuration::from_secs(1);
        assert_eq!(series.repeat(1, late), None, "expired");
        assert!(series.recent.is_empty(), "expired series are dropped");
        assert!(
            series.recent.capacity() < 1_000,
            "the room a burst took is given back"
        );
    }
}
