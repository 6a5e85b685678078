//! Shared by the integration tests: a client for the local control plane, and a namespace per test.
//!
//! The environment comes from `make env-up` (or `make test`, which starts its own): a test that
//! does not find it fails with the command that starts it, it never passes by skipping.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

const NO_ENV: &str = "no test environment: run `make env-up` and `. target/env/env.sh` first (or run everything with `make test`)";

/// Reads a variable that `target/env/env.sh` exports, or fails saying how to get it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set. {NO_ENV}"))
}

/// An admin client for the local control plane.
pub async fn client() -> Client {
    env("KUBECONFIG");
    Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("cannot reach the control plane: {e}. {NO_ENV}"))
}

/// A client for a restricted user, authenticated by a client certificate minted by the cluster's
/// CA: RBAC alone decides what it may do.
pub async fn client_as_user(user: &str, groups: &[&str]) -> Client {
    let out = std::env::temp_dir().join(format!("kubeconfig-{}", unique(user)));
    let mut cmd = std::process::Command::new(env("LOCKSTEP_TEST_CLUSTER_BIN"));
    cmd.args([
        "kubeconfig",
        "--dir",
        &env("LOCKSTEP_TEST_CLUSTER_DIR"),
        "--user",
        user,
        "--out",
    ])
    .arg(&out);
    for g in groups {
        cmd.args(["--group", g]);
    }
    let status = cmd.status().expect("running the cluster helper");
    assert!(status.success(), "minting a kubeconfig for {user} failed");
    let kubeconfig =
        kube::config::Kubeconfig::read_from(&out).expect("reading the minted kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("loading the minted kubeconfig");
    Client::try_from(config).expect("building a client")
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:x}{:x}{n}",
        std::process::id() % 4096,
        nanos % 65536
    )
}

/// One namespace per test, so tests run in parallel without seeing each other.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = unique(prefix);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        Self { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
