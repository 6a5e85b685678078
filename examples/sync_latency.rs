//! Measures, against a running environment and a running `lockstep run` (see
//! `scripts/bench-sync.sh`, which sets both up):
//! 1. the time from applying an ExternalSecret to its Secret existing, over N ExternalSecrets
//!    applied one after another (median, p90, max);
//! 2. the AWS calls per ExternalSecret per refresh, counted at moto with its request recorder,
//!    while every ExternalSecret is refreshed once (force-sync annotation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "shared/bench.rs"]
mod bench;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use lockstep::api::external_secret::ExternalSecret;
use lockstep::api::secret_store::SecretStore;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
    let client = Client::try_default().await?;
    let ns = format!("bench-{}", std::process::id());
    let params = PatchParams::apply("lockstep-bench");

    bench::tenant_namespace(&client, &ns).await?;
    let sm = aws_sdk_secretsmanager::Client::new(&aws_config::load_from_env().await);
    let remote = format!("bench/{ns}/password");
    sm.create_secret()
        .name(&remote)
        .secret_string("bench-value")
        .send()
        .await?;
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "aws"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
            "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}}}
    });
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), &ns);
    stores.patch("aws", &params, &Patch::Apply(&store)).await?;
    bench::poll(
        Duration::from_secs(60),
        Duration::from_millis(10),
        || async {
            let s = stores.get("aws").await.ok()?;
            s.status?
                .conditions
                .iter()
                .any(|c| c.status.to_string() == "True")
                .then_some(())
        },
    )
    .await;

    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("es-{i}");
        let es = json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                "data": [{"secretKey": "password", "remoteRef": {"key": remote}}]}
        });
        let started = Instant::now();
        ess.patch(&name, &params, &Patch::Apply(&es)).await?;
        bench::poll(
            Duration::from_secs(60),
            Duration::from_millis(10),
            || async { secrets.get_opt(&name).await.ok().flatten().map(|_| ()) },
        )
        .await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "apply -> Secret present, {n} ExternalSecrets one after another: median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(1.0))
    );

    // One refresh of every ExternalSecret, counted at moto.
    let http = reqwest_like(&endpoint);
    http("POST", "/moto-api/recorder/reset-recording");
    http("POST", "/moto-api/recorder/start-recording");
    let marker = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    for i in 0..n {
        let patch = json!({"metadata": {"annotations": {"bench/force-sync": marker}}});
        ess.patch(
            &format!("es-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    for i in 0..n {
        let name = format!("es-{i}");
        bench::poll(
            Duration::from_secs(120),
            Duration::from_millis(10),
            || async {
                let es = ess.get(&name).await.ok()?;
                let generation = es.metadata.generation;
                let version = lockstep::materialize::synced_resource_version(
                    generation,
                    es.metadata.labels.as_ref(),
                    es.metadata.annotations.as_ref(),
                );
                (es.status?.synced_resource_version.as_deref() == Some(version.as_str()))
                    .then_some(())
            },
        )
        .await;
    }
    http("POST", "/moto-api/recorder/stop-recording");
    let recording = http("GET", "/moto-api/recorder/download-recording");
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for line in recording.lines().filter(|l| !l.trim().is_empty()) {
        let record: serde_json::Value = serde_json::from_str(line)?;
        let target = record["headers"]["X-Amz-Target"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let body = record["body"].as_str().unwrap_or_default();
                body.split('&')
                    .find_map(|kv| kv.strip_prefix("Action="))
                    .unwrap_or("other")
                    .to_owned()
            });
        *calls.entry(target).or_default() += 1;
    }
    let total: usize = calls.values().sum();
    println!(
        "AWS calls during one refresh of {n} ExternalSecrets: {total} ({:.2} per ExternalSecret): {calls:?}",
        total as f64 / n as f64
    );
    Api::<Namespace>::all(client)
        .delete(&ns, &Default::default())
        .await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A tiny HTTP client for moto's control API, through curl (always present where the scripts run).
fn reqwest_like(endpoint: &str) -> impl Fn(&str, &str) -> String + '_ {
    move |method, path| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-X", method, &format!("{endpoint}{path}")])
            .output()
            .expect("running curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
