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

/// Free ports for `/metrics` and the health endpoints, and no leader election: each test
/// binary's lockstep runs beside the others and must reconcile on its own.
pub const PRIVATE_PORTS_NO_ELECTION: [&str; 3] = [
    "--metrics-addr=127.0.0.1:0",
    "--health-addr=127.0.0.1:0",
    "--leader-elect=false",
];

/// One `lockstep run` per test binary, started on first use against the environment, logging at
/// debug level into a file the tests read (to prove no value ever reaches a log line). It stops
/// when the test binary exits, however it exits.
///
/// Test binaries run one after another against the same environment; the shared lockstep of the
/// previous binary is killed before this one starts, so that two never reconcile the same objects
/// (a test counting credential exchanges or reading "its" log would otherwise see the other's).
pub fn lockstep() -> &'static std::path::Path {
    type Running = (std::path::PathBuf, std::sync::Mutex<std::process::Child>);
    static LOCKSTEP: std::sync::OnceLock<Running> = std::sync::OnceLock::new();
    let (log, _watchdog) = LOCKSTEP.get_or_init(|| {
        env("KUBECONFIG");
        let pidfile = std::path::Path::new(&env("LOCKSTEP_TEST_CLUSTER_DIR"))
            .with_file_name("shared-lockstep.pid");
        stop_previous_lockstep(&pidfile);
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let log = dir.join(format!("lockstep-{}.log", std::process::id()));
        // A shell watchdog: the test binary cannot run destructors for statics, so the child is
        // tied to this process's lifetime instead. No graceful shutdown is needed once the tests
        // are over, and none is wanted: it would overlap with the next binary's lockstep.
        let script = format!(
            "{bin} run {ops} >>{log} 2>&1 & child=$!; echo $child >{pidfile}; \
             trap 'kill -9 $child 2>/dev/null' EXIT; \
             while kill -0 {pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.2; done",
            bin = env!("CARGO_BIN_EXE_lockstep"),
            ops = PRIVATE_PORTS_NO_ELECTION.join(" "),
            log = log.display(),
            pidfile = pidfile.display(),
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

/// Kills the shared lockstep a previous test binary left running, if its pid still names one,
/// and waits until it is gone.
fn stop_previous_lockstep(pidfile: &std::path::Path) {
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .map(|p| p.trim().to_owned())
    else {
        return;
    };
    let is_lockstep = |pid: &str| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("lockstep"))
            .unwrap_or(false)
    };
    if !is_lockstep(&pid) {
        return;
    }
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    for _ in 0..100 {
        if !is_lockstep(&pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

// ---------------------------------------------------------------------------------------------
// Shared by the ExternalSecret behaviour tests (sync_policies, sync_errors).

/// How long a test waits for lockstep to act: generous, the machine is shared.
pub const WAIT: Duration = Duration::from_secs(90);

/// Applies `value` (a whole object as JSON) with server-side apply, as `kubectl apply` would.
pub async fn apply<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = value["metadata"]["name"]
        .as_str()
        .expect("the manifest has a name")
        .to_owned();
    api.patch(
        &name,
        &kube::api::PatchParams::apply("lockstep-tests").force(),
        &kube::api::Patch::Apply(&value),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"))
}

/// Applies a manifest of any kind and version (v1beta1 included) into `namespace`, finding its
/// resource by discovery, as `kubectl apply --server-side` would.
pub async fn apply_manifest(client: &Client, namespace: &str, mut value: serde_json::Value) {
    value["metadata"]["namespace"] = serde_json::json!(namespace);
    let name = value["metadata"]["name"]
        .as_str()
        .expect("the manifest has a name")
        .to_owned();
    let api_version = value["apiVersion"]
        .as_str()
        .expect("the manifest has an apiVersion")
        .to_owned();
    let kind = value["kind"]
        .as_str()
        .expect("the manifest has a kind")
        .to_owned();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovering {api_version} {kind}: {e}"));
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &resource);
    api.patch(
        &name,
        &kube::api::PatchParams::apply("lockstep-tests").force(),
        &kube::api::Patch::Apply(&value),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
}

/// The ExternalSecrets and Secrets of `namespace`.
pub fn apis(
    client: &Client,
    namespace: &str,
) -> (
    Api<lockstep::api::external_secret::ExternalSecret>,
    Api<k8s_openapi::api::core::v1::Secret>,
) {
    (
        Api::namespaced(client.clone(), namespace),
        Api::namespaced(client.clone(), namespace),
    )
}

/// A remote secret with a fresh name, holding `value`.
pub async fn remote(prefix: &str, value: &str) -> String {
    let name = unique(prefix);
    put_remote(&secrets_manager().await, &name, value).await;
    name
}

/// A ServiceAccount, with an IRSA role annotation when `role` is set.
pub async fn service_account(client: &Client, namespace: &str, name: &str, role: Option<&str>) {
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), namespace);
    let annotations = role.map(|r| {
        std::collections::BTreeMap::from([("eks.amazonaws.com/role-arn".to_string(), r.into())])
    });
    let sa = k8s_openapi::api::core::v1::ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations,
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &sa)
        .await
        .unwrap_or_else(|e| panic!("creating ServiceAccount {namespace}/{name}: {e}"));
}

/// A SecretStore manifest for Secrets Manager with the given `auth` (JSON, may be `null`) and
/// extra spec fields.
pub fn aws_store(name: &str, auth: serde_json::Value) -> serde_json::Value {
    let mut aws = serde_json::json!({"service": "SecretsManager", "region": "us-east-1"});
    if !auth.is_null() {
        aws["auth"] = auth;
    }
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"aws": aws}},
    })
}

/// An ExternalSecret manifest: `spec` is merged over a store reference to `aws` and a 1h refresh.
pub fn external_secret(name: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut full = serde_json::json!({
        "refreshInterval": "1h",
        "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
    });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            full.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": full,
    })
}

/// `data` entries: `(secretKey, remoteRef)`.
pub fn data(entries: &[(&str, serde_json::Value)]) -> serde_json::Value {
    serde_json::Value::Array(
        entries
            .iter()
            .map(|(k, r)| serde_json::json!({"secretKey": k, "remoteRef": r}))
            .collect(),
    )
}

/// A namespace with an IRSA ServiceAccount `tenant` and a Ready SecretStore `aws` using it, with
/// the shared lockstep running.
pub async fn tenant(client: &Client, prefix: &str) -> TestNamespace {
    lockstep();
    let ns = TestNamespace::new(client, prefix).await;
    let role = format!("arn:aws:iam::123456789012:role/{}", ns.name());
    service_account(client, ns.name(), "tenant", Some(&role)).await;
    let auth = serde_json::json!({"jwt": {"serviceAccountRef": {"name": "tenant"}}});
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), ns.name());
    apply(&stores, aws_store("aws", auth)).await;
    ns
}

/// The Secret's data as text (lossy for binary values), if the Secret exists.
pub async fn secret_text(
    api: &Api<k8s_openapi::api::core::v1::Secret>,
    name: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let s = api.get_opt(name).await.expect("reading a Secret")?;
    Some(
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect(),
    )
}

/// Waits until the Secret holds exactly `expected`, and returns it.
pub async fn wait_for_data(
    api: &Api<k8s_openapi::api::core::v1::Secret>,
    name: &str,
    expected: &[(&str, &str)],
) -> k8s_openapi::api::core::v1::Secret {
    let expected: std::collections::BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut last = None;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let now = secret_text(api, name).await;
            if now.as_ref() == Some(&expected) {
                return;
            }
            last = now.map(|d| d.keys().cloned().collect::<Vec<_>>());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "timed out after {WAIT:?} waiting for Secret {name} to hold {:?}; it has keys {last:?}",
        expected.keys()
    );
    api.get(name).await.expect("reading a Secret")
}

/// The ExternalSecret's Ready condition as `(status, reason, message)`.
pub async fn ready(
    api: &Api<lockstep::api::external_secret::ExternalSecret>,
    name: &str,
) -> Option<(String, String, String)> {
    let es = api
        .get_opt(name)
        .await
        .expect("reading an ExternalSecret")?;
    let c = es.status?.conditions.into_iter().next()?;
    Some((
        c.status.to_string(),
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ))
}

/// Waits until the ExternalSecret's Ready reason is `reason`; returns its message.
/// Waits until store `name`'s Ready condition has `status` and a message containing `needle`;
/// returns the message.
pub async fn wait_for_store(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &str,
    needle: &str,
) -> String {
    let api: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), namespace);
    eventually(
        &format!("SecretStore {name} to be Ready={status} mentioning {needle:?}"),
        WAIT,
        || async {
            let c = api
                .get(name)
                .await
                .ok()?
                .status?
                .conditions
                .into_iter()
                .next()?;
            let message = c.message.unwrap_or_default();
            (c.status.to_string() == status && message.contains(needle)).then_some(message)
        },
    )
    .await
}

pub async fn wait_for_reason(
    api: &Api<lockstep::api::external_secret::ExternalSecret>,
    name: &str,
    reason: &str,
) -> String {
    eventually(
        &format!("ExternalSecret {name} to report {reason}"),
        WAIT,
        || async {
            let (_, r, message) = ready(api, name).await?;
            (r == reason).then_some(message)
        },
    )
    .await
}

/// Waits until the ExternalSecret reports `reason` with a message containing `needle`. Needed
/// where an earlier state had the same reason (a sync that succeeded, then one that failed).
pub async fn wait_for_message(
    api: &Api<lockstep::api::external_secret::ExternalSecret>,
    name: &str,
    reason: &str,
    needle: &str,
) -> String {
    eventually(
        &format!("ExternalSecret {name} to report {reason} mentioning {needle:?}"),
        WAIT,
        || async {
            let (_, r, message) = ready(api, name).await?;
            (r == reason && message.contains(needle)).then_some(message)
        },
    )
    .await
}

/// The events about the object `name` in `namespace`, as `(type, reason, message)`.
pub async fn events_about(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Vec<(String, String, String)> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), namespace);
    api.list(&Default::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
        .collect()
}

/// Waits for an event about `name` with this type and reason whose message contains `needle`.
pub async fn wait_for_event(
    client: &Client,
    namespace: &str,
    name: &str,
    (type_, reason): (&str, &str),
    needle: &str,
) -> String {
    eventually(
        &format!("a {type_} {reason} event about {name} mentioning {needle:?}"),
        WAIT,
        || async {
            events_about(client, namespace, name)
                .await
                .into_iter()
                .find(|(t, r, m)| t == type_ && r == reason && m.contains(needle))
                .map(|(_, _, m)| m)
        },
    )
    .await
}

/// Asserts that a Secret is exactly as it was: same data, same resourceVersion.
pub async fn assert_unchanged(
    api: &Api<k8s_openapi::api::core::v1::Secret>,
    before: &k8s_openapi::api::core::v1::Secret,
) {
    let name = before.metadata.name.clone().unwrap_or_default();
    let after = api
        .get_opt(&name)
        .await
        .expect("reading a Secret")
        .unwrap_or_else(|| panic!("Secret {name} was deleted"));
    assert_eq!(after.data, before.data, "Secret {name}: its data changed");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "Secret {name} was written"
    );
}

/// Asserts that the namespace holds no Secret named `name`.
pub async fn assert_absent(api: &Api<k8s_openapi::api::core::v1::Secret>, name: &str) {
    assert!(
        api.get_opt(name).await.expect("reading a Secret").is_none(),
        "Secret {name} was created"
    );
}

/// Asserts that none of `values` appears in the log files, in the namespace's events, or in the
/// status of its ExternalSecrets and stores.
pub async fn assert_no_value_leaked(
    client: &Client,
    namespace: &str,
    logs: &[&std::path::Path],
    values: &[&str],
) {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), namespace);
    let events = serde_json::to_string(&events.list(&Default::default()).await.unwrap().items)
        .expect("serializing events");
    let es: Api<lockstep::api::external_secret::ExternalSecret> =
        Api::namespaced(client.clone(), namespace);
    let statuses: Vec<_> = es
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.status)
        .collect();
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), namespace);
    let store_statuses: Vec<_> = stores
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.status)
        .collect();
    let status = serde_json::to_string(&(statuses, store_statuses)).expect("serializing status");
    let logs: Vec<(String, String)> = logs
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (p.display().to_string(), text)
        })
        .collect();
    assert!(
        logs.iter().any(|(_, l)| l.contains(namespace)),
        "the logs cover namespace {namespace}"
    );
    for value in values {
        assert!(!value.is_empty());
        for (path, log) in &logs {
            assert!(!log.contains(value), "a value reached the log {path}");
        }
        assert!(!events.contains(value), "a value reached an event");
        assert!(!status.contains(value), "a value reached a status");
    }
}

/// A value no other test uses, so finding it anywhere means it leaked from this test.
pub fn canary(what: &str) -> String {
    format!("{what}-canary-{}", unique("v"))
}

/// Deletes a remote secret at once (no recovery window), so reading it is ResourceNotFound.
pub async fn delete_remote(sm: &aws_sdk_secretsmanager::Client, name: &str) {
    sm.delete_secret()
        .secret_id(name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("deleting remote secret {name}: {e}"));
}

/// A TCP forwarder in front of an endpoint that a test can take down (connections refused,
/// open connections cut) and bring back up on the same address.
#[derive(Debug)]
pub struct Forwarder {
    pub url: String,
    addr: std::net::SocketAddr,
    target: String,
    up: tokio::sync::watch::Sender<bool>,
}

impl Forwarder {
    /// Starts forwarding to `target_url` (`http://host:port`).
    pub async fn start(target_url: &str) -> Self {
        let target = target_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the forwarder");
        let addr = listener.local_addr().expect("the forwarder's address");
        let (up, _) = tokio::sync::watch::channel(true);
        let forwarder = Self {
            url: format!("http://{addr}"),
            addr,
            target,
            up,
        };
        forwarder.serve(listener);
        forwarder
    }

    /// Refuses new connections and cuts the open ones.
    pub fn down(&self) {
        self.up.send_replace(false);
    }

    /// Accepts connections again, on the same address.
    pub async fn up(&self) {
        self.up.send_replace(true);
        let listener = eventually("the forwarder's port to bind again", WAIT, || async {
            tokio::net::TcpListener::bind(self.addr).await.ok()
        })
        .await;
        self.serve(listener);
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let mut up = self.up.subscribe();
        let conn_up = self.up.clone();
        let target = self.target.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    // Dropping the listener makes new connections refused.
                    _ = up.wait_for(|u| !*u) => return,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        let mut down = conn_up.subscribe();
                        let target = target.clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                _ = down.wait_for(|u| !*u) => {}
                            }
                        });
                    }
                }
            }
        });
    }
}

/// A `lockstep run` of the test's own, for a case that needs another environment (an AWS endpoint
/// that goes down): it handles only `namespace` and stores of `class`, logs at debug level into
/// its own file, and stops when the returned guard is dropped.
#[derive(Debug)]
pub struct PrivateLockstep {
    pub log: std::path::PathBuf,
    child: std::process::Child,
    watchdog: std::process::Child,
}

impl PrivateLockstep {
    pub fn start(namespace: &str, class: &str, vars: &[(&str, &str)]) -> Self {
        env("KUBECONFIG");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let log = dir.join(format!("lockstep-{namespace}.log"));
        let file = std::fs::File::create(&log).expect("creating the log file");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"));
        cmd.args(["run", "--namespace", namespace, "--controller-class", class])
            .args(PRIVATE_PORTS_NO_ELECTION)
            .env("RUST_LOG", "lockstep=debug,info")
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting a private lockstep");
        // If the test binary dies without unwinding, the watchdog stops lockstep.
        let script = format!(
            "while kill -0 {test} 2>/dev/null && kill -0 {child} 2>/dev/null; do sleep 0.5; done; \
             kill {child} 2>/dev/null",
            test = std::process::id(),
            child = child.id(),
        );
        let watchdog = std::process::Command::new("bash")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("starting the watchdog");
        Self {
            log,
            child,
            watchdog,
        }
    }
}

impl Drop for PrivateLockstep {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The watchdog ends by itself within half a second once lockstep is gone.
        let _ = self.watchdog.wait();
    }
}

/// A moto server of the test's own (the shared one must not enforce IAM, or every other test's
/// credentials would be refused). It stops when dropped, or when the test binary exits.
#[derive(Debug)]
pub struct PrivateMoto {
    pub url: String,
    child: std::process::Child,
}

impl PrivateMoto {
    pub fn start() -> Self {
        use std::io::BufRead;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = std::process::Command::new(root.join("target/venv/bin/python"))
            .arg(root.join("tests/aws/moto_server.py"))
            .args(["--watch-pid", &std::process::id().to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto: {e}. {NO_ENV}"));
        let stdout = child.stdout.take().expect("moto's stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = lines
            .find_map(|l| l.ok()?.strip_prefix("ready ").map(str::to_owned))
            .expect("moto did not report ready");
        Self { url, child }
    }

    /// Runs a Python snippet with boto3 (from moto's virtualenv) against this server; returns
    /// its standard output. `args` reach the snippet as `sys.argv[2:]`, after the server's URL.
    pub fn python(&self, snippet: &str, args: &[&str]) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new(root.join("target/venv/bin/python"))
            .args(["-c", snippet, &self.url])
            .args(args)
            .output()
            .expect("running python");
        assert!(
            out.status.success(),
            "the python snippet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
