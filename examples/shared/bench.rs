//! What the benchmark examples share: a tenant namespace with an IRSA ServiceAccount, and polling.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

pub fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

/// Creates namespace `ns` with a ServiceAccount `app` annotated with an IAM role (IRSA style).
pub async fn tenant_namespace(client: &Client, ns: &str) -> anyhow::Result<()> {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: meta(ns),
                ..Default::default()
            },
        )
        .await?;
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            annotations: Some(BTreeMap::from([(
                "eks.amazonaws.com/role-arn".to_string(),
                "arn:aws:iam::123456789012:role/bench".to_string(),
            )])),
            ..meta("app")
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await?;
    Ok(())
}

/// Calls `check` every `every` until it returns `Some`; panics after `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?}");
        tokio::time::sleep(every).await;
    }
}
