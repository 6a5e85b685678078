//! `lockstep run`. For now it connects to the cluster and reports which of lockstep's CRDs are
//! installed and Established; the controllers arrive with the sync issue.
use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};

use crate::cli::RunArgs;

pub async fn run(_args: &RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes: set KUBECONFIG, or run inside a cluster")?;
    let version = client
        .apiserver_version()
        .await
        .context("asking the API server for its version")?;
    tracing::info!(server = %version.git_version, "connected to Kubernetes");

    let api: Api<CustomResourceDefinition> = Api::all(client);
    let mut missing = Vec::new();
    for crd in crate::api::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        match api
            .get_opt(&name)
            .await
            .with_context(|| format!("reading CRD {name}"))?
        {
            Some(installed) if is_established(&installed) => {
                tracing::info!(crd = %name, "CRD installed and Established")
            }
            Some(_) => tracing::warn!(crd = %name, "CRD installed but not Established yet"),
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "CRDs not installed: {}. Install them with `lockstep crds | kubectl apply --server-side -f -`",
            missing.join(", ")
        );
    }
    tracing::info!("the sync controllers are not built yet: waiting for SIGTERM or Ctrl-C");
    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
