//! Per-tenant identity and request economics: each tenant's ExternalSecrets use credentials
//! obtained for that tenant's ServiceAccount and role, exchanged once, not on every reconcile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    TestNamespace, apply, aws_store, client, data, external_secret, lockstep, put_remote,
    secrets_manager, service_account, unique, wait_for_data,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use lockstep::api::external_secret::ExternalSecret;
use lockstep::api::secret_store::SecretStore;
use serde_json::{Value, json};

/// Applies a store and an ExternalSecret `app` into `namespace`.
async fn apply_pair(client: &Client, namespace: &str, store: Value, es: Value) {
    apply(
        &Api::<SecretStore>::namespaced(client.clone(), namespace),
        store,
    )
    .await;
    apply(
        &Api::<ExternalSecret>::namespaced(client.clone(), namespace),
        es,
    )
    .await;
}

/// A namespace whose ServiceAccount `app` carries `role`, with a store using it and an
/// ExternalSecret refreshing every second.
async fn tenant_with_es(client: &Client, role: &str, remote: &str) -> TestNamespace {
    let ns = TestNamespace::new(client, "tenant").await;
    service_account(client, ns.name(), "app", Some(role)).await;
    let store = aws_store(
        "aws",
        json!({"jwt": {"serviceAccountRef": {"name": "app"}}}),
    );
    let spec =
        json!({"refreshInterval": "1s", "data": data(&[("password", json!({"key": remote}))])});
    apply_pair(client, ns.name(), store, external_secret("app", spec)).await;
    ns
}

/// Polls the ExternalSecret every 200 ms and counts distinct refresh times.
async fn wait_for_refreshes(client: &Client, namespace: &str, n: usize) {
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

/// The credential exchanges lockstep logged for ExternalSecrets and stores of `namespace`.
fn exchanges_for<'a>(log: &'a str, namespace: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| {
            l.contains("exchanged AWS credentials")
                && l.contains(&format!("for_namespace={namespace}"))
        })
        .collect()
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
        wait_for_refreshes(&client, ns.name(), 5).await;
    }

    let text = std::fs::read_to_string(log).unwrap();
    for (ns, role) in [(&a, "role/tenant-a"), (&b, "role/tenant-b")] {
        let exchanges = exchanges_for(&text, ns.name());
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

#[tokio::test]
async fn a_store_without_auth_uses_the_operators_own_credentials_with_a_prefix() {
    let client = client().await;
    let log = lockstep();
    let sm = secrets_manager().await;
    let remote = unique("default-chain/password");
    put_remote(&sm, &format!("team-x/{remote}"), "default-chain-value").await;
    let ns = TestNamespace::new(&client, "nochain").await;
    let mut store = aws_store("aws", Value::Null);
    store["spec"]["provider"]["aws"]["prefix"] = json!("team-x/");
    let spec = json!({"data": data(&[("password", json!({"key": remote}))])});
    apply_pair(&client, ns.name(), store, external_secret("app", spec)).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    wait_for_data(&secrets, "app", &[("password", "default-chain-value")]).await;

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
    let mut chained = aws_store("chained", Value::Null);
    let aws = &mut chained["spec"]["provider"]["aws"];
    aws["additionalRoles"] = json!(["arn:aws:iam::123456789012:role/hop-1"]);
    aws["role"] = json!("arn:aws:iam::123456789012:role/final");
    aws["externalID"] = json!("tenant-42");
    aws["sessionTags"] = json!([{"key": "team", "value": "payments"}]);
    aws["transitiveTagKeys"] = json!(["team"]);
    // The ExternalSecret's default store does not exist: the entry's sourceRef wins.
    let spec = json!({
        "secretStoreRef": {"name": "missing"},
        "data": [{"secretKey": "password", "remoteRef": {"key": remote},
            "sourceRef": {"storeRef": {"name": "chained", "kind": "SecretStore"}}}],
    });
    apply_pair(&client, ns.name(), chained, external_secret("app", spec)).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    wait_for_data(&secrets, "app", &[("password", "chained-value")]).await;

    let text = std::fs::read_to_string(log).unwrap();
    let lines = exchanges_for(&text, ns.name());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("role=arn:aws:iam::123456789012:role/final"),
        "the last role is used: {}",
        lines[0]
    );
}
