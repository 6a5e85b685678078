//! Leader election with two `lockstep run` processes against the local control plane: only the
//! leader writes; killing it hands over within the Lease duration; SIGTERM releases the Lease.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ops;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use lockstep::api::external_secret::ExternalSecret;
use ops::{Lockstep, sample};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(6);

async fn leading(lockstep: &Lockstep) -> Option<bool> {
    let (metrics, _) = lockstep.addresses().await;
    let text = ops::get(&metrics, "/metrics").await?.1;
    sample(&text, "lockstep_leader").map(|v| v == 1.0)
}

#[tokio::test]
async fn one_leader_writes_and_a_standby_takes_over() {
    let client = common::client().await;
    let class = common::unique("leader");
    let ns = ops::namespace_with_store(&client, "leader", &class).await;
    let n = ns.name();
    let (first, second) = (common::canary("leader-1"), common::canary("leader-2"));
    let key = common::unique("leader/password");
    ops::put(&key, &first).await;
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), n);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), n);
    let leases: Api<Lease> = Api::namespaced(client.clone(), n);
    let args = ["--leader-election-lease-duration=6s"];

    let mut a = Lockstep::start(n, &class, &args, &[]);
    common::eventually("the first lockstep to lead", common::WAIT, || async {
        leading(&a).await.filter(|l| *l)
    })
    .await;
    let b = Lockstep::start(n, &class, &args, &[]);
    // Standing by: ready (or a rolling update would wait for it forever), and not leading.
    let (_, b_health) = b.addresses().await;
    common::eventually("the second lockstep to stand by", common::WAIT, || async {
        let ready = ops::get(&b_health, "/readyz").await?.0 == 200;
        let log = std::fs::read_to_string(&b.log).ok()?;
        (ready && log.contains("standing by") && leading(&b).await == Some(false)).then_some(())
    })
    .await;

    common::apply(
        &es_api,
        common::external_secret(
            "app",
            json!({"data": common::data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    common::wait_for_data(&secrets, "app", &[("password", &first)]).await;
    // Only the leader reconciled.
    let series = format!("externalsecret_sync_calls_total{{name=\"app\",namespace=\"{n}\"}}");
    assert!(sample(&a.metrics().await, &series).unwrap_or(0.0) >= 1.0);
    assert_eq!(
        sample(&b.metrics().await, &series),
        None,
        "the standby reconciled"
    );
    assert_eq!(leading(&b).await, Some(false));

    // The leader dies without releasing the Lease: the standby takes over once it expires.
    a.signal("-KILL");
    let killed = Instant::now();
    a.exited(Duration::from_secs(30)).await;
    common::eventually("the standby to take over", common::WAIT, || async {
        leading(&b).await.filter(|l| *l)
    })
    .await;
    let handoff = killed.elapsed();
    eprintln!("leader hand-off after SIGKILL took {handoff:?} (Lease duration {LEASE:?})");
    // Within the Lease duration plus the standby's polling and a loaded machine's slack.
    assert!(
        handoff < LEASE + Duration::from_secs(20),
        "hand-off took {handoff:?}"
    );

    // The new leader writes.
    ops::put(&key, &second).await;
    let mut es = common::external_secret(
        "app",
        json!({"data": common::data(&[("password", json!({"key": key}))])}),
    );
    es["metadata"]["annotations"] = json!({"force-sync": "1"});
    common::apply(&es_api, es).await;
    common::wait_for_data(&secrets, "app", &[("password", &second)]).await;
    assert!(sample(&b.metrics().await, &series).unwrap_or(0.0) >= 1.0);

    // SIGTERM: in-flight work finishes, the Lease is released at once, and lockstep exits 0.
    let mut b = b;
    b.signal("-TERM");
    assert_eq!(b.exited(Duration::from_secs(30)).await, Some(0));
    let lease = leases.get("lockstep-controller").await.unwrap();
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert!(holder.is_empty(), "the Lease is still held by {holder:?}");
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(log.contains("released the leader Lease"), "{log}");
    common::assert_no_value_leaked(
        &client,
        n,
        &[a.log.as_path(), b.log.as_path()],
        &[&first, &second],
    )
    .await;
}

/// A copy of the environment's kubeconfig that reaches the API server through `forwarder`.
fn kubeconfig_through(forwarder: &common::Forwarder) -> String {
    let text = std::fs::read_to_string(common::env("KUBECONFIG")).unwrap();
    let re = regex::Regex::new(r"server: https://\S+").unwrap();
    let addr = forwarder.url.trim_start_matches("http://");
    let text = re.replace(&text, format!("server: https://{addr}").as_str());
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kubeconfig-{}", common::unique("forwarded")));
    std::fs::write(&path, text.as_bytes()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_unreachable_api_server_is_retried_then_the_leader_stops() {
    let client = common::client().await;
    let ns = common::TestNamespace::new(&client, "leader-outage").await;
    let class = common::unique("outage");
    let server = std::fs::read_to_string(common::env("KUBECONFIG")).unwrap();
    let server = regex::Regex::new(r"server: https://(\S+)")
        .unwrap()
        .captures(&server)
        .unwrap()[1]
        .to_owned();
    let forwarder = common::Forwarder::start(&server).await;
    let kubeconfig = kubeconfig_through(&forwarder);
    // A 20s Lease: renewed every ~13s, given up when not confirmed for ~13s.
    let mut lockstep = Lockstep::start(
        ns.name(),
        &class,
        &["--leader-election-lease-duration=20s"],
        &[("KUBECONFIG", &kubeconfig)],
    );
    common::eventually("lockstep to lead", common::WAIT, || async {
        leading(&lockstep).await.filter(|l| *l)
    })
    .await;

    // A short outage is retried: still the leader, still running.
    forwarder.down();
    tokio::time::sleep(Duration::from_secs(2)).await;
    forwarder.up().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(leading(&lockstep).await, Some(true));

    // A long one: the leader stops rather than write beside a leader elected meanwhile.
    forwarder.down();
    let code = lockstep.exited(Duration::from_secs(90)).await;
    assert_ne!(code, Some(0), "a leader that lost its Lease must fail");
    let log = std::fs::read_to_string(&lockstep.log).unwrap();
    assert!(log.contains("lost the leader Lease"), "{log}");
}

#[tokio::test]
async fn sigterm_hands_over_without_waiting_for_the_lease_to_expire() {
    let client = common::client().await;
    let ns = common::TestNamespace::new(&client, "leader-term").await;
    let class = common::unique("term");
    // A long Lease: a hand-off well within it can only come from the release.
    let long = Duration::from_secs(60);
    let args = ["--leader-election-lease-duration=60s"];
    let mut a = Lockstep::start(ns.name(), &class, &args, &[]);
    common::eventually("the first lockstep to lead", common::WAIT, || async {
        leading(&a).await.filter(|l| *l)
    })
    .await;
    let b = Lockstep::start(ns.name(), &class, &args, &[]);
    common::eventually("the second lockstep to stand by", common::WAIT, || async {
        let log = std::fs::read_to_string(&b.log).ok()?;
        (log.contains("standing by") && leading(&b).await == Some(false)).then_some(())
    })
    .await;
    a.signal("-TERM");
    let stopped = Instant::now();
    assert_eq!(a.exited(Duration::from_secs(30)).await, Some(0));
    common::eventually("the standby to take over", common::WAIT, || async {
        leading(&b).await.filter(|l| *l)
    })
    .await;
    let handoff = stopped.elapsed();
    eprintln!("leader hand-off after SIGTERM took {handoff:?} (Lease duration {long:?})");
    assert!(
        handoff < long / 2,
        "the standby waited for the Lease to expire: {handoff:?}"
    );
}
