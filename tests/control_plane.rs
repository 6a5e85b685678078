//! The local control plane is the real thing: TokenRequest, garbage collection, namespace
//! deletion and RBAC behave as in a production cluster. Later tests rely on each of these.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::{TestNamespace, client, client_as_user, eventually};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn token_request_returns_a_token_for_the_requested_audience() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "token").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns.name());
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: meta("tenant"),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["sts.amazonaws.com".into()]),
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas
        .create_token_request("tenant", &PostParams::default(), &request)
        .await
        .unwrap();
    let jwt = token
        .status
        .and_then(|s| s.token)
        .expect("a TokenRequest answer has a token");

    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], serde_json::json!(["sts.amazonaws.com"]));
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{}:tenant", ns.name())
    );
}

#[tokio::test]
async fn deleting_an_owner_deletes_its_owned_secret() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "gc").await;
    let owners: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());

    let owner = owners
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: meta("owner"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let reference = OwnerReference {
        api_version: ConfigMap::api_version(&()).into(),
        kind: ConfigMap::kind(&()).into(),
        name: owner.name_any(),
        uid: owner.uid().unwrap(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let owned = Secret {
        metadata: ObjectMeta {
            owner_references: Some(vec![reference]),
            ..meta("owned")
        },
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &owned)
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: meta("unowned"),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    owners
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the garbage collector to delete the owned Secret",
        Duration::from_secs(60),
        || async {
            secrets
                .get_opt("owned")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(
        secrets.get_opt("unowned").await.unwrap().is_some(),
        "a Secret without an owner must survive"
    );
}

#[tokio::test]
async fn deleting_a_namespace_completes() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "nsdel").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: meta("s"),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(ns.name(), &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the namespace controller to finish deleting the namespace",
        Duration::from_secs(60),
        || async {
            namespaces
                .get_opt(ns.name())
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_minted_user_has_only_the_rights_rbac_grants() {
    let admin = client().await;
    let ns = TestNamespace::new(&admin, "rbac").await;
    let user = common::unique("tenant-user");
    let as_user = client_as_user(&user, &["tenants"]).await;
    let user_secrets: Api<Secret> = Api::namespaced(as_user, ns.name());

    let denied = user_secrets
        .list(&Default::default())
        .await
        .expect_err("no RBAC grant yet");
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "expected 403, got {denied:?}"
    );

    let roles: Api<Role> = Api::namespaced(admin.clone(), ns.name());
    let role = Role {
        metadata: meta("read-secrets"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["list".into()],
            ..Default::default()
        }]),
    };
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), ns.name());
    let binding = RoleBinding {
        metadata: meta("read-secrets"),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "read-secrets".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: user.clone(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Default::default()
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    eventually(
        "the RoleBinding to take effect",
        Duration::from_secs(10),
        || async { user_secrets.list(&Default::default()).await.ok() },
    )
    .await;
    let other: Api<Secret> = Api::namespaced(client_as_user(&user, &[]).await, "default");
    assert!(
        other.list(&Default::default()).await.is_err(),
        "the grant must not reach other namespaces"
    );
}
