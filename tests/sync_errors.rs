//! Bad input and failing dependencies (issue 3's list), one test each, against the real control
//! plane and moto. Each test checks what the user sees (the Ready condition and the Warning
//! event), that no Secret was created, emptied, shrunk or changed, and that no value it synced
//! or used as a credential reached a log, an event or a status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{
    Forwarder, PrivateLockstep, WAIT, apis, apply, assert_absent, assert_no_value_leaked,
    assert_unchanged, aws_store, canary, data, eventually, external_secret, lockstep, put_remote,
    remote, secrets_manager, tenant, unique, wait_for_data, wait_for_event, wait_for_message,
    wait_for_reason,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use lockstep::api::secret_store::{ClusterSecretStore, SecretStore};
use serde_json::json;

async fn create_secret(client: &Client, namespace: &str, name: &str, data: &[(&str, &str)]) {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    api.create(&PostParams::default(), &secret).await.unwrap();
}

/// Waits until a store reports `reason`; returns its message.
async fn store_reason<K>(api: &Api<K>, name: &str, reason: &str) -> String
where
    K: kube::Resource
        + kube::core::object::HasStatus<Status = lockstep::api::secret_store::SecretStoreStatus>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    eventually(
        &format!("store {name} to report {reason}"),
        WAIT,
        || async {
            let s = api.get(name).await.unwrap();
            let c = s.status()?.conditions.first()?.clone();
            (c.reason.as_deref() == Some(reason)).then(|| c.message.unwrap_or_default())
        },
    )
    .await
}

/// A store authenticating with static keys from the Secret `aws-creds`.
fn static_store(name: &str, namespace: Option<&str>) -> serde_json::Value {
    let selector = |key: &str| {
        let mut s = json!({"name": "aws-creds", "key": key});
        if let Some(ns) = namespace {
            s["namespace"] = json!(ns);
        }
        s
    };
    aws_store(
        name,
        json!({"secretRef": {
            "accessKeyIDSecretRef": selector("access-key"),
            "secretAccessKeySecretRef": selector("secret-key"),
        }}),
    )
}

#[tokio::test]
async fn a_missing_credentials_secret_is_reported_and_nothing_is_written() {
    let client = common::client().await;
    let log = lockstep();
    let ns = common::TestNamespace::new(&client, "nocreds").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    let value = canary("nocreds");
    let key = remote("nocreds/password", &value).await;
    apply(&stores, static_store("aws", None)).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;

    let store_message = store_reason(&stores, "aws", "InvalidProviderConfig").await;
    let expected = format!(
        "Secret {}/aws-creds does not exist: create it, or fix the store's auth.secretRef",
        ns.name()
    );
    assert!(store_message.contains(&expected), "{store_message}");
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.starts_with(
            "could not get secret data from provider: SecretStore \"aws\" is not ready"
        ),
        "{message}"
    );
    assert!(message.contains(&expected), "{message}");
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Warning", "UpdateFailed"),
        &expected,
    )
    .await;
    assert_absent(&secrets, "app").await;

    // Once the credentials exist the store recovers by itself, and the ExternalSecret with it.
    let (access, secret_key) = (canary("access"), canary("secret"));
    create_secret(
        &client,
        ns.name(),
        "aws-creds",
        &[("access-key", &access), ("secret-key", &secret_key)],
    )
    .await;
    store_reason(&stores, "aws", "Valid").await;
    wait_for_data(&secrets, "app", &[("password", &value)]).await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&value, &access, &secret_key]).await;
}

#[tokio::test]
async fn a_missing_credentials_key_is_reported_and_nothing_is_written() {
    let client = common::client().await;
    let log = lockstep();
    let ns = common::TestNamespace::new(&client, "nokey").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    let access = canary("access");
    create_secret(&client, ns.name(), "aws-creds", &[("access-key", &access)]).await;
    let key = remote("nokey/password", &canary("nokey")).await;
    apply(&stores, static_store("aws", None)).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;

    let store_message = store_reason(&stores, "aws", "InvalidProviderConfig").await;
    assert!(
        store_message.contains(&format!(
            "cannot find secret data for key: \"secret-key\" in Secret {}/aws-creds",
            ns.name()
        )),
        "{store_message}"
    );
    assert!(
        store_message.contains("add the key"),
        "says what to do: {store_message}"
    );
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(message.contains("\"secret-key\""), "{message}");
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Warning", "UpdateFailed"),
        "secret-key",
    )
    .await;
    assert_absent(&secrets, "app").await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&access]).await;
}

#[tokio::test]
async fn a_property_that_does_not_exist_leaves_the_secret_as_it_was() {
    let client = common::client().await;
    let log = lockstep();
    let ns = tenant(&client, "noprop").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let user = canary("user");
    let key = remote("noprop/json", &json!({"user": user}).to_string()).await;
    let es = |property: &str| {
        external_secret(
            "app",
            json!({"data": data(&[("user", json!({"key": key, "property": property}))])}),
        )
    };
    apply(&es_api, es("user")).await;
    let before = wait_for_data(&secrets, "app", &[("user", &user)]).await;
    wait_for_reason(&es_api, "app", "SecretSynced").await;

    apply(&es_api, es("nope")).await;
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    let expected = format!("key nope does not exist in secret {key}");
    assert!(
        message.starts_with("could not get secret data from provider"),
        "{message}"
    );
    assert!(message.contains(&expected), "{message}");
    assert!(
        message.contains("check remoteRef.property"),
        "says what to do: {message}"
    );
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Warning", "UpdateFailed"),
        &expected,
    )
    .await;
    assert_unchanged(&secrets, &before).await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&user]).await;
}

#[tokio::test]
async fn a_property_of_a_value_that_is_not_json_leaves_the_secret_as_it_was() {
    let client = common::client().await;
    let log = lockstep();
    let ns = tenant(&client, "notjson").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let value = canary("plain");
    let key = remote("notjson/plain", &value).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    let before = wait_for_data(&secrets, "app", &[("password", &value)]).await;
    wait_for_reason(&es_api, "app", "SecretSynced").await;

    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[("password", json!({"key": key, "property": "password"}))])}),
        ),
    )
    .await;
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    let expected = format!("the value of secret {key} is not JSON");
    assert!(message.contains(&expected), "{message}");
    assert!(
        message.contains("remove remoteRef.property"),
        "says what to do: {message}"
    );
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Warning", "UpdateFailed"),
        &expected,
    )
    .await;
    assert_unchanged(&secrets, &before).await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&value]).await;
}

#[tokio::test]
async fn data_larger_than_a_secret_can_hold_leaves_the_secret_as_it_was() {
    let client = common::client().await;
    let log = lockstep();
    let ns = tenant(&client, "toolarge").await;
    let (es_api, secrets) = apis(&client, ns.name());
    // Secrets Manager holds at most 64 KiB per secret: 20 keys of 60 000 bytes exceed 1 MiB.
    let value = format!("{}{}", canary("large"), "x".repeat(60_000));
    let key = remote("toolarge/blob", &value).await;
    let keys = |n: usize| {
        let entries: Vec<(String, serde_json::Value)> = (0..n)
            .map(|i| (format!("k{i}"), json!({"key": key})))
            .collect();
        let refs: Vec<(&str, serde_json::Value)> = entries
            .iter()
            .map(|(k, r)| (k.as_str(), r.clone()))
            .collect();
        external_secret("app", json!({"data": data(&refs)}))
    };
    apply(&es_api, keys(2)).await;
    let before = wait_for_data(&secrets, "app", &[("k0", &value), ("k1", &value)]).await;
    wait_for_reason(&es_api, "app", "SecretSynced").await;

    apply(&es_api, keys(20)).await;
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.starts_with("could not update secret: the Secret's data is"),
        "{message}"
    );
    assert!(
        message.contains("split them across several ExternalSecrets"),
        "says what to do: {message}"
    );
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Warning", "UpdateFailed"),
        "1 MiB",
    )
    .await;
    assert_unchanged(&secrets, &before).await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&value]).await;
}

#[tokio::test]
async fn a_target_owned_by_another_external_secret_is_not_taken_over() {
    let client = common::client().await;
    let log = lockstep();
    let ns = tenant(&client, "owned").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let (first, second) = (canary("first"), canary("second"));
    let (k1, k2) = (
        remote("owned/first", &first).await,
        remote("owned/second", &second).await,
    );
    apply(
        &es_api,
        external_secret(
            "one",
            json!({"target": {"name": "shared"}, "data": data(&[("password", json!({"key": k1}))])}),
        ),
    )
    .await;
    let before = wait_for_data(&secrets, "shared", &[("password", &first)]).await;
    wait_for_reason(&es_api, "one", "SecretSynced").await;

    apply(
        &es_api,
        external_secret(
            "two",
            json!({"target": {"name": "shared"}, "data": data(&[("password", json!({"key": k2}))])}),
        ),
    )
    .await;
    let message = wait_for_reason(&es_api, "two", "SecretSyncedError").await;
    assert!(
        message.starts_with("target is owned by another ExternalSecret"),
        "{message}"
    );
    assert_eq!(
        message
            .matches("target is owned by another ExternalSecret")
            .count(),
        1,
        "ESO's message is not repeated: {message}"
    );
    assert!(message.contains("\"one\""), "names the owner: {message}");
    assert!(
        message.contains("spec.target.name"),
        "says what to do: {message}"
    );
    wait_for_event(
        &client,
        ns.name(),
        "two",
        ("Warning", "UpdateFailed"),
        "target is owned by another ExternalSecret",
    )
    .await;
    assert_unchanged(&secrets, &before).await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&first, &second]).await;
}

#[tokio::test]
async fn a_namespace_excluded_by_cluster_store_conditions_is_refused() {
    let client = common::client().await;
    let log = lockstep();
    let ns = common::TestNamespace::new(&client, "denied").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let css_api: Api<ClusterSecretStore> = Api::all(client.clone());
    let store = unique("conditions");
    let css = |allowed: &str| {
        let mut s = aws_store(&store, serde_json::Value::Null);
        s["kind"] = json!("ClusterSecretStore");
        s["spec"]["conditions"] = json!([{"namespaces": [allowed]}]);
        s
    };
    // The store itself is fine: it uses lockstep's own (default chain) credentials.
    apply(&css_api, css("somebody-else")).await;
    store_reason(&css_api, &store, "Valid").await;
    let value = canary("denied");
    let key = remote("denied/password", &value).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
                   "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;

    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    let expected = format!(
        "using cluster store {store:?} is not allowed from namespace {:?}: denied by spec.condition",
        ns.name()
    );
    assert!(
        message.starts_with("could not get secret data from provider"),
        "{message}"
    );
    assert!(message.contains(&expected), "{message}");
    assert!(
        message.contains("spec.conditions"),
        "says what to do: {message}"
    );
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Warning", "UpdateFailed"),
        &expected,
    )
    .await;
    assert_absent(&secrets, "app").await;

    // The same ExternalSecret syncs once the conditions admit its namespace.
    apply(&css_api, css(ns.name())).await;
    wait_for_data(&secrets, "app", &[("password", &value)]).await;
    css_api
        .delete(&store, &DeleteParams::default())
        .await
        .unwrap();
    assert_no_value_leaked(&client, ns.name(), &[log], &[&value]).await;
}

#[tokio::test]
async fn a_secret_store_may_not_use_credentials_of_another_namespace() {
    let client = common::client().await;
    let log = lockstep();
    let ns = common::TestNamespace::new(&client, "referent").await;
    let other = common::TestNamespace::new(&client, "victim").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    // The credentials and the ServiceAccount exist in the other namespace: the refusal is about
    // where they are, not whether they are.
    let (access, secret_key) = (canary("access"), canary("secret"));
    create_secret(
        &client,
        other.name(),
        "aws-creds",
        &[("access-key", &access), ("secret-key", &secret_key)],
    )
    .await;
    common::service_account(
        &client,
        other.name(),
        "tenant",
        Some("arn:aws:iam::123456789012:role/victim"),
    )
    .await;
    apply(&stores, static_store("by-secret", Some(other.name()))).await;
    apply(
        &stores,
        aws_store(
            "by-sa",
            json!({"jwt": {"serviceAccountRef": {"name": "tenant", "namespace": other.name()}}}),
        ),
    )
    .await;
    let value = canary("referent");
    let key = remote("referent/password", &value).await;
    for store in ["by-secret", "by-sa"] {
        apply(
            &es_api,
            external_secret(
                store,
                json!({"secretStoreRef": {"name": store, "kind": "SecretStore"},
                       "data": data(&[("password", json!({"key": key}))])}),
            ),
        )
        .await;
    }

    for (store, field) in [
        ("by-secret", "auth.secretRef"),
        ("by-sa", "auth.jwt.serviceAccountRef"),
    ] {
        let message = store_reason(&stores, store, "InvalidProviderConfig").await;
        let expected = format!(
            "{field} names namespace {:?}, but a SecretStore may only use its own namespace {:?}",
            other.name(),
            ns.name()
        );
        assert!(message.contains(&expected), "{message}");
        assert!(
            message.contains("ClusterSecretStore"),
            "says what to do: {message}"
        );
        let es_message = wait_for_reason(&es_api, store, "SecretSyncedError").await;
        assert!(es_message.contains(&expected), "{es_message}");
        assert_absent(&secrets, store).await;
    }
    assert_no_value_leaked(&client, ns.name(), &[log], &[&value, &access, &secret_key]).await;
}

#[tokio::test]
async fn the_aws_endpoint_down_and_back_up() {
    let client = common::client().await;
    let ns = common::TestNamespace::new(&client, "endpoint").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    // The endpoint comes from lockstep's environment: a lockstep of this test's own, scoped to its
    // namespace, reaches moto through a forwarder the test can take down. Its store names the
    // private lockstep's controller class, so the shared lockstep leaves it alone.
    let forwarder = Forwarder::start(&common::env("AWS_ENDPOINT_URL")).await;
    let class = unique("endpoint");
    let private = PrivateLockstep::start(
        ns.name(),
        &class,
        &[("AWS_ENDPOINT_URL", forwarder.url.as_str())],
    );
    lockstep();
    let mut store = aws_store("aws", serde_json::Value::Null);
    store["spec"]["controller"] = json!(class);
    apply(&stores, store).await;
    let (v1, v2) = (canary("endpoint-1"), canary("endpoint-2"));
    let key = remote("endpoint/password", &v1).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    let before = wait_for_data(&secrets, "app", &[("password", &v1)]).await;
    wait_for_reason(&es_api, "app", "SecretSynced").await;

    forwarder.down();
    put_remote(&secrets_manager().await, &key, &v2).await;
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.starts_with("could not get secret data from provider"),
        "{message}"
    );
    assert!(message.contains(&key), "names the key: {message}");
    assert!(message.contains("retr"), "says lockstep retries: {message}");
    assert!(
        !message.contains("DispatchFailure"),
        "no SDK internals in the status: {message}"
    );
    wait_for_event(&client, ns.name(), "app", ("Warning", "UpdateFailed"), &key).await;
    assert_unchanged(&secrets, &before).await;

    forwarder.up().await;
    wait_for_data(&secrets, "app", &[("password", &v2)]).await;
    wait_for_message(&es_api, "app", "SecretSynced", "secret synced").await;
    assert_no_value_leaked(&client, ns.name(), &[&private.log], &[&v1, &v2]).await;
}

/// Creates an IAM user that may do anything but read secret values, and a secret; then turns on
/// moto's IAM enforcement. Prints the user's access key id and secret key.
const DENY_READS: &str = r#"
import boto3, json, sys, urllib.request
url, name, value = sys.argv[1:4]
kw = dict(endpoint_url=url, region_name="us-east-1",
          aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="reader")
iam.put_user_policy(UserName="reader", PolicyName="no-secret-values", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
    ]}))
key = iam.create_access_key(UserName="reader")["AccessKey"]
boto3.client("secretsmanager", **kw).create_secret(Name=name, SecretString=value)
urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset-auth", data=b"0",
                                              headers={"Content-Type": "text/plain"})).read()
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

#[tokio::test]
async fn access_denied_is_reported_and_nothing_is_written() {
    let client = common::client().await;
    let ns = common::TestNamespace::new(&client, "denied-iam").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    // IAM enforcement is global to a moto server: this test gets its own, and a lockstep of its
    // own pointed at it (scoped to the namespace, with a controller class only its store uses).
    let moto = common::PrivateMoto::start();
    let (value, key) = (canary("denied-iam"), unique("denied/password"));
    let keys = moto.python(DENY_READS, &[&key, &value]);
    let (access, secret_key) = keys.split_once(' ').expect("an access key");
    let class = unique("iam");
    let private = PrivateLockstep::start(ns.name(), &class, &[("AWS_ENDPOINT_URL", &moto.url)]);
    create_secret(
        &client,
        ns.name(),
        "aws-creds",
        &[("access-key", access), ("secret-key", secret_key)],
    )
    .await;
    let mut store = static_store("aws", None);
    store["spec"]["controller"] = json!(class);
    apply(&stores, store).await;
    // The credentials are good: the store validates (STS GetCallerIdentity is allowed).
    store_reason(&stores, "aws", "Valid").await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;

    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.starts_with("could not get secret data from provider"),
        "{message}"
    );
    assert!(message.contains(&key), "names the key: {message}");
    // moto answers an IAM denial of a JSON-protocol call with an XML body the SDK cannot parse
    // (AWS answers JSON AccessDeniedException); the HTTP 403 alone makes it a denial.
    assert!(
        message.contains("was denied"),
        "says it was denied: {message}"
    );
    assert!(
        message.contains("must allow secretsmanager:GetSecretValue"),
        "says which permission is missing: {message}"
    );
    wait_for_event(&client, ns.name(), "app", ("Warning", "UpdateFailed"), &key).await;
    assert_absent(&secrets, "app").await;
    assert_no_value_leaked(&client, ns.name(), &[&private.log], &[&value, secret_key]).await;
}

#[tokio::test]
async fn a_failure_repeated_is_one_event_with_a_count() {
    let client = common::client().await;
    let log = lockstep();
    let ns = tenant(&client, "series").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let user = canary("user");
    let key = remote("series/json", &json!({"user": user}).to_string()).await;
    let es = |force: &str| {
        let mut es = external_secret(
            "app",
            json!({"data": data(&[("user", json!({"key": key, "property": "nope"}))])}),
        );
        es["metadata"]["annotations"] = json!({"force-sync": force});
        es
    };
    apply(&es_api, es("1")).await;
    let expected = format!("key nope does not exist in secret {key}");
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Warning", "UpdateFailed"),
        &expected,
    )
    .await;
    // A changed annotation reconciles at once, and fails the same way.
    apply(&es_api, es("2")).await;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), ns.name());
    let failures = || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("UpdateFailed"))
            .collect::<Vec<_>>()
    };
    let count = eventually("the failure's event to count 2", WAIT, || async {
        let failures = failures().await;
        let count = failures.first()?.series.as_ref()?.count;
        (count >= 2).then_some(count)
    })
    .await;
    assert!(count >= 2);
    assert_eq!(
        failures().await.len(),
        1,
        "one Event for the repeated failure"
    );
    assert_absent(&secrets, "app").await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&user]).await;
}
