//! `/metrics`, `/livez` and `/readyz` of a real `lockstep run` against the local control plane
//! and moto: ESO's metric names, types and labels, lockstep's own, and no value in any of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ops;

use kube::Api;
use kube::api::DeleteParams;
use lockstep::api::external_secret::ExternalSecret;
use ops::{Lockstep, get, sample};
use serde_json::json;

#[tokio::test]
async fn metrics_and_health_of_a_running_lockstep() {
    let client = common::client().await;
    let class = common::unique("telemetry");
    let ns = ops::namespace_with_store(&client, "telemetry", &class).await;
    let n = ns.name();
    let value = common::canary("telemetry");
    let key = common::unique("telemetry/password");
    ops::put(&key, &value).await;
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), n);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), n);
    common::apply(
        &es_api,
        common::external_secret(
            "app",
            json!({"data": common::data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    common::apply(
        &es_api,
        common::external_secret(
            "broken",
            // A staging label other than AWSCURRENT is read alone (GetSecretValue), never inside a
            // batch, so the failed call is counted as a failed call whatever else is read with it.
            json!({"data": common::data(&[("password", json!({"key": common::unique("telemetry/absent"), "version": "AWSPREVIOUS"}))])}),
        ),
    )
    .await;

    // Leader election on (the default): the Lease lives in the scoped namespace.
    let lockstep = Lockstep::start(n, &class, &[], &[]);
    let (metrics_addr, health) = lockstep.addresses().await;
    assert_eq!(get(&health, "/livez").await.unwrap().0, 200);
    common::eventually("/readyz to answer 200", common::WAIT, || async {
        (get(&health, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    common::wait_for_data(&secrets, "app", &[("password", &value)]).await;
    common::wait_for_reason(&es_api, "broken", "SecretSyncedError").await;

    let labels = |name: &str| format!("{{name=\"{name}\",namespace=\"{n}\"}}");
    let condition = |name: &str, status: &str| {
        format!(
            "externalsecret_status_condition{{name=\"{name}\",namespace=\"{n}\",condition=\"Ready\",status=\"{status}\"}}"
        )
    };
    let store = format!("SecretStore/{n}/aws");
    let text = common::eventually(
        "the metrics of both ExternalSecrets",
        common::WAIT,
        || async {
            let text = get(&metrics_addr, "/metrics").await?.1;
            let ok = sample(&text, &condition("app", "True")) == Some(1.0)
                && sample(&text, &condition("broken", "False")) == Some(1.0)
                && sample(&text, "lockstep_managed_secrets") == Some(1.0);
            ok.then_some(text)
        },
    )
    .await;

    // ESO's names, types and labels (eso-compatibility.md section 8).
    for (metric, kind) in [
        ("externalsecret_sync_calls_total", "counter"),
        ("externalsecret_sync_calls_error", "counter"),
        ("externalsecret_status_condition", "gauge"),
        ("externalsecret_reconcile_duration", "gauge"),
        ("externalsecret_provider_api_calls_count", "counter"),
        ("secretstore_status_condition", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {metric} {kind}\n")),
            "{metric} as a {kind}:\n{text}"
        );
    }
    assert!(
        sample(
            &text,
            &format!("externalsecret_sync_calls_total{}", labels("app"))
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        sample(
            &text,
            &format!("externalsecret_sync_calls_error{}", labels("broken"))
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(sample(&text, &condition("app", "False")), Some(0.0));
    assert!(
        sample(
            &text,
            &format!("externalsecret_reconcile_duration{}", labels("app"))
        )
        .unwrap()
            > 0.0
    );
    let reads = regex::Regex::new(
        r#"externalsecret_provider_api_calls_count\{provider="AWS/SecretsManager",call="(GetSecretValue|BatchGetSecretValue)",status="success"\} [1-9]"#,
    )
    .unwrap();
    assert!(
        reads.is_match(&text),
        "a successful read is counted:\n{text}"
    );
    assert!(
        text.contains(
            r#"externalsecret_provider_api_calls_count{provider="AWS/SecretsManager",call="GetSecretValue",status="error"}"#
        ),
        "the failed read is counted:\n{text}"
    );
    assert!(
        text.contains(
            r#"lockstep_provider_calls_total{provider="AWS/SecretsManager",operation="GetSecretValue",outcome="not_found"}"#
        ),
        "the failed read is counted by outcome:\n{text}"
    );
    assert!(
        text.contains(&format!(
            r#"lockstep_provider_read_errors_total{{store="{store}",class="not_found"}}"#
        )),
        "the failed read is counted per store:\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "secretstore_status_condition{{name=\"aws\",namespace=\"{n}\",condition=\"Ready\",status=\"True\"}}"
            )
        ),
        Some(1.0)
    );
    // lockstep's own.
    assert!(
        sample(
            &text,
            &format!("lockstep_aws_api_cost_usd_total{{store=\"{store}\"}}")
        )
        .unwrap()
            > 0.0
    );
    assert!(
        sample(
            &text,
            "lockstep_credential_exchanges_total{outcome=\"success\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(text.contains(
        "lockstep_reconcile_duration_seconds_bucket{kind=\"ExternalSecret\",le=\"0.005\"}"
    ));
    assert!(text.contains("lockstep_provider_calls_total{provider=\"AWS/SecretsManager\""));
    assert_eq!(sample(&text, "lockstep_leader"), Some(1.0));
    // The first sync took its turn in the first-sync lane; nothing waits once it is done.
    assert_eq!(
        sample(&text, "lockstep_workqueue_depth{lane=\"first-sync\"}"),
        Some(0.0)
    );
    // No label and no sample carries the value.
    assert!(!text.contains(&value), "a secret value in /metrics");

    // A deleted ExternalSecret's series go, as in ESO.
    es_api
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    common::eventually(
        "the series of a deleted ExternalSecret to go",
        common::WAIT,
        || async {
            let text = get(&metrics_addr, "/metrics").await?.1;
            (!text.contains("name=\"app\"")).then_some(())
        },
    )
    .await;
    common::assert_no_value_leaked(&client, n, &[lockstep.log.as_path()], &[&value]).await;
}
