//! Per-tenant identity and request economics: each tenant's ExternalSecrets use credentials
//! obtained for that tenant's ServiceAccount and role, exchanged once, not on every reconcile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{TestNamespace, client, lockstep, put_remote, secrets_manager, unique};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use lockstep::api::external_secret::ExternalSecret;
use serde_json::json;

async fn tenant_with_es(client: &Client, role: &str, remote: &str) -> TestNamespace {
    let ns = TestNamespace::new(client, "tenant").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns.name());
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("app".into()),
            annotations: Some(BTreeMap::from([(
                "eks.amazonaws.com/role-arn".to_string(),
                role.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "aws"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
            "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}}}
    });
    let es = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "app"},
        "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
            "data": [{"secretKey": "password", "remoteRef": {"key": remote}}]}
    });
    let params = PatchParams::apply("lockstep-tests");
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), ns.name());
    stores
        .patch("aws", &params, &Patch::Apply(&store))
        .await
        .unwrap();
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    ess.patch("app", &params, &Patch::Apply(&es)).await.unwrap();
    ns
}

#[tokio::test]
async fn each_tenant_gets_its_own_role_exchanged_once_for_many_refreshes() {
    let client = client().await;
    let log = lockstep();
    let sm = secrets_manager().await;
    let remote = unique("identity/password");
    put_remote(&sm, &remote, "identity-value").await;
    let a = tenant_with_es(&client, "arn:aws:iam::123456789012:role/tenant-a", &remote).await;
    let b = tenant_with_es(&client, "arn:aws:iam::123456789012:role/tenant-b", &remote).await;

    for ns in [&a, &b] {
        wait_for_refreshes_simple(&client, ns.name(), 5).await;
    }

    let text = std::fs::read_to_string(log).unwrap();
    for (ns, role) in [(&a, "role/tenant-a"), (&b, "role/tenant-b")] {
        let exchanges: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("exchanged AWS credentials")
                    && l.contains(&format!("for_namespace={}", ns.name()))
            })
            .collect();
        assert_eq!(
            exchanges.len(),
            1,
            "one exchange for {} over 5+ refreshes: {exchanges:#?}",
            ns.name()
        );
        assert!(
            exchanges[0].contains(role),
            "{} used its own role: {}",
            ns.name(),
            exchanges[0]
        );
        assert!(
            exchanges[0].contains(&format!("session=lockstep@{}.app", ns.name())),
            "the session name names the tenant, for CloudTrail: {}",
            exchanges[0]
        );
    }
}

/// Polls the ExternalSecret every 200 ms and counts distinct refresh times.
async fn wait_for_refreshes_simple(client: &Client, namespace: &str, n: usize) {
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while seen.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "saw only {} refreshes in {namespace}",
            seen.len()
        );
        if let Some(t) = ess
            .get("app")
            .await
            .unwrap()
            .status
            .and_then(|s| s.refresh_time)
        {
            seen.insert(t.0.to_string());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies a store and an ExternalSecret (JSON) into `namespace`.
async fn apply_pair(
    client: &Client,
    namespace: &str,
    store: serde_json::Value,
    es: serde_json::Value,
) {
    let params = PatchParams::apply("lockstep-tests");
    let name = store["metadata"]["name"].as_str().unwrap().to_owned();
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), namespace);
    stores
        .patch(&name, &params, &Patch::Apply(&store))
        .await
        .unwrap();
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
    ess.patch("app", &params, &Patch::Apply(&es)).await.unwrap();
}

async fn secret_value(client: &Client, namespace: &str, key: &str, expected: &str) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    common::eventually(
        &format!("Secret app to hold {key}"),
        Duration::from_secs(60),
        || async {
            let s = secrets.get_opt("app").await.unwrap()?;
            let v = s.data?.get(key)?.0.clone();
            (v == expected.as_bytes()).then_some(())
        },
    )
    .await;
}

fn exchanges_for<'a>(log: &'a str, namespace: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| {
            l.contains("exchanged AWS credentials")
                && l.contains(&format!("for_namespace={namespace}"))
        })
        .collect()
}

#[tokio::test]
async fn a_store_without_auth_uses_the_operators_own_credentials_with_a_prefix() {
    let client = client().await;
    let log = lockstep();
    let sm = secrets_manager().await;
    let remote = unique("default-chain/password");
    put_remote(&sm, &format!("team-x/{remote}"), "default-chain-value").await;
    let ns = TestNamespace::new(&client, "nochain").await;
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "aws"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1", "prefix": "team-x/"}}}
    });
    let es = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "app"},
        "spec": {"secretStoreRef": {"name": "aws"}, "data": [{"secretKey": "password", "remoteRef": {"key": remote}}]}
    });
    apply_pair(&client, ns.name(), store, es).await;
    secret_value(&client, ns.name(), "password", "default-chain-value").await;
    let text = std::fs::read_to_string(log).unwrap();
    let lines = exchanges_for(&text, ns.name());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("role=(base credentials)"),
        "no role assumed: {}",
        lines[0]
    );
}

#[tokio::test]
async fn a_role_chain_ends_in_the_store_role_and_an_entry_store_overrides_the_default() {
    let client = client().await;
    let log = lockstep();
    let sm = secrets_manager().await;
    let remote = unique("chain/password");
    put_remote(&sm, &remote, "chained-value").await;
    let ns = TestNamespace::new(&client, "chain").await;
    let chained = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "chained"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
            "additionalRoles": ["arn:aws:iam::123456789012:role/hop-1"],
            "role": "arn:aws:iam::123456789012:role/final",
            "externalID": "tenant-42",
            "sessionTags": [{"key": "team", "value": "payments"}],
            "transitiveTagKeys": ["team"]}}}
    });
    // The default store of the ExternalSecret does not exist: the entry's sourceRef wins.
    let es = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "app"},
        "spec": {"secretStoreRef": {"name": "missing"}, "data": [{"secretKey": "password",
            "remoteRef": {"key": remote}, "sourceRef": {"storeRef": {"name": "chained", "kind": "SecretStore"}}}]}
    });
    apply_pair(&client, ns.name(), chained, es).await;
    secret_value(&client, ns.name(), "password", "chained-value").await;
    let text = std::fs::read_to_string(log).unwrap();
    let lines = exchanges_for(&text, ns.name());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("role=arn:aws:iam::123456789012:role/final"),
        "the last role is used: {}",
        lines[0]
    );
}
