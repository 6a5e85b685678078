//! The fake provider (`spec.provider.fake`) through a running `lockstep run`: a SecretStore whose
//! values live in its own spec syncs an ExternalSecret with `data` (versions, properties),
//! `dataFrom.extract` and `dataFrom.find`; validation follows `validationResult`; and inputs the
//! fake provider cannot honour are reported while the Secret keeps its data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    TestNamespace, WAIT, apply_manifest, assert_no_value_leaked, assert_unchanged, canary, client,
    eventually, lockstep, wait_for_data, wait_for_message, wait_for_reason,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use lockstep::api::external_secret::ExternalSecret;
use lockstep::api::secret_store::SecretStore;
use serde_json::{Value, json};

fn store(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"fake": {"data": data}}},
    })
}

fn external_secret(name: &str, data: Value, data_from: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "fake", "kind": "SecretStore"},
            "target": {"name": name},
            "data": data,
            "dataFrom": data_from,
        },
    })
}

/// The store's Ready condition as `(status, reason, message)`, once it has one.
async fn store_ready(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> (String, String, String) {
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("store {name} to be validated"), WAIT, || async {
        let c = stores
            .get(name)
            .await
            .ok()?
            .status?
            .conditions
            .into_iter()
            .next()?;
        Some((
            c.status.to_string(),
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default(),
        ))
    })
    .await
}

#[tokio::test]
async fn an_external_secret_syncs_data_extract_and_find_from_a_fake_store() {
    let client = client().await;
    let log = lockstep();
    let ns = TestNamespace::new(&client, "fake").await;
    let password = canary("password");
    // ESO's own snippet (docs/snippets/fake-provider-store.yaml), plus entries of this test.
    apply_manifest(
        &client,
        ns.name(),
        store(
            "fake",
            json!([
                {"key": "/foo/bar", "value": "HELLO1", "version": "v1"},
                {"key": "/foo/bar", "value": "HELLO2", "version": "v2"},
                {"key": "/foo/baz", "value": "{\"john\": \"doe\"}", "version": "v1"},
                {"key": "db", "value": json!({"user": "app", "password": password}).to_string()},
                {"key": "team/a", "value": "x"},
                {"key": "team/b", "value": "y"},
            ]),
        ),
    )
    .await;
    let data = json!([
        {"secretKey": "bar-v1", "remoteRef": {"key": "/foo/bar", "version": "v1"}},
        {"secretKey": "john", "remoteRef": {"key": "/foo/baz", "version": "v1", "property": "john"}},
    ]);
    let data_from = json!([
        {"extract": {"key": "db"}},
        {"find": {"name": {"regexp": "^/foo/"}}},
        {"find": {"path": "team/", "name": {"regexp": ".*"}}},
    ]);
    apply_manifest(
        &client,
        ns.name(),
        external_secret("synced", data.clone(), data_from.clone()),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    // find returns each key's highest version; keys are converted (`/` to `_`).
    let before = wait_for_data(
        &secrets,
        "synced",
        &[
            ("bar-v1", "HELLO1"),
            ("john", "doe"),
            ("user", "app"),
            ("password", &password),
            ("_foo_bar", "HELLO2"),
            ("_foo_baz", "{\"john\": \"doe\"}"),
            ("team_a", "x"),
            ("team_b", "y"),
        ],
    )
    .await;
    let es: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    wait_for_reason(&es, "synced", "SecretSynced").await;
    assert_eq!(store_ready(&client, ns.name(), "fake").await.1, "Valid");

    // A version the store does not declare: reported, and the Secret keeps its data.
    let mut bad_version = data.clone();
    bad_version[0]["remoteRef"]["version"] = json!("v3");
    apply_manifest(
        &client,
        ns.name(),
        external_secret("synced", bad_version, data_from.clone()),
    )
    .await;
    let message = wait_for_message(&es, "synced", "SecretSyncedError", "at version \"v3\"").await;
    assert!(
        message.contains("spec.data[0]") && message.contains("exactly its own version"),
        "{message}"
    );
    assert_unchanged(&secrets, &before).await;

    // Tags, which fake entries do not have: reported, and the Secret keeps its data.
    let mut tags = data_from.clone();
    tags[2]["find"]["tags"] = json!({"env": "prod"});
    apply_manifest(
        &client,
        ns.name(),
        external_secret("synced", data.clone(), tags),
    )
    .await;
    let message = wait_for_message(&es, "synced", "SecretSyncedError", "no tags").await;
    assert!(message.contains("spec.dataFrom[2].find"), "{message}");
    assert_unchanged(&secrets, &before).await;

    assert_no_value_leaked(&client, ns.name(), &[log], &[&password]).await;
}

#[tokio::test]
async fn validation_result_forces_the_store_status() {
    let client = client().await;
    lockstep();
    let ns = TestNamespace::new(&client, "fake-valid").await;
    let entries = json!([{"key": "k", "value": "v"}]);
    let mut unknown = store("unknown", entries.clone());
    unknown["spec"]["provider"]["fake"]["validationResult"] = json!(1);
    let mut error = store("error", entries);
    error["spec"]["provider"]["fake"]["validationResult"] = json!(2);
    apply_manifest(&client, ns.name(), unknown).await;
    apply_manifest(&client, ns.name(), error).await;

    let (status, reason, _) = store_ready(&client, ns.name(), "unknown").await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "ValidationUnknown")
    );
    let (status, reason, message) = store_ready(&client, ns.name(), "error").await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidProviderConfig")
    );
    assert!(message.contains("validationResult is 2"), "{message}");
}
