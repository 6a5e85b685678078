//! Kubernetes Events, published in the background. An event tells people what a sync did; the
//! sync itself never waits for the API server to take it. At a cold start of thousands of
//! ExternalSecrets, one `Created` event each would otherwise be one more request on every
//! sync's path, and the last ExternalSecret would be Ready that much later.
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};
use tokio::sync::mpsc;

/// Events waiting to be published. Past this many a sync waits for room (a few hundred bytes
/// each: a few MiB at most).
const QUEUE: usize = 16_384;

/// The sending side; one task publishes, in order.
#[derive(Debug, Clone)]
pub struct Events {
    queue: mpsc::Sender<(Event, ObjectReference)>,
}

impl Events {
    /// Starts the publishing task (on the current Tokio runtime).
    pub fn start(client: Client, reporter: Reporter) -> Self {
        let (queue, mut waiting) = mpsc::channel::<(Event, ObjectReference)>(QUEUE);
        let recorder = Recorder::new(client, reporter);
        tokio::spawn(async move {
            while let Some((event, reference)) = waiting.recv().await {
                if let Err(e) = recorder.publish(&event, &reference).await {
                    tracing::warn!(error = %e, reason = %event.reason, "could not publish an event");
                }
            }
        });
        Self { queue }
    }

    /// Queues an event; waits only when [`QUEUE`] events are already waiting.
    pub async fn send(&self, event: Event, reference: ObjectReference) {
        if self.queue.send((event, reference)).await.is_err() {
            tracing::warn!("the event publisher has stopped; event dropped");
        }
    }
}
