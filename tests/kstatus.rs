//! Argo CD and Flux read lockstep's status correctly. Flux's health checks use kstatus
//! (sigs.k8s.io/cli-utils/pkg/kstatus); Argo CD uses ESO's health script for ExternalSecret
//! (argo-cd resource_customizations/external-secrets.io/ExternalSecret/health.lua). Both are
//! reimplemented here as small functions and applied to the real objects the real API server
//! returns, for a synced, a failing and an in-progress ExternalSecret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ops;

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

/// kstatus' result for a custom resource.
#[derive(Debug, PartialEq, Eq)]
enum Kstatus {
    InProgress,
    Failed,
    Current,
    Terminating,
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// kstatus' generic rules for a type it has no specific rules for (sigs.k8s.io/cli-utils
/// pkg/kstatus/status: `checkGenericProperties`, then Current): deletion, then the observed
/// generation (only compared when present), then `Reconciling`/`Stalled`. kstatus never reads
/// `Ready`, which is why lockstep writes `Stalled` beside a failed `Ready` and defaults
/// `observedGeneration` to 0.
fn kstatus(obj: &Value) -> Kstatus {
    if !obj["metadata"]["deletionTimestamp"].is_null() {
        return Kstatus::Terminating;
    }
    let generation = obj["metadata"]["generation"].as_i64();
    let observed = obj["status"]["observedGeneration"].as_i64();
    if generation.is_some() && observed.is_some() && observed != generation {
        return Kstatus::InProgress;
    }
    if condition(obj, "Reconciling").is_some_and(|c| c["status"] == "True") {
        return Kstatus::InProgress;
    }
    if condition(obj, "Stalled").is_some_and(|c| c["status"] == "True") {
        return Kstatus::Failed;
    }
    Kstatus::Current
}

/// Argo CD's health of an ExternalSecret (the Lua script, in Rust).
fn argo_health(obj: &Value) -> &'static str {
    if let Some(conditions) = obj["status"]["conditions"].as_array() {
        for c in conditions {
            if c["type"] == "Ready" && c["status"] == "False" {
                return "Degraded";
            }
            if c["type"] == "Ready" && c["status"] == "True" {
                return "Healthy";
            }
        }
    }
    "Progressing"
}

#[test]
fn the_rules_on_hand_written_objects() {
    let obj = |generation: i64, observed: Option<i64>, conditions: &[(&str, &str)]| {
        let mut o = json!({"metadata": {"generation": generation}, "status": {}});
        if let Some(g) = observed {
            o["status"]["observedGeneration"] = json!(g);
        }
        o["status"]["conditions"] = conditions
            .iter()
            .map(|(t, s)| json!({"type": t, "status": s}))
            .collect();
        o
    };
    assert_eq!(
        kstatus(&obj(1, Some(1), &[("Ready", "True")])),
        Kstatus::Current
    );
    assert_eq!(
        kstatus(&obj(1, Some(1), &[("Ready", "False")])),
        Kstatus::Current,
        "kstatus ignores Ready: a failure must also say Stalled"
    );
    assert_eq!(
        kstatus(&obj(1, Some(1), &[("Ready", "False"), ("Stalled", "True")])),
        Kstatus::Failed
    );
    assert_eq!(
        kstatus(&obj(2, Some(1), &[("Ready", "True")])),
        Kstatus::InProgress
    );
    assert_eq!(
        kstatus(&obj(1, None, &[])),
        Kstatus::Current,
        "no status: Current"
    );
    assert_eq!(kstatus(&obj(1, Some(0), &[])), Kstatus::InProgress);
    assert_eq!(argo_health(&obj(1, None, &[])), "Progressing");
    assert_eq!(
        argo_health(&obj(1, Some(1), &[("Ready", "False")])),
        "Degraded"
    );
}

#[tokio::test]
async fn argo_cd_and_flux_read_the_status_of_real_external_secrets() {
    let client = common::client().await;
    let class = common::unique("kstatus");
    let ns = ops::namespace_with_store(&client, "kstatus", &class).await;
    let n = ns.name();
    let value = common::canary("kstatus");
    let key = common::unique("kstatus/password");
    ops::put(&key, &value).await;
    let resource = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "external-secrets.io",
        "v1",
        "ExternalSecret",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), n, &resource);
    let typed: Api<lockstep::api::external_secret::ExternalSecret> =
        Api::namespaced(client.clone(), n);
    let read = |name: &'static str| {
        let api = api.clone();
        async move { serde_json::to_value(api.get(name).await.unwrap()).unwrap() }
    };
    let spec = |key: &str| json!({"data": common::data(&[("password", json!({"key": key}))])});
    common::apply(&typed, common::external_secret("synced", spec(&key))).await;
    common::apply(
        &typed,
        common::external_secret("failing", spec(&common::unique("kstatus/absent"))),
    )
    .await;

    // Not reconciled yet (no lockstep handles the store's class): in progress for both, because
    // the API server defaults observedGeneration to 0.
    let fresh = read("synced").await;
    assert_eq!(fresh["status"]["observedGeneration"], 0, "{fresh}");
    assert_eq!(kstatus(&fresh), Kstatus::InProgress, "{fresh}");
    assert_eq!(argo_health(&fresh), "Progressing");

    let lockstep = ops::Lockstep::start(n, &class, &["--leader-elect=false"], &[]);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), n);
    common::wait_for_data(&secrets, "synced", &[("password", &value)]).await;
    common::wait_for_reason(&typed, "failing", "SecretSyncedError").await;
    let synced = common::eventually("synced to be Current", common::WAIT, || async {
        let obj = read("synced").await;
        (kstatus(&obj) == Kstatus::Current).then_some(obj)
    })
    .await;
    assert_eq!(argo_health(&synced), "Healthy");
    let failing = common::eventually("failing to be Failed", common::WAIT, || async {
        let obj = read("failing").await;
        (kstatus(&obj) == Kstatus::Failed).then_some(obj)
    })
    .await;
    assert!(condition(&failing, "Stalled").is_some(), "{failing}");
    assert_eq!(argo_health(&failing), "Degraded");

    // A spec change lockstep has not seen yet: kstatus waits for the new generation.
    drop(lockstep);
    api.patch(
        "synced",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"refreshInterval": "2h"}})),
    )
    .await
    .unwrap();
    let changed = read("synced").await;
    assert_eq!(kstatus(&changed), Kstatus::InProgress, "{changed}");
}
