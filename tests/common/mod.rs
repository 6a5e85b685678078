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

/// One `lockstep run` per test binary, started on first use against the environment, logging at
/// debug level into a file the tests read (to prove no value ever reaches a log line). It stops
/// when the test binary exits, however it exits.
pub fn lockstep() -> &'static std::path::Path {
    type Running = (std::path::PathBuf, std::sync::Mutex<std::process::Child>);
    static LOCKSTEP: std::sync::OnceLock<Running> = std::sync::OnceLock::new();
    let (log, _watchdog) = LOCKSTEP.get_or_init(|| {
        env("KUBECONFIG");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let log = dir.join(format!("lockstep-{}.log", std::process::id()));
        // A shell watchdog: the test binary cannot run destructors for statics, so the child is
        // tied to this process's lifetime instead.
        let script = format!(
            "{bin} run >>{log} 2>&1 & child=$!; trap 'kill $child 2>/dev/null' EXIT; \
             while kill -0 {pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done",
            bin = env!("CARGO_BIN_EXE_lockstep"),
            log = log.display(),
            pid = std::process::id(),
        );
        let watchdog = std::process::Command::new("bash")
            .args(["-c", &script])
            .env("RUST_LOG", "lockstep=debug,info")
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("starting lockstep");
        (log, std::sync::Mutex::new(watchdog))
    });
    log
}

/// A Secrets Manager client configured only from the environment.
pub async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    env("AWS_ENDPOINT_URL");
    aws_sdk_secretsmanager::Client::new(&aws_config::load_from_env().await)
}

/// Creates (or overwrites) a secret in Secrets Manager.
pub async fn put_remote(sm: &aws_sdk_secretsmanager::Client, name: &str, value: &str) {
    let created = sm
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await;
    if created.is_err() {
        sm.put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .expect("putting a secret value");
    }
}
