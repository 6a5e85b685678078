//! The controllers: one module per reconciled kind.
mod audited;
pub mod aws_identity;
mod connect;
mod context;
mod events;
mod external_secret;
mod kubernetes_store;
mod places;
mod secret_store;
mod store_refs;
pub mod stores;
mod webhook_store;

use std::sync::Arc;

use kube::Client;

pub use context::{Context, Settings, lanes};

use crate::api::secret_store::{ClusterSecretStore, SecretStore};

/// Runs every controller until SIGTERM or Ctrl-C.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: crate::telemetry::Metrics,
    readiness: crate::telemetry::Readiness,
) {
    let scoped = settings.namespace.is_some();
    let ctx = Arc::new(Context::new(client, settings, metrics, readiness));
    let cluster_stores = async {
        if !scoped {
            secret_store::run::<ClusterSecretStore>(ctx.clone()).await
        }
    };
    tokio::join!(
        external_secret::run(ctx.clone()),
        secret_store::run::<SecretStore>(ctx.clone()),
        cluster_stores,
    );
}
