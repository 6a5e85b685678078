//! The audit log (issue 5) against the real control plane and moto, through a `lockstep run` of
//! each test's own (scoped to the test's namespace, with a store of its own controller class):
//! one record per operation with the right fields, no value in any record, `audit verify`
//! catching tampering, an HTTP receiver that goes away and comes back (also across a restart of
//! lockstep) receiving every record, and a read-only file refused at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    Forwarder, TestNamespace, WAIT, apply, aws_store, canary, client, data, eventually,
    external_secret, put_remote, secrets_manager, service_account, unique, wait_for_data,
    wait_for_reason,
};
use hmac::{KeyInit, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lockstep::api::external_secret::ExternalSecret;
use lockstep::api::secret_store::SecretStore;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Free ports for the metrics and health endpoints, and no leader election: each test's lockstep
/// runs beside the others and reconciles its namespace on its own.
const OWN_PORTS_NO_ELECTION: [&str; 3] = [
    "--metrics-addr=127.0.0.1:0",
    "--health-addr=127.0.0.1:0",
    "--leader-elect=false",
];

/// A `lockstep run` of the test's own, with audit flags; killed (as in a crash) when dropped.
struct Audited {
    log: PathBuf,
    child: std::process::Child,
}

impl Audited {
    fn start(namespace: &str, class: &str, audit: &[String], tag: &str) -> Self {
        common::env("KUBECONFIG");
        let log = tmp().join(format!("lockstep-{namespace}-{tag}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"))
            .args(["run", "--namespace", namespace, "--controller-class", class])
            .args(OWN_PORTS_NO_ELECTION)
            .args(audit)
            // The audit key lives in the test's namespace, not in the shared `default`.
            .env("LOCKSTEP_NAMESPACE_SELF", namespace)
            .env("RUST_LOG", "lockstep=debug,info")
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("starting lockstep");
        Self { log, child }
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tmp() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("audit"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON record"))
        .collect()
}

fn about<'a>(records: &'a [Value], es: &str, verb: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["verb"] == verb && r["objectRef"]["name"] == es)
        .collect()
}

/// Waits until the file holds exactly `n` records about ExternalSecret `es` with `verb`, and
/// a little longer, to be sure no second one follows.
async fn exactly(path: &Path, es: &str, verb: &str, n: usize) -> Value {
    let found = eventually(
        &format!("{n} {verb} record(s) about {es} in {}", path.display()),
        WAIT,
        || async {
            let all = records(path);
            let hits = about(&all, es, verb);
            (hits.len() >= n).then(|| hits.last().map(|v| (*v).clone()))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = records(path);
    let hits = about(&all, es, verb);
    assert_eq!(hits.len(), n, "{verb} records about {es}: {hits:#?}");
    found.unwrap()
}

/// A namespace with an IRSA ServiceAccount and a SecretStore `aws` of controller class `class`.
async fn setup(client: &kube::Client, prefix: &str, class: &str) -> TestNamespace {
    let ns = TestNamespace::new(client, prefix).await;
    let role = format!("arn:aws:iam::123456789012:role/{}", ns.name());
    service_account(client, ns.name(), "tenant", Some(&role)).await;
    let mut store = aws_store(
        "aws",
        json!({"jwt": {"serviceAccountRef": {"name": "tenant"}}}),
    );
    store["spec"]["controller"] = json!(class);
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    apply(&stores, store).await;
    ns
}

fn verify(path: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn each_operation_is_recorded_once_without_any_value() {
    let client = client().await;
    let class = unique("audit");
    let ns = setup(&client, "audit-ops", &class).await;
    let dir = tmp();
    let file = dir.join("audit.log");
    let lockstep = Audited::start(
        ns.name(),
        &class,
        &[format!("--audit-log=file:{}", file.display())],
        "ops",
    );
    let (es_api, secrets): (Api<ExternalSecret>, Api<Secret>) = (
        Api::namespaced(client.clone(), ns.name()),
        Api::namespaced(client.clone(), ns.name()),
    );
    let sm = secrets_manager().await;
    let (user, password, edited) = (canary("user"), canary("pw"), canary("edited"));
    let key = unique("audit/db");
    put_remote(
        &sm,
        &key,
        &json!({"user": user, "password": password}).to_string(),
    )
    .await;

    // A create: one exchange (the store's first use), one read, one create.
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[("password", json!({"key": key, "property": "password"}))])}),
        ),
    )
    .await;
    let created = wait_for_data(&secrets, "app", &[("password", &password)]).await;
    wait_for_reason(&es_api, "app", "SecretSynced").await;
    let create = exactly(&file, "app", "create", 1).await;
    let es = es_api.get("app").await.unwrap();
    assert_eq!(create["apiVersion"], "audit.lockstep.dev/v1");
    assert_eq!(create["kind"], "Event");
    assert_eq!(create["stage"], "ResponseComplete");
    assert_eq!(create["trigger"], "spec-change");
    assert_eq!(create["objectRef"]["namespace"], ns.name());
    assert_eq!(create["objectRef"]["uid"], es.uid().unwrap());
    assert_eq!(create["objectRef"]["generation"], 1);
    assert_eq!(create["target"]["name"], "app");
    assert_eq!(create["target"]["uid"], created.uid().unwrap());
    assert_eq!(
        create["target"]["resourceVersion"],
        created.resource_version().unwrap()
    );
    assert_eq!(create["target"]["keysWritten"], json!(["password"]));
    assert_eq!(create["responseStatus"]["status"], "Success");
    assert!(
        create["user"]["username"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && u != "unknown"),
        "lockstep's own identity: {create}"
    );

    // The fingerprint is HMAC-SHA256 under the key lockstep created in its namespace.
    let key_secret = secrets.get("lockstep-audit-key").await.unwrap();
    let hmac_key = key_secret.data.unwrap()["key"].0.clone();
    assert_eq!(hmac_key.len(), 32);
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&hmac_key).unwrap();
    mac.update(password.as_bytes());
    let expected = format!(
        "hmac-sha256:{}",
        base16ct::lower::encode_string(&mac.finalize().into_bytes())
    );
    assert_eq!(create["fingerprints"]["password"], expected);

    let read = exactly(&file, "app", "get", 1).await;
    assert_eq!(read["remote"]["key"], key.as_str());
    assert_eq!(read["remote"]["versionStages"], json!(["AWSCURRENT"]));
    // The VersionId AWS returned for the stage read, so the record joins CloudTrail's.
    let version_id = sm
        .get_secret_value()
        .secret_id(&key)
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    assert_eq!(read["remote"]["versionId"], version_id.as_str());
    assert_eq!(read["store"]["kind"], "SecretStore");
    assert_eq!(read["store"]["name"], "aws");
    assert_eq!(read["store"]["provider"], "aws");
    assert_eq!(read["store"]["region"], "us-east-1");
    assert_eq!(
        read["tenant"]["serviceAccount"],
        format!("{}/tenant", ns.name())
    );
    assert_eq!(
        read["tenant"]["roleSessionName"],
        format!("lockstep@{}.tenant", ns.name())
    );
    assert!(read["fingerprints"][&key].is_string(), "{read}");

    // Exactly one credential exchange for the store, whoever used it first.
    let all = records(&file);
    let exchanges: Vec<_> = all.iter().filter(|r| r["verb"] == "exchange").collect();
    assert_eq!(exchanges.len(), 1, "{exchanges:#?}");
    let exchange = exchanges[0];
    assert_eq!(
        exchange["remote"]["calls"],
        json!(["TokenRequest", "AssumeRoleWithWebIdentity"])
    );
    assert_eq!(
        exchange["tenant"]["roleArn"],
        format!("arn:aws:iam::123456789012:role/{}", ns.name())
    );
    assert_eq!(exchange["tenant"]["credentials"], "web-identity");

    // A drift correction: the Secret edited by hand is restored, recorded as an update.
    secrets
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": edited}})),
        )
        .await
        .unwrap();
    let restored = wait_for_data(&secrets, "app", &[("password", &password)]).await;
    let drift = exactly(&file, "app", "update", 1).await;
    assert_eq!(drift["trigger"], "drift");
    assert_eq!(
        drift["target"]["resourceVersion"],
        restored.resource_version().unwrap()
    );
    exactly(&file, "app", "get", 2).await;

    // A manual refresh (ESO's force-sync annotation): one read, and one update (the
    // ExternalSecret's annotations are copied onto the Secret, as ESO does).
    es_api
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1"}}})),
        )
        .await
        .unwrap();
    let forced = exactly(&file, "app", "get", 3).await;
    assert_eq!(forced["trigger"], "force-sync");
    let update = exactly(&file, "app", "update", 2).await;
    assert_eq!(update["trigger"], "force-sync");

    // A guard refusal: Owner never takes over a Secret it did not create.
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("foreign".into()),
                    ..Default::default()
                },
                string_data: Some(BTreeMap::from([("x".to_string(), "y".to_string())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut taker = external_secret(
        "taker",
        json!({"data": data(&[("password", json!({"key": key, "property": "password"}))])}),
    );
    taker["spec"]["target"] = json!({"name": "foreign"});
    apply(&es_api, taker).await;
    let refusal = exactly(&file, "taker", "refuse", 1).await;
    assert_eq!(refusal["responseStatus"]["status"], "Failure");
    assert_eq!(refusal["responseStatus"]["reason"], "NotOurs");
    assert_eq!(refusal["target"]["name"], "foreign");
    assert!(about(&records(&file), "taker", "create").is_empty());

    // A delete: deletionPolicy Delete, and the remote secret is gone.
    let gone_key = unique("audit/gone");
    put_remote(&sm, &gone_key, &canary("gone")).await;
    let mut deleting = external_secret(
        "deleting",
        json!({"refreshInterval": "2s", "data": data(&[("v", json!({"key": gone_key}))])}),
    );
    deleting["spec"]["target"] = json!({"deletionPolicy": "Delete"});
    apply(&es_api, deleting).await;
    exactly(&file, "deleting", "create", 1).await;
    common::delete_remote(&sm, &gone_key).await;
    let delete = exactly(&file, "deleting", "delete", 1).await;
    assert_eq!(delete["target"]["keysRemoved"], json!(["v"]));
    eventually("the Secret to be deleted", WAIT, || async {
        secrets
            .get_opt("deleting")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    // No value in any record (nor in the log).
    let text = std::fs::read_to_string(&file).unwrap();
    let log = std::fs::read_to_string(&lockstep.log).unwrap();
    for value in [&user, &password, &edited] {
        assert!(
            !text.contains(value.as_str()),
            "a value reached the audit log"
        );
        assert!(
            !log.contains(value.as_str()),
            "a value reached lockstep's log"
        );
    }

    // verify accepts the file, and names the first broken record of a tampered copy.
    let (ok, summary) = verify(&file);
    assert!(ok, "{summary}");
    assert!(summary.contains("intact"), "{summary}");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(lines.len() >= 6, "{}", lines.len());
    let tampered = |name: &str, lines: Vec<String>| {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        verify(&path)
    };
    let mut changed = lines.clone();
    changed[2] = changed[2].replacen("\"Success\"", "\"Failure\"", 1);
    assert_ne!(changed[2], lines[2]);
    let (ok, why) = tampered("changed.log", changed);
    assert!(
        !ok && why.contains("line 3:") && why.contains("changed"),
        "{why}"
    );
    let mut removed = lines.clone();
    removed.remove(3);
    let (ok, why) = tampered("removed.log", removed);
    assert!(
        !ok && why.contains("line 4:") && why.contains("removed"),
        "{why}"
    );
    let mut reordered = lines.clone();
    reordered.swap(1, 2);
    let (ok, why) = tampered("reordered.log", reordered);
    assert!(
        !ok && why.contains("line 2:") && why.contains("reordered"),
        "{why}"
    );
}

#[tokio::test]
async fn a_find_records_one_read_per_remote_secret() {
    let client = client().await;
    let class = unique("audit-find");
    let ns = setup(&client, "audit-find", &class).await;
    let dir = tmp();
    let file = dir.join("audit.log");
    let _lockstep = Audited::start(
        ns.name(),
        &class,
        &[format!("--audit-log=file:{}", file.display())],
        "find",
    );
    let sm = secrets_manager().await;
    let prefix = unique("audit-find");
    let (a, b) = (format!("{prefix}/a"), format!("{prefix}/b"));
    let (va, vb) = (canary("find-a"), canary("find-b"));
    put_remote(&sm, &a, &va).await;
    put_remote(&sm, &b, &vb).await;
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    apply(
        &es_api,
        external_secret(
            "found",
            json!({"dataFrom": [{"find": {"name": {"regexp": format!("^{prefix}/")}}}]}),
        ),
    )
    .await;
    wait_for_reason(&es_api, "found", "SecretSynced").await;
    exactly(&file, "found", "get", 2).await;
    let all = records(&file);
    let reads = about(&all, "found", "get");
    let keys: BTreeSet<&str> = reads
        .iter()
        .map(|r| r["remote"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, BTreeSet::from([a.as_str(), b.as_str()]));
    for r in &reads {
        assert_eq!(r["remote"]["mode"], "find");
        assert!(r["fingerprints"][r["remote"]["key"].as_str().unwrap()].is_string());
    }
    let create = exactly(&file, "found", "create", 1).await;
    assert_eq!(create["target"]["keysWritten"].as_array().unwrap().len(), 2);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&va) && !text.contains(&vb));
}

/// An HTTP receiver of the test's own: it keeps every JSON line POSTed to it.
#[derive(Clone, Default)]
struct Receiver {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lines = self.lines.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, lines.clone()));
            }
        });
        format!("http://{addr}")
    }

    fn ids(&self) -> BTreeSet<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["auditID"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

async fn serve(mut socket: tokio::net::TcpStream, lines: Arc<Mutex<Vec<String>>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + len {
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body = String::from_utf8_lossy(&buf[end..end + len]).to_string();
        buf.drain(..end + len);
        lines
            .lock()
            .unwrap()
            .extend(body.lines().map(str::to_owned));
        if socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

fn file_ids(path: &Path) -> BTreeSet<String> {
    records(path)
        .iter()
        .map(|r| r["auditID"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_http_receiver_gets_every_record_across_an_outage_and_a_restart() {
    let client = client().await;
    let class = unique("audit-http");
    let ns = setup(&client, "audit-http", &class).await;
    let receiver = Receiver::default();
    let target = receiver.start().await;
    // The receiver sits behind a forwarder the test takes down and brings back.
    let forwarder = Forwarder::start(&target).await;
    let dir = tmp();
    let file = dir.join("audit.log");
    let args = vec![
        format!("--audit-log=file:{}", file.display()),
        format!("--audit-log={}/ingest", forwarder.url),
        format!("--audit-spool-dir={}", dir.join("spool").display()),
    ];
    let (es_api, secrets): (Api<ExternalSecret>, Api<Secret>) = (
        Api::namespaced(client.clone(), ns.name()),
        Api::namespaced(client.clone(), ns.name()),
    );
    let sm = secrets_manager().await;
    let key = unique("audit/http");
    let values: Vec<String> = (1..=4).map(|i| canary(&format!("http-{i}"))).collect();
    put_remote(&sm, &key, &values[0]).await;

    let first = Audited::start(ns.name(), &class, &args, "first");
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "1s", "data": data(&[("v", json!({"key": key}))])}),
        ),
    )
    .await;
    wait_for_data(&secrets, "app", &[("v", &values[0])]).await;
    eventually("the first records to arrive", WAIT, || async {
        (!receiver.ids().is_empty()).then_some(())
    })
    .await;

    // The receiver goes away; lockstep keeps syncing.
    forwarder.down();
    put_remote(&sm, &key, &values[1]).await;
    wait_for_data(&secrets, "app", &[("v", &values[1])]).await;
    let during = receiver.ids().len();

    // lockstep dies (SIGKILL) with records in its spool, and starts again.
    drop(first);
    put_remote(&sm, &key, &values[2]).await;
    let second = Audited::start(ns.name(), &class, &args, "second");
    wait_for_data(&secrets, "app", &[("v", &values[2])]).await;
    assert!(
        receiver.ids().len() <= during + 1,
        "nothing arrives while the receiver is down"
    );

    // The receiver comes back: every record of both processes arrives.
    forwarder.up().await;
    put_remote(&sm, &key, &values[3]).await;
    wait_for_data(&secrets, "app", &[("v", &values[3])]).await;
    let written = file_ids(&file);
    assert!(written.len() >= 8, "{}", written.len());
    eventually(
        "every record written to the file to reach the receiver",
        WAIT,
        || async {
            let got = receiver.ids();
            written.is_subset(&got).then_some(())
        },
    )
    .await;
    // The stream the receiver got verifies, duplicates (at-least-once) dropped by auditID.
    let mut seen = BTreeSet::new();
    let deduped: Vec<String> = receiver
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            seen.insert(v["auditID"].as_str().unwrap().to_owned())
        })
        .cloned()
        .collect();
    let received = dir.join("received.log");
    std::fs::write(&received, deduped.join("\n") + "\n").unwrap();
    let (ok, summary) = verify(&received);
    assert!(ok, "{summary}");
    let (ok, summary) = verify(&file);
    assert!(
        ok,
        "the file's chain continues across the restart: {summary}"
    );
    assert!(
        records(&file)
            .iter()
            .any(|r| r["trigger"] == "startup" && r["verb"] == "get"),
        "the restarted lockstep's first read says why"
    );
    let text = std::fs::read_to_string(&received).unwrap();
    for v in &values {
        assert!(!text.contains(v.as_str()), "a value reached the receiver");
    }
    drop(second);
}

#[tokio::test]
async fn under_block_a_full_spool_stops_writes_until_the_receiver_recovers() {
    let client = client().await;
    let class = unique("audit-block");
    let ns = setup(&client, "audit-block", &class).await;
    let receiver = Receiver::default();
    let forwarder = Forwarder::start(&receiver.start().await).await;
    forwarder.down();
    let dir = tmp();
    // Writes stop once the undelivered records reach the limit less 64 KiB of headroom: a
    // few records here.
    let args = vec![
        format!("--audit-log={}/ingest", forwarder.url),
        format!("--audit-spool-dir={}", dir.join("spool").display()),
        "--audit-spool-max-bytes=70000".to_string(),
        "--audit-spool-full=block".to_string(),
    ];
    let (es_api, secrets): (Api<ExternalSecret>, Api<Secret>) = (
        Api::namespaced(client.clone(), ns.name()),
        Api::namespaced(client.clone(), ns.name()),
    );
    let sm = secrets_manager().await;
    let key = unique("audit/block");
    let (v1, v2) = (canary("block-1"), canary("block-2"));
    put_remote(&sm, &key, &v1).await;
    let _lockstep = Audited::start(ns.name(), &class, &args, "block");
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "1s", "data": data(&[("v", json!({"key": key}))])}),
        ),
    )
    .await;
    wait_for_data(&secrets, "app", &[("v", &v1)]).await;
    // Each refresh adds a read record; once the spool is at its limit, writes stop.
    let message = common::wait_for_message(&es_api, "app", "SecretSyncedError", "audit").await;
    assert!(message.contains("--audit-spool-full=block"), "{message}");
    put_remote(&sm, &key, &v2).await;
    // Several refreshes (every second) see the new value and may not write it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = secrets.get("app").await.unwrap();
    assert_eq!(
        held.data.unwrap()["v"].0,
        v1.as_bytes(),
        "no write while blocked"
    );
    assert!(receiver.ids().is_empty());

    forwarder.up().await;
    wait_for_data(&secrets, "app", &[("v", &v2)]).await;
    wait_for_reason(&es_api, "app", "SecretSynced").await;
    assert!(!receiver.ids().is_empty());
}

#[tokio::test]
async fn a_read_only_audit_file_fails_at_start_up() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "audit-ro").await;
    // /sys refuses new files, even to root.
    let path = "/sys/lockstep-audit.log";
    let mut lockstep = Audited::start(
        ns.name(),
        &unique("audit-ro"),
        &[format!("--audit-log=file:{path}")],
        "ro",
    );
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = lockstep.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lockstep did not exit"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(&lockstep.log).unwrap();
    assert!(log.contains(path), "{log}");
    assert!(log.contains("read-only"), "{log}");
    assert!(
        !log.contains("starting the controllers"),
        "nothing is synced without the audit log: {log}"
    );
}
