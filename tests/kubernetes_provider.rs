//! The kubernetes provider against the local control plane: Secrets of another namespace read
//! with the store's own identity (a token, a ServiceAccount, a client certificate, a kubeconfig),
//! the API server reached by URL and CA as a remote cluster would be; a store whose identity may
//! not read is not Ready and says which permission is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{
    TestNamespace, apis, apply, assert_no_value_leaked, assert_unchanged, canary, client, env,
    lockstep, service_account, unique, wait_for_data, wait_for_message, wait_for_reason,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use lockstep::api::secret_store::SecretStore;
use serde_json::{Value, json};

/// The API server's URL and CA, as a store for a remote cluster names them.
fn server() -> (String, Vec<u8>) {
    let kubeconfig = kube::config::Kubeconfig::read_from(env("KUBECONFIG")).unwrap();
    let cluster = kubeconfig.clusters[0].cluster.clone().unwrap();
    let ca = STANDARD
        .decode(cluster.certificate_authority_data.unwrap())
        .unwrap();
    (cluster.server.unwrap(), ca)
}

/// A Secret with `data`, and `labels`.
async fn secret(
    client: &Client,
    ns: &str,
    name: &str,
    data: &[(&str, &[u8])],
    labels: &[(&str, &str)],
) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Default::default()
    };
    api.create(&PostParams::default(), &s).await.unwrap();
}

/// Grants `subject` (`User` name, or `ServiceAccount` namespace/name) `verbs` on Secrets in `ns`.
async fn grant(client: &Client, ns: &str, name: &str, subject: Subject, verbs: &[&str]) {
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    let role = Role {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }]),
    };
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![subject]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

fn service_account_subject(ns: &str, name: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: name.into(),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

/// A token of ServiceAccount `ns/name`, as an administrator would hand one out.
async fn token_of(client: &Client, ns: &str, name: &str) -> String {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    api.create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .and_then(|s| s.token)
        .unwrap()
}

/// A SecretStore `name` reading `remote` on the API server by URL and CA, with `auth`.
fn store(name: &str, remote: &str, auth: Value) -> Value {
    let (url, ca) = server();
    let mut spec = json!({
        "server": {"url": url, "caBundle": STANDARD.encode(ca)},
        "remoteNamespace": remote,
    });
    match auth.get("authRef") {
        Some(reference) => spec["authRef"] = reference.clone(),
        None => spec["auth"] = auth,
    }
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"kubernetes": spec}},
    })
}

/// An ExternalSecret `app` on store `store` with `spec` merged in.
fn external_secret(store: &str, spec: Value) -> Value {
    let mut es = common::external_secret("app", spec);
    es["spec"]["secretStoreRef"] = json!({"name": store, "kind": "SecretStore"});
    es
}

/// Two namespaces: `remote` holding Secret `db`, and `app` (with lockstep running).
async fn pair(client: &Client) -> (TestNamespace, TestNamespace, String) {
    lockstep();
    let remote = TestNamespace::new(client, "k8s-remote").await;
    let app = TestNamespace::new(client, "k8s-app").await;
    let password = canary("k8s-password");
    secret(
        client,
        remote.name(),
        "db",
        &[
            ("username", b"admin"),
            ("password", password.as_bytes()),
            ("config.json", br#"{"host":"db.internal","port":5432}"#),
        ],
        &[("team", "payments")],
    )
    .await;
    (remote, app, password)
}

#[tokio::test]
async fn a_bearer_token_reads_another_namespace_and_losing_get_keeps_the_secret() {
    let client = client().await;
    let log = lockstep();
    let (remote, app, password) = pair(&client).await;
    service_account(&client, app.name(), "reader", None).await;
    grant(
        &client,
        remote.name(),
        "read-secrets",
        service_account_subject(app.name(), "reader"),
        &["get", "list"],
    )
    .await;
    let token = token_of(&client, app.name(), "reader").await;
    secret(
        &client,
        app.name(),
        "remote-token",
        &[("token", format!("{token}\n").as_bytes())],
        &[],
    )
    .await;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), app.name());
    apply(
        &stores,
        store(
            "k8s",
            remote.name(),
            json!({"token": {"bearerToken": {"name": "remote-token", "key": "token"}}}),
        ),
    )
    .await;
    common::wait_for_store(&client, app.name(), "k8s", "True", "store validated").await;

    let (es_api, secrets) = apis(&client, app.name());
    let spec = json!({
        "refreshInterval": "1s",
        "data": [
            {"secretKey": "password", "remoteRef": {"key": "db", "property": "password"}},
            {"secretKey": "config", "remoteRef": {"key": "db", "property": "config.json"}},
            {"secretKey": "team", "remoteRef": {"key": "db", "property": "labels.team", "metadataPolicy": "Fetch"}},
        ],
        "dataFrom": [{"extract": {"key": "db"}}],
    });
    apply(&es_api, external_secret("k8s", spec)).await;
    let before = wait_for_data(
        &secrets,
        "app",
        &[
            ("password", &password),
            ("username", "admin"),
            ("config.json", r#"{"host":"db.internal","port":5432}"#),
            ("config", r#"{"host":"db.internal","port":5432}"#),
            ("team", "payments"),
        ],
    )
    .await;
    wait_for_reason(&es_api, "app", "SecretSynced").await;

    // The store's identity loses its permission: the refresh fails, saying which one, and the
    // Secret keeps its data.
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), remote.name());
    bindings
        .delete("read-secrets", &DeleteParams::default())
        .await
        .unwrap();
    let message = wait_for_message(
        &es_api,
        "app",
        "SecretSyncedError",
        &format!("may not get secrets in namespace {}", remote.name()),
    )
    .await;
    assert!(message.contains("grant it get on secrets"), "{message}");
    let current = secrets.get("app").await.unwrap();
    assert_eq!(
        current.data, before.data,
        "the failed refresh kept the data"
    );
    // Refreshes go on failing every second; none of them writes.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_unchanged(&secrets, &current).await;
    assert_no_value_leaked(&client, app.name(), &[log], &[&password, token.as_str()]).await;
}

#[tokio::test]
async fn an_identity_that_may_not_get_secrets_leaves_the_store_not_ready() {
    let client = client().await;
    let (remote, app, _) = pair(&client).await;
    service_account(&client, app.name(), "lister", None).await;
    grant(
        &client,
        remote.name(),
        "list-only",
        service_account_subject(app.name(), "lister"),
        &["list"],
    )
    .await;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), app.name());
    apply(
        &stores,
        store(
            "k8s",
            remote.name(),
            json!({"serviceAccount": {"name": "lister"}}),
        ),
    )
    .await;
    let message =
        common::wait_for_store(&client, app.name(), "k8s", "False", "may not get secrets").await;
    let who = format!("system:serviceaccount:{}:lister", app.name());
    assert!(message.contains(&who), "names the identity: {message}");
    assert!(
        message.contains(&format!(
            "may not get secrets in namespace {}",
            remote.name()
        )),
        "names verb, resource and namespace: {message}"
    );

    // Referencing another namespace's token from a SecretStore is refused, not followed.
    apply(
        &stores,
        store(
            "foreign",
            remote.name(),
            json!({"token": {"bearerToken": {"name": "t", "key": "token", "namespace": remote.name()}}}),
        ),
    )
    .await;
    let message = common::wait_for_store(
        &client,
        app.name(),
        "foreign",
        "False",
        "may only use its own namespace",
    )
    .await;
    assert!(message.contains("ClusterSecretStore"), "{message}");
}

#[tokio::test]
async fn a_service_account_token_is_requested_for_the_store() {
    let client = client().await;
    let (remote, app, password) = pair(&client).await;
    service_account(&client, app.name(), "reader", None).await;
    grant(
        &client,
        remote.name(),
        "read-secrets",
        service_account_subject(app.name(), "reader"),
        &["get", "list"],
    )
    .await;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), app.name());
    apply(
        &stores,
        store(
            "k8s",
            remote.name(),
            json!({"serviceAccount": {"name": "reader"}}),
        ),
    )
    .await;
    common::wait_for_store(&client, app.name(), "k8s", "True", "store validated").await;
    let (es_api, secrets) = apis(&client, app.name());
    let spec = json!({"data": [{"secretKey": "password", "remoteRef": {"key": "db", "property": "password"}}]});
    apply(&es_api, external_secret("k8s", spec)).await;
    wait_for_data(&secrets, "app", &[("password", &password)]).await;

    // A key that does not exist: a clear message, and the Secret keeps its data.
    let before = secrets.get("app").await.unwrap();
    let spec = json!({"data": [{"secretKey": "password", "remoteRef": {"key": "nope", "property": "password"}}]});
    apply(&es_api, external_secret("k8s", spec)).await;
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.contains(&format!(
            "Secret \"nope\" does not exist in namespace {}",
            remote.name()
        )),
        "{message}"
    );
    assert_unchanged(&secrets, &before).await;
}

#[tokio::test]
async fn a_client_certificate_or_a_kubeconfig_reads_and_find_selects_by_label_or_name() {
    let client = client().await;
    let (remote, app, password) = pair(&client).await;
    secret(
        &client,
        remote.name(),
        "db-replica",
        &[("password", b"replica")],
        &[("team", "payments")],
    )
    .await;
    secret(&client, remote.name(), "other", &[("x", b"y")], &[]).await;
    // A user of the cluster's CA, as `kubectl` on another cluster would have.
    let user = unique("remote-reader");
    let path = std::env::temp_dir().join(format!("{user}.kubeconfig"));
    let status = std::process::Command::new(env("LOCKSTEP_TEST_CLUSTER_BIN"))
        .args([
            "kubeconfig",
            "--dir",
            &env("LOCKSTEP_TEST_CLUSTER_DIR"),
            "--user",
            &user,
            "--out",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let auth = kubeconfig.auth_infos[0].auth_info.clone().unwrap();
    let cert = STANDARD
        .decode(auth.client_certificate_data.unwrap())
        .unwrap();
    let key = {
        use secrecy::ExposeSecret;
        STANDARD
            .decode(auth.client_key_data.unwrap().expose_secret())
            .unwrap()
    };
    secret(
        &client,
        app.name(),
        "remote-cert",
        &[
            ("tls.crt", &cert),
            ("tls.key", &key),
            ("kubeconfig", text.as_bytes()),
        ],
        &[],
    )
    .await;
    let subject = Subject {
        kind: "User".into(),
        name: user.clone(),
        api_group: Some("rbac.authorization.k8s.io".into()),
        ..Default::default()
    };
    grant(
        &client,
        remote.name(),
        "read-secrets",
        subject,
        &["get", "list"],
    )
    .await;

    let stores: Api<SecretStore> = Api::namespaced(client.clone(), app.name());
    let cert_auth = json!({"cert": {
        "clientCert": {"name": "remote-cert", "key": "tls.crt"},
        "clientKey": {"name": "remote-cert", "key": "tls.key"},
    }});
    apply(&stores, store("cert", remote.name(), cert_auth)).await;
    apply(
        &stores,
        store(
            "kubeconfig",
            remote.name(),
            json!({"authRef": {"name": "remote-cert", "key": "kubeconfig"}}),
        ),
    )
    .await;
    for name in ["cert", "kubeconfig"] {
        common::wait_for_store(&client, app.name(), name, "True", "store validated").await;
    }

    let (es_api, secrets) = apis(&client, app.name());
    let spec = json!({
        "data": [{"secretKey": "password", "remoteRef": {"key": "db", "property": "password"},
                  "sourceRef": {"storeRef": {"name": "kubeconfig", "kind": "SecretStore"}}}],
        "dataFrom": [
            {"find": {"tags": {"team": "payments"}}},
            {"find": {"name": {"regexp": "^oth"}}},
        ],
    });
    apply(&es_api, external_secret("cert", spec)).await;
    let found: BTreeMap<String, String> = [
        ("password", password.clone()),
        ("db", format!(r#"{{"config.json":"{{\"host\":\"db.internal\",\"port\":5432}}","password":"{password}","username":"admin"}}"#)),
        ("db-replica", r#"{"password":"replica"}"#.to_string()),
        ("other", r#"{"x":"y"}"#.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let expected: Vec<(&str, &str)> = found
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    wait_for_data(&secrets, "app", &expected).await;
}
