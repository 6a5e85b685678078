//! The CRDs against the real API server: they install, the seed guide's manifests are accepted at
//! v1beta1 and read back at v1, and every check that replaces ESO's admission webhook refuses
//! what it should with a message a user understands.
//!
//! Needs the local control plane with the CRDs installed (`make env-up`, or
//! `target/bin/cluster up --dir DIR --crd-dir crds`) and `KUBECONFIG` pointing at it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestNamespace, client, eventually};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use lockstep::api::{ExternalSecret, SecretStore};
use serde_json::{Value, json};

const SEED_EXTERNAL_SECRET: &str = include_str!("../deploy/examples/seed/externalsecret.yaml");
const SEED_SECRET_STORE: &str = include_str!("../deploy/examples/seed/secretstore.yaml");

/// The API resource of a kind at another served version.
fn at_version(resource: ApiResource, version: &str) -> ApiResource {
    ApiResource {
        api_version: format!("{}/{version}", resource.group),
        version: version.to_owned(),
        ..resource
    }
}

fn seed(yaml: &str, namespace: &str) -> Value {
    let mut value: Value = serde_saphyr::from_str(yaml).expect("the seed manifest is YAML");
    value["metadata"]["namespace"] = json!(namespace);
    value
}

async fn create(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    object: Value,
) -> Result<DynamicObject, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    let object: DynamicObject = serde_json::from_value(object).expect("a Kubernetes object");
    api.create(&PostParams::default(), &object).await
}

async fn get(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
) -> DynamicObject {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    api.get(name)
        .await
        .unwrap_or_else(|e| panic!("reading {name} at {}: {e}", resource.api_version))
}

/// Creates the object and returns the API server's refusal, failing if it was accepted.
async fn refusal(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    object: Value,
) -> String {
    match create(client, resource, namespace, object).await {
        Ok(created) => panic!(
            "the API server accepted {:?}, which it should refuse",
            created.metadata.name
        ),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "refused as invalid: {}", status.message);
            status.message
        }
        Err(other) => panic!("expected a refusal from the API server, got {other}"),
    }
}

fn assert_says(message: &str, expected: &str) {
    assert!(
        message.contains(expected),
        "the API server's message\n  {message}\ndoes not say\n  {expected}"
    );
}

fn external_secret_resource() -> ApiResource {
    ApiResource::erase::<ExternalSecret>(&())
}

fn secret_store_resource() -> ApiResource {
    ApiResource::erase::<SecretStore>(&())
}

fn store(name: &str, provider: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": provider}
    })
}

fn external_secret(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": spec
    })
}

fn one_key() -> Value {
    json!([{"secretKey": "password", "remoteRef": {"key": "team/db"}}])
}

async fn refused_store(prefix: &str, provider: Value) -> String {
    let client = client().await;
    let ns = TestNamespace::new(&client, prefix).await;
    refusal(
        &client,
        &secret_store_resource(),
        ns.name(),
        store("store", provider),
    )
    .await
}

async fn refused_external_secret(prefix: &str, spec: Value) -> String {
    let client = client().await;
    let ns = TestNamespace::new(&client, prefix).await;
    refusal(
        &client,
        &external_secret_resource(),
        ns.name(),
        external_secret("es", spec),
    )
    .await
}

#[tokio::test]
async fn the_crds_install_with_server_side_apply_and_become_established() {
    let client = client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("lockstep-crd-validation-test").force();
    for crd in lockstep::api::crds() {
        let name = crd.metadata.name.clone().expect("a CRD has a name");
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("the API server refused {name}: {e}"));
    }
    for crd in lockstep::api::crds() {
        let name = crd.metadata.name.clone().expect("a CRD has a name");
        eventually(
            &format!("{name} to be Established"),
            Duration::from_secs(30),
            || {
                let crds = crds.clone();
                let name = name.clone();
                async move {
                    let crd = crds.get(&name).await.ok()?;
                    let conditions = crd.status?.conditions?;
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await;
    }
    let served = crds.get(ExternalSecret::crd_name()).await.unwrap();
    let versions: Vec<_> = served
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(versions, [("v1", true, true), ("v1beta1", true, false)]);
}

#[tokio::test]
async fn the_seed_manifests_are_accepted_at_v1beta1_and_read_back_at_v1() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "seed-beta").await;
    let store = seed(SEED_SECRET_STORE, ns.name());
    let es = seed(SEED_EXTERNAL_SECRET, ns.name());
    assert_eq!(store["apiVersion"], "external-secrets.io/v1beta1");
    assert_eq!(es["apiVersion"], "external-secrets.io/v1beta1");

    let store_v1beta1 = at_version(secret_store_resource(), "v1beta1");
    let es_v1beta1 = at_version(external_secret_resource(), "v1beta1");
    create(&client, &store_v1beta1, ns.name(), store.clone())
        .await
        .expect("the seed SecretStore is accepted");
    create(&client, &es_v1beta1, ns.name(), es.clone())
        .await
        .expect("the seed ExternalSecret is accepted");

    assert_read_back_at_v1(&client, ns.name(), &store, &es).await;
}

#[tokio::test]
async fn the_seed_manifests_are_accepted_at_v1() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "seed-v1").await;
    let mut store = seed(SEED_SECRET_STORE, ns.name());
    let mut es = seed(SEED_EXTERNAL_SECRET, ns.name());
    store["apiVersion"] = json!("external-secrets.io/v1");
    es["apiVersion"] = json!("external-secrets.io/v1");
    create(&client, &secret_store_resource(), ns.name(), store.clone())
        .await
        .expect("the seed SecretStore is accepted at v1");
    create(&client, &external_secret_resource(), ns.name(), es.clone())
        .await
        .expect("the seed ExternalSecret is accepted at v1");

    assert_read_back_at_v1(&client, ns.name(), &store, &es).await;
}

/// Read at v1 (typed and untyped), the objects hold what was written plus the schema's defaults,
/// and read at v1beta1 they are the same.
async fn assert_read_back_at_v1(client: &Client, namespace: &str, store: &Value, es: &Value) {
    let mut expected_store = store["spec"].clone();
    expected_store["provider"]["aws"]["sessionTagsPolicy"] = json!("None");
    let mut expected_es = es["spec"].clone();
    expected_es["target"]["deletionPolicy"] = json!("Retain");

    let read_store = get(
        client,
        &secret_store_resource(),
        namespace,
        "aws-secretsmanager",
    )
    .await;
    assert_eq!(
        read_store.types.as_ref().unwrap().api_version,
        "external-secrets.io/v1"
    );
    assert_eq!(read_store.data["spec"], expected_store);
    let read_es = get(
        client,
        &external_secret_resource(),
        namespace,
        "app-secrets",
    )
    .await;
    assert_eq!(
        read_es.types.as_ref().unwrap().api_version,
        "external-secrets.io/v1"
    );
    assert_eq!(read_es.data["spec"], expected_es);

    let beta_es = get(
        client,
        &at_version(external_secret_resource(), "v1beta1"),
        namespace,
        "app-secrets",
    )
    .await;
    assert_eq!(
        beta_es.types.as_ref().unwrap().api_version,
        "external-secrets.io/v1beta1"
    );
    assert_eq!(beta_es.data["spec"], expected_es);

    let typed_store = Api::<SecretStore>::namespaced(client.clone(), namespace)
        .get("aws-secretsmanager")
        .await
        .unwrap();
    assert!(typed_store.spec.provider.single().is_ok());
    let typed_es = Api::<ExternalSecret>::namespaced(client.clone(), namespace)
        .get("app-secrets")
        .await
        .unwrap();
    assert_eq!(typed_es.spec.refresh_interval.as_str(), "1h");
    assert_eq!(typed_es.spec.data.len(), 2);
}

#[tokio::test]
async fn a_store_with_two_providers_is_refused() {
    let message = refused_store(
        "two-providers",
        json!({"aws": {"service": "SecretsManager", "region": "us-east-1"}, "fake": {"data": []}}),
    )
    .await;
    assert_says(
        &message,
        "exactly one provider must be set (supported: aws, fake, kubernetes, webhook); found 2",
    );
}

#[tokio::test]
async fn a_store_without_a_provider_is_refused() {
    let message = refused_store("no-provider", json!({})).await;
    assert_says(
        &message,
        "exactly one provider must be set (supported: aws, fake, kubernetes, webhook); found 0",
    );
}

#[tokio::test]
async fn a_store_with_an_unsupported_provider_names_the_supported_ones() {
    let message = refused_store(
        "vault",
        json!({"vault": {"server": "https://vault.example"}}),
    )
    .await;
    assert_says(
        &message,
        "provider \"vault\" is not supported by lockstep yet; supported providers: aws, fake, kubernetes, webhook",
    );
}

/// A key no provider has is pruned by the structural schema, and then the store has none.
#[tokio::test]
async fn a_store_with_a_misspelled_provider_is_refused() {
    let message = refused_store(
        "typo",
        json!({"awz": {"service": "SecretsManager", "region": "us-east-1"}}),
    )
    .await;
    assert_says(
        &message,
        "exactly one provider must be set (supported: aws, fake, kubernetes, webhook); found 0",
    );
}

#[tokio::test]
async fn an_external_secret_without_data_or_data_from_is_refused() {
    let message =
        refused_external_secret("no-data", json!({"secretStoreRef": {"name": "store"}})).await;
    assert_says(&message, "either data or dataFrom must be specified");
}

#[tokio::test]
async fn a_secret_key_with_a_slash_is_refused() {
    let message = refused_external_secret(
        "slash",
        json!({"data": [{"secretKey": "db/password", "remoteRef": {"key": "team/db"}}]}),
    )
    .await;
    assert_says(&message, "spec.data[0].secretKey");
    assert_says(&message, "should match '^[-._a-zA-Z0-9]+$'");
}

#[tokio::test]
async fn a_refresh_interval_that_is_not_a_duration_is_refused() {
    let message = refused_external_secret(
        "soon",
        json!({"refreshInterval": "soon", "data": one_key()}),
    )
    .await;
    assert_says(&message, "spec.refreshInterval: Invalid value: \"soon\"");
}

#[tokio::test]
async fn an_unknown_creation_policy_is_refused() {
    let message = refused_external_secret(
        "sometimes",
        json!({"target": {"creationPolicy": "Sometimes"}, "data": one_key()}),
    )
    .await;
    assert_says(
        &message,
        "spec.target.creationPolicy: Unsupported value: \"Sometimes\"",
    );
    assert_says(
        &message,
        "\"Owner\", \"Orphan\", \"Merge\", \"None\", \"CreateOrMerge\"",
    );
}

#[tokio::test]
async fn deletion_policy_delete_with_creation_policy_merge_is_refused() {
    let message = refused_external_secret(
        "delete-merge",
        json!({"target": {"creationPolicy": "Merge", "deletionPolicy": "Delete"}, "data": one_key()}),
    )
    .await;
    assert_says(
        &message,
        "deletionPolicy Delete cannot be combined with creationPolicy Merge, None or CreateOrMerge",
    );
}

#[tokio::test]
async fn a_data_from_entry_with_extract_and_find_is_refused() {
    let message = refused_external_secret(
        "extract-find",
        json!({"dataFrom": [{"extract": {"key": "team/app"}, "find": {"name": {"regexp": "^team/"}}}]}),
    )
    .await;
    assert_says(
        &message,
        "extract, find and sourceRef.generatorRef cannot be set at the same time",
    );
}

#[tokio::test]
async fn a_service_account_token_template_is_refused() {
    let message = refused_external_secret(
        "sa-token",
        json!({
            "target": {"template": {"type": "kubernetes.io/service-account-token"}},
            "data": one_key()
        }),
    )
    .await;
    assert_says(
        &message,
        "type kubernetes.io/service-account-token is not allowed",
    );
}

#[tokio::test]
async fn duplicate_secret_keys_are_refused() {
    let message = refused_external_secret(
        "duplicate",
        json!({"data": [
            {"secretKey": "password", "remoteRef": {"key": "team/db"}},
            {"secretKey": "password", "remoteRef": {"key": "team/other-db"}}
        ]}),
    )
    .await;
    assert_says(
        &message,
        "spec.data[1]: Duplicate value: {\"secretKey\":\"password\"}",
    );
}
