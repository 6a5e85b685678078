//! For the operations tests (telemetry, leader election, chart): a `lockstep run` of the test's
//! own with free ports, found through its log, and a plain HTTP GET.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::common;

/// A lockstep scoped to `namespace`, handling stores of `class`; its `/metrics` and health
/// endpoints on free ports. Killed when dropped, or when the test binary dies.
#[derive(Debug)]
pub struct Lockstep {
    pub log: PathBuf,
    child: Child,
    watchdog: Child,
}

impl Lockstep {
    pub fn start(namespace: &str, class: &str, extra: &[&str], vars: &[(&str, &str)]) -> Self {
        let mut args = vec!["--namespace", namespace];
        args.extend(extra);
        Self::start_cluster_wide(class, &args, vars)
    }

    /// A lockstep handling every namespace (still only stores of `class`).
    pub fn start_cluster_wide(class: &str, extra: &[&str], vars: &[(&str, &str)]) -> Self {
        common::env("KUBECONFIG");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let log = dir.join(format!("{}.log", common::unique("lockstep-ops")));
        let file = std::fs::File::create(&log).expect("creating the log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockstep"));
        cmd.args(["run", "--controller-class", class])
            .args(["--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "lockstep=debug,info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting lockstep");
        let script = format!(
            "while kill -0 {test} 2>/dev/null && kill -0 {child} 2>/dev/null; do sleep 0.5; done; \
             kill -9 {child} 2>/dev/null",
            test = std::process::id(),
            child = child.id(),
        );
        let watchdog = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the watchdog");
        Self {
            log,
            child,
            watchdog,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `(metrics, health)` as `host:port`, from the log line lockstep writes once it listens.
    pub async fn addresses(&self) -> (String, String) {
        let re = regex::Regex::new(r"metrics=(\S+) health=(\S+)").unwrap();
        common::eventually(
            &format!("lockstep to listen (log: {})", self.log.display()),
            common::WAIT,
            || async {
                let log = std::fs::read_to_string(&self.log).ok()?;
                let c = re.captures(&log)?;
                Some((c[1].to_owned(), c[2].to_owned()))
            },
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        let (metrics, _) = self.addresses().await;
        get(&metrics, "/metrics").await.expect("GET /metrics").1
    }

    /// Sends a signal (`-TERM`, `-KILL`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits for the process to exit; its exit code.
    pub async fn exited(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for lockstep") {
                return status.code();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "lockstep did not exit within {timeout:?} (log: {})",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Lockstep {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.watchdog.wait();
    }
}

/// `GET path` over plain HTTP/1.1: `(status, body)`, or `None` when nothing listens.
pub async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    // Bodies are small; axum sends them with a Content-Length, not chunked.
    Some((status, body.to_owned()))
}

/// The value of the sample `series` (the full name with labels) in a Prometheus exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A namespace with an IRSA ServiceAccount `tenant` and a SecretStore `aws` for controller
/// `class` (so the shared lockstep leaves it to the test's own).
pub async fn namespace_with_store(
    client: &kube::Client,
    prefix: &str,
    class: &str,
) -> common::TestNamespace {
    let ns = common::TestNamespace::new(client, prefix).await;
    let role = format!("arn:aws:iam::123456789012:role/{}", ns.name());
    common::service_account(client, ns.name(), "tenant", Some(&role)).await;
    let mut store = common::aws_store(
        "aws",
        json!({"jwt": {"serviceAccountRef": {"name": "tenant"}}}),
    );
    store["spec"]["controller"] = json!(class);
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), ns.name());
    common::apply(&stores, store).await;
    ns
}

/// Creates (or replaces the value of) a remote secret.
pub async fn put(name: &str, value: &str) {
    common::put_remote(&common::secrets_manager().await, name, value).await;
}

pub async fn create<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(value).expect("a valid object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("creating an object");
}
