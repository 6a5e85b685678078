//! `lockstep run`: checks that the CRDs are installed, then runs the controllers.
use anyhow::Context;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;

use crate::cli::RunArgs;
use crate::controller::Settings;

pub async fn run(args: &RunArgs) -> anyhow::Result<()> {
    let metrics = crate::telemetry::Metrics::new();
    let readiness = crate::telemetry::Readiness::default();
    let ops = &args.ops;
    let (metrics_at, health_at) = crate::telemetry::serve(
        &ops.metrics_addr,
        &ops.health_addr,
        metrics.clone(),
        readiness.clone(),
    )
    .await
    .with_context(|| {
        format!(
            "listening on --metrics-addr {} and --health-addr {}: pick free ports",
            ops.metrics_addr, ops.health_addr
        )
    })?;
    tracing::info!(metrics = %metrics_at, health = %health_at, "serving /metrics, /livez and /readyz");
    let config = kube::Config::infer()
        .await
        .context("connecting to Kubernetes: set KUBECONFIG, or run inside a cluster")?;
    // Leader election has a client of its own, outside the rate limit: renewing the Lease must
    // never queue behind a burst of reconciles, or a busy leader would give up its Lease.
    let election_client = kube::Client::try_from(config.clone())
        .context("building the Kubernetes client for leader election")?;
    let client = kube::client::ClientBuilder::try_from(config)
        .context("building the Kubernetes client")?
        .with_layer(&crate::telemetry::throttle::ThrottleLayer::new(
            ops.client_qps,
            ops.client_burst,
        ))
        .build();
    let version = client
        .apiserver_version()
        .await
        .context("asking the API server for its version")?;
    tracing::info!(server = %version.git_version, "connected to Kubernetes");

    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut missing = Vec::new();
    for crd in crate::api::crds() {
        let name = crd.metadata.name.unwrap_or_default();
        let found = match api.get_opt(&name).await {
            // An installation with Roles only (`--namespace`) may not read cluster-scoped
            // objects: the CRDs are then checked by the first watch instead.
            Err(kube::Error::Api(e)) if e.code == 403 => {
                tracing::info!(crd = %name, "not allowed to read CRDs; skipping the check");
                continue;
            }
            other => other.with_context(|| format!("reading CRD {name}"))?,
        };
        match found {
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
    let audit_settings = crate::audit::AuditSettings {
        dropped: metrics.audit_records_dropped(),
        ..args.audit.settings()
    };
    let audit = crate::audit::Auditor::start(&client, &audit_settings)
        .await
        .context("starting the audit log")?;
    let settings = Settings {
        audit,
        controller_class: args.controller_class.clone(),
        store_refresh: args.store_requeue_interval,
        namespace: Some(args.namespace.clone()).filter(|n| !n.is_empty()),
        concurrency: args.ops.concurrent,
        refresh_lane: crate::controller::lanes::width(ops.client_qps, ops.concurrent),
    };
    tracing::info!(
        controller_class = %settings.controller_class,
        namespace = settings.namespace.as_deref().unwrap_or("(all)"),
        "starting the controllers"
    );
    let controllers = {
        let (client, metrics, readiness) = (client.clone(), metrics.clone(), readiness.clone());
        move || crate::controller::run(client, settings, metrics, readiness)
    };
    if ops.leader_elect {
        let election = crate::leader::Election {
            lease: ops.leader_election_id.clone(),
            namespace: crate::leader::Election::namespace(
                &ops.leader_election_namespace,
                Some(args.namespace.as_str()).filter(|n| !n.is_empty()),
            ),
            identity: crate::leader::Election::identity(),
            duration: ops.leader_election_lease_duration,
        };
        crate::leader::run_elected(election_client, election, metrics, readiness, controllers)
            .await?;
    } else {
        metrics.set_leader(true);
        controllers().await;
    }
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
