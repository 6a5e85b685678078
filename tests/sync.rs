//! ExternalSecret sync against the real control plane and moto, through a running `lockstep run`.
//! Each test uses its own namespace and its own remote secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    TestNamespace, WAIT, apply_manifest, client, eventually, lockstep, put_remote, secrets_manager,
    service_account, tenant, unique, wait_for_data, wait_for_reason,
};
use k8s_openapi::api::core::v1::{Event, Secret, ServiceAccount};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use lockstep::api::external_secret::ExternalSecret;
use lockstep::api::secret_store::SecretStore;
use serde_json::json;

/// Applies a YAML manifest (any version, v1beta1 included) into `namespace`.
async fn apply(client: &Client, namespace: &str, yaml: &str) {
    apply_manifest(client, namespace, serde_saphyr::from_str(yaml).unwrap()).await;
}

fn store_yaml(name: &str, sa: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: {name}}}
spec:
  provider:
    aws:
      service: SecretsManager
      region: us-east-1
      auth: {{jwt: {{serviceAccountRef: {{name: {sa}}}}}}}
"
    )
}

fn es_yaml(name: &str, store: &str, interval: &str, data: &[(&str, &str)]) -> String {
    let entries: String = data
        .iter()
        .map(|(k, remote)| format!("  - secretKey: {k}\n    remoteRef: {{key: {remote}}}\n"))
        .collect();
    format!(
        "apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: {name}}}
spec:
  refreshInterval: {interval}
  secretStoreRef: {{name: {store}, kind: SecretStore}}
  target: {{name: {name}}}
  data:
{entries}"
    )
}

#[tokio::test]
async fn the_seed_guide_syncs_as_written() {
    let client = client().await;
    lockstep();
    let ns = TestNamespace::new(&client, "seed").await;
    let sm = secrets_manager().await;
    put_remote(&sm, "prod/app/db-password", "seed-db-password-1").await;
    put_remote(&sm, "prod/app/api-key", "seed-api-key-1").await;
    service_account(
        &client,
        ns.name(),
        "external-secrets-sa",
        Some("arn:aws:iam::123456789012:role/seed"),
    )
    .await;
    apply(
        &client,
        ns.name(),
        include_str!("../deploy/examples/seed/secretstore.yaml"),
    )
    .await;
    apply(
        &client,
        ns.name(),
        include_str!("../deploy/examples/seed/externalsecret.yaml"),
    )
    .await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let secret = wait_for_data(
        &secrets,
        "app-secrets-k8s",
        &[
            ("database-password", "seed-db-password-1"),
            ("api-key", "seed-api-key-1"),
        ],
    )
    .await;
    assert_eq!(
        secret
            .labels()
            .get("reconcile.external-secrets.io/managed")
            .map(String::as_str),
        Some("true")
    );
    assert!(
        secret
            .annotations()
            .contains_key("reconcile.external-secrets.io/data-hash")
    );
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ExternalSecret", "app-secrets", Some(true))
    );

    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    let message = wait_for_reason(&es_api, "app-secrets", "SecretSynced").await;
    assert_eq!(message, "secret synced");
    let es = es_api.get("app-secrets").await.unwrap();
    let status = es.status.unwrap();
    assert_eq!(status.observed_generation, es.metadata.generation);
    assert_eq!(
        status.binding.map(|b| b.name),
        Some("app-secrets-k8s".into())
    );
    assert!(status.refresh_time.is_some());

    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    let store = stores.get("aws-secretsmanager").await.unwrap();
    let c = &store.status.unwrap().conditions[0];
    assert_eq!(
        (c.status.to_string().as_str(), c.reason.as_deref()),
        ("True", Some("Valid"))
    );

    // The status is written only when it changes: with a 1h refresh nothing moves for a while.
    let before = es_api.get("app-secrets").await.unwrap().resource_version();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        es_api.get("app-secrets").await.unwrap().resource_version(),
        before
    );
}

#[tokio::test]
async fn rotation_is_picked_up_on_refresh() {
    let client = client().await;
    let ns = tenant(&client, "rotate").await;
    let sm = secrets_manager().await;
    let remote = unique("rotate/password");
    put_remote(&sm, &remote, "rotation-value-1").await;
    apply(
        &client,
        ns.name(),
        &es_yaml("app", "aws", "2s", &[("password", &remote)]),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    wait_for_data(&secrets, "app", &[("password", "rotation-value-1")]).await;

    put_remote(&sm, &remote, "rotation-value-2").await;
    wait_for_data(&secrets, "app", &[("password", "rotation-value-2")]).await;
}

#[tokio::test]
async fn drift_is_restored_without_waiting_for_the_refresh() {
    let client = client().await;
    let ns = tenant(&client, "drift").await;
    let sm = secrets_manager().await;
    let remote = unique("drift/password");
    put_remote(&sm, &remote, "drift-value-1").await;
    apply(
        &client,
        ns.name(),
        &es_yaml("app", "aws", "1h", &[("password", &remote)]),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    wait_for_data(&secrets, "app", &[("password", "drift-value-1")]).await;

    let edit = json!({"data": {"password": "ZWRpdGVkIGJ5IGhhbmQ="}});
    secrets
        .patch("app", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    wait_for_data(&secrets, "app", &[("password", "drift-value-1")]).await;

    secrets
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_for_data(&secrets, "app", &[("password", "drift-value-1")]).await;
}

#[tokio::test]
async fn a_provider_error_leaves_the_secret_as_it_was() {
    let client = client().await;
    let ns = tenant(&client, "keep").await;
    let sm = secrets_manager().await;
    let remote = unique("keep/password");
    put_remote(&sm, &remote, "keep-value-1").await;
    apply(
        &client,
        ns.name(),
        &es_yaml("app", "aws", "1h", &[("password", &remote)]),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let before = wait_for_data(&secrets, "app", &[("password", "keep-value-1")]).await;

    let missing = unique("keep/missing");
    apply(
        &client,
        ns.name(),
        &es_yaml(
            "app",
            "aws",
            "1h",
            &[("password", &remote), ("other", &missing)],
        ),
    )
    .await;
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.starts_with("could not get secret data from provider"),
        "{message}"
    );
    assert!(
        message.contains(&missing),
        "the message names the missing key: {message}"
    );
    let after = secrets.get("app").await.unwrap();
    assert_eq!(
        after.data, before.data,
        "the Secret keeps its last good data"
    );
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "the Secret was not written"
    );
}

#[tokio::test]
async fn owner_never_takes_over_a_foreign_secret() {
    let client = client().await;
    let ns = tenant(&client, "foreign").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let foreign = Secret {
        metadata: ObjectMeta {
            name: Some("app".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "mine".to_string(),
            "do-not-touch".to_string(),
        )])),
        ..Default::default()
    };
    let before = secrets
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let sm = secrets_manager().await;
    let remote = unique("foreign/password");
    put_remote(&sm, &remote, "foreign-value").await;
    apply(
        &client,
        ns.name(),
        &es_yaml("app", "aws", "1h", &[("password", &remote)]),
    )
    .await;

    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(message.contains("never takes over"), "{message}");
    let after = secrets.get("app").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "the foreign Secret was not touched"
    );
}

#[tokio::test]
async fn deleting_the_external_secret_deletes_its_secret() {
    let client = client().await;
    let ns = tenant(&client, "gc").await;
    let sm = secrets_manager().await;
    let remote = unique("gc/password");
    put_remote(&sm, &remote, "gc-value").await;
    apply(
        &client,
        ns.name(),
        &es_yaml("app", "aws", "1h", &[("password", &remote)]),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    wait_for_data(&secrets, "app", &[("password", "gc-value")]).await;

    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    es_api
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the garbage collector to delete the owned Secret",
        Duration::from_secs(90),
        || async {
            secrets
                .get_opt("app")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_service_account_without_a_role_is_reported_on_the_store() {
    let client = client().await;
    lockstep();
    let ns = TestNamespace::new(&client, "norole").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns.name());
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: ObjectMeta {
                name: Some("plain".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    apply(&client, ns.name(), &store_yaml("aws", "plain")).await;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    let message = eventually(
        "the store to report InvalidProviderConfig",
        WAIT,
        || async {
            let s = stores.get("aws").await.unwrap();
            let c = s.status?.conditions.into_iter().next()?;
            (c.reason.as_deref() == Some("InvalidProviderConfig"))
                .then(|| c.message.unwrap_or_default())
        },
    )
    .await;
    assert!(
        message.contains("an IAM role must be associated with service account plain"),
        "{message}"
    );
    assert!(
        message.contains("eks.amazonaws.com/role-arn"),
        "the message says what to do: {message}"
    );

    // An ExternalSecret using the store says why, and writes nothing.
    apply(
        &client,
        ns.name(),
        &es_yaml(
            "app",
            "aws",
            "1h",
            &[("password", &unique("norole/password"))],
        ),
    )
    .await;
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    let es_message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        es_message.contains("an IAM role must be associated with service account plain"),
        "{es_message}"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    assert!(secrets.get_opt("app").await.unwrap().is_none());
}

/// Runs last in spirit: it reads what every other test made lockstep print and write.
#[tokio::test]
async fn no_synced_value_appears_in_logs_events_or_status() {
    let client = client().await;
    let ns = tenant(&client, "leak").await;
    let sm = secrets_manager().await;
    let remote = unique("leak/password");
    let value = format!("leak-canary-{}", unique("v"));
    put_remote(&sm, &remote, &value).await;
    let missing = unique("leak/missing");
    apply(
        &client,
        ns.name(),
        &es_yaml("app", "aws", "2s", &[("password", &remote)]),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    wait_for_data(&secrets, "app", &[("password", &value)]).await;
    // A failing sync too: errors are where values most often leak.
    apply(
        &client,
        ns.name(),
        &es_yaml(
            "app",
            "aws",
            "2s",
            &[("password", &remote), ("x", &missing)],
        ),
    )
    .await;
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    wait_for_reason(&es_api, "app", "SecretSyncedError").await;

    let log = std::fs::read_to_string(lockstep()).unwrap();
    assert!(
        log.contains(ns.name()),
        "the log covers this test's namespace"
    );
    assert!(
        !log.contains(&value),
        "a synced value reached lockstep's log"
    );
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    let all =
        serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap();
    assert!(
        all.contains("UpdateFailed"),
        "the failure produced an event"
    );
    assert!(!all.contains(&value), "a synced value reached an event");
    let status = serde_json::to_string(&es_api.get("app").await.unwrap().status).unwrap();
    assert!(
        !status.contains(&value),
        "a synced value reached the status"
    );
}
