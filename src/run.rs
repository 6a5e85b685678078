//! `lockstep run`: checks that the CRDs are installed, then runs the controllers.
use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};

use crate::cli::RunArgs;
use crate::controller::Settings;

pub async fn run(args: &RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes: set KUBECONFIG, or run inside a cluster")?;
    let version = client
        .apiserver_version()
        .await
        .context("asking the API server for its version")?;
    tracing::info!(server = %version.git_version, "connected to Kubernetes");

    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
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
    let audit = crate::audit::Auditor::start(&client, &args.audit.settings())
        .await
        .context("starting the audit log")?;
    let settings = Settings {
        audit,
        controller_class: args.controller_class.clone(),
        store_refresh: args.store_requeue_interval,
        namespace: Some(args.namespace.clone()).filter(|n| !n.is_empty()),
    };
    tracing::info!(
        controller_class = %settings.controller_class,
        namespace = settings.namespace.as_deref().unwrap_or("(all)"),
        "starting the controllers"
    );
    crate::controller::run(client, settings).await;
    tracing::info!("stopped");
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
