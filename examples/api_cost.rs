//! What each kind of API request lockstep makes costs the control plane (run by
//! `scripts/bench-scale.sh` before the scale runs, on the same environment): N requests of each
//! kind, 64 in flight, with the control plane's CPU seconds (etcd and kube-apiserver are one
//! process here) and the wall time. It puts the scale benchmark's cold start beside its floor: a
//! first sync must at least write a Secret and an ExternalSecret status, where the limit
//! only creates a Secret.
//!
//! Usage: api_cost [N]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "shared/bench.rs"]
mod bench;

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use lockstep::api::external_secret::ExternalSecret;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let client = Client::try_default().await?;
    let ns = format!("api-cost-{}", std::process::id());
    bench::tenant_namespace(&client, &ns).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), &ns);
    let apply = PatchParams::apply("externalsecrets-bench").force();
    // A Secret as lockstep writes it: its labels, data-hash annotation and owner reference.
    let managed = |name: String| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name,
            "labels": {"reconcile.external-secrets.io/managed": "true",
                "reconcile.external-secrets.io/created-by": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789a"},
            "annotations": {"reconcile.external-secrets.io/data-hash": "0123456789abcdef0123456789abcdef"},
            "ownerReferences": [{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "name": "owner", "uid": "7b1f1d2e-1111-2222-3333-444455556666",
                "controller": true, "blockOwnerDeletion": true}]},
            "data": {"v": "dmFsdWU="}})
    };
    let status = json!({"status": {"refreshTime": "2026-11-26T20:00:00Z",
        "syncedResourceVersion": "1-0123456789abcdef", "observedGeneration": 1, "binding": {"name": "app"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced",
            "message": "secret synced", "lastTransitionTime": "2026-11-26T20:00:00Z"}]}});

    println!("## API request costs: {n} of each, 64 in flight");
    let plain = |i: usize| {
        serde_json::from_value::<Secret>(
            json!({"metadata": {"name": format!("plain-{i}")}, "data": {"v": "dmFsdWU="}}),
        )
        .unwrap()
    };
    let post = measure("POST Secret (the limit's request)", n, |i| {
        let api = secrets.clone();
        async move {
            api.create(&PostParams::default(), &plain(i)).await?;
            Ok(())
        }
    })
    .await;
    measure("GET Secret that does not exist", n, |i| {
        let api = secrets.clone();
        async move {
            api.get_opt(&format!("absent-{i}")).await?;
            Ok(())
        }
    })
    .await;
    for label in [
        "APPLY Secret as lockstep writes it (creates it)",
        "APPLY the same again (no change)",
    ] {
        measure(label, n, |i| {
            let (api, params, body) = (secrets.clone(), apply.clone(), managed(format!("m-{i}")));
            async move {
                api.patch(&format!("m-{i}"), &params, &Patch::Apply(&body))
                    .await?;
                Ok(())
            }
        })
        .await;
    }
    measure("APPLY ExternalSecret (creates it)", n, |i| {
        let api = ess.clone();
        let es = json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": format!("es-{i}")},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "store", "kind": "SecretStore"},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("k{i}")}}]}});
        async move {
            let params = PatchParams::apply("bench");
            api.patch(&format!("es-{i}"), &params, &Patch::Apply(&es)).await?;
            Ok(())
        }
    })
    .await;
    let status_cost = measure(
        "PATCH ExternalSecret status (lockstep's merge patch)",
        n,
        |i| {
            let (api, body): (_, Value) = (ess.clone(), status.clone());
            async move {
                let params = PatchParams::default();
                api.patch_status(&format!("es-{i}"), &params, &Patch::Merge(&body))
                    .await?;
                Ok(())
            }
        },
    )
    .await;
    println!(
        "an ExternalSecret status write costs {:.2} x a Secret POST in control-plane CPU",
        status_cost / post
    );
    Api::<Namespace>::all(client)
        .delete(&ns, &Default::default())
        .await?;
    Ok(())
}

/// Runs `request(i)` for i in 0..n, 64 at a time; prints and returns the control plane's CPU
/// seconds.
async fn measure<F, Fut>(label: &str, n: usize, request: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let pid = bench::control_plane_pid();
    let cpu_before = bench::cpu_seconds(pid);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(&request)
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
        .unwrap();
    let cpu = bench::cpu_seconds(pid) - cpu_before;
    println!(
        "{label}: {:.2} s, control plane CPU {cpu:.2} s ({:.2} ms per request)",
        started.elapsed().as_secs_f64(),
        cpu * 1000.0 / n as f64
    );
    cpu
}
