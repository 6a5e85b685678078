//! The shared fetch layer against the local control plane and moto: coalesced and batched reads
//! give each ExternalSecret exactly its own data, a per-secret error fails only the
//! ExternalSecrets that asked for that secret, a throttled store slows down and recovers while
//! another keeps syncing, the first-sync lane overtakes a refresh wave, and kube-runtime never
//! runs two reconciles of one object at once. Correctness only: timings are measured in
//! BENCHMARKS.md, never asserted here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use lockstep::api::external_secret::ExternalSecret;
use serde_json::json;

/// The reads moto recorded whose body mentions `needle`, by call (`X-Amz-Target` suffix); the
/// test's own writes are left out.
fn moto_calls_mentioning(needle: &str) -> BTreeMap<String, usize> {
    let endpoint = env("AWS_ENDPOINT_URL");
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            &format!("{endpoint}/moto-api/recorder/download-recording"),
        ])
        .output()
        .expect("running curl");
    let mut calls = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        // moto records bodies base64-encoded.
        let raw = record["body"].as_str().unwrap_or_default();
        let body = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| raw.to_owned());
        let Some(target) = record["headers"]["X-Amz-Target"].as_str() else {
            continue;
        };
        let reads = [
            "GetSecretValue",
            "BatchGetSecretValue",
            "DescribeSecret",
            "ListSecrets",
        ];
        if body.contains(needle) && reads.iter().any(|r| target.ends_with(&format!(".{r}"))) {
            let call = target.rsplit('.').next().unwrap_or(target).to_owned();
            *calls.entry(call).or_default() += 1;
        }
    }
    calls
}

fn moto_recorder(action: &str) {
    let endpoint = env("AWS_ENDPOINT_URL");
    let status = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("{endpoint}/moto-api/recorder/{action}"),
        ])
        .status()
        .expect("running curl");
    assert!(status.success());
}

/// Applies `es` (names and specs) all at once.
async fn apply_all(api: &Api<ExternalSecret>, manifests: Vec<serde_json::Value>) {
    futures::future::join_all(manifests.into_iter().map(|m| apply(api, m))).await;
}

#[tokio::test]
async fn coalesced_and_batched_reads_give_each_external_secret_its_own_data() {
    let client = client().await;
    let ns = tenant(&client, "batched").await;
    let (ess, secrets) = apis(&client, ns.name());
    let sm = secrets_manager().await;
    let prefix = unique("batched");
    // 12 remote secrets, each read by several of 30 ExternalSecrets, and one that is missing.
    let values: Vec<String> = (0..12).map(|i| canary(&format!("batched-{i}"))).collect();
    for (i, v) in values.iter().enumerate() {
        put_remote(&sm, &format!("{prefix}/s{i}"), v).await;
    }
    let pair = |i: usize| (i % 12, (i * 5 + 3) % 12);
    let names: Vec<String> = (0..30).map(|i| format!("es-{i}")).collect();
    let mut manifests: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (a, b) = pair(i);
            external_secret(
                name,
                json!({"refreshInterval": "15s", "data": data(&[
                    ("a", json!({"key": format!("{prefix}/s{a}")})),
                    ("b", json!({"key": format!("{prefix}/s{b}")})),
                    // The same secret twice in one ExternalSecret is one read.
                    ("a-again", json!({"key": format!("{prefix}/s{a}")})),
                ])}),
            )
        })
        .collect();
    // Two ExternalSecrets that also read the missing secret: only they fail.
    for name in ["broken-1", "broken-2"] {
        manifests.push(external_secret(
            name,
            json!({"data": data(&[
                ("a", json!({"key": format!("{prefix}/s1")})),
                ("gone", json!({"key": format!("{prefix}/missing")})),
            ])}),
        ));
    }
    moto_recorder("reset-recording");
    moto_recorder("start-recording");
    apply_all(&ess, manifests).await;

    for (i, name) in names.iter().enumerate() {
        let (a, b) = pair(i);
        wait_for_data(
            &secrets,
            name,
            &[
                ("a", &values[a]),
                ("b", &values[b]),
                ("a-again", &values[a]),
            ],
        )
        .await;
    }
    for name in ["broken-1", "broken-2"] {
        let message = wait_for_reason(&ess, name, "SecretSyncedError").await;
        assert!(
            message.contains(&format!("{prefix}/missing")),
            "the error names the missing secret: {message}"
        );
        assert_absent(&secrets, name).await;
    }
    let first_sync = moto_calls_mentioning(&prefix);
    let first_total: usize = first_sync.values().sum();
    // 30 ExternalSecrets x 3 entries + 2 x 2 = 94 reads of 13 secrets. One call per read is what
    // a layer without coalescing or batching would make.
    assert!(
        first_sync.get("BatchGetSecretValue").copied().unwrap_or(0) > 0,
        "explicit keys are batched: {first_sync:?}"
    );
    assert!(
        first_total < 94 / 2,
        "far fewer calls than reads (94): {first_sync:?}"
    );

    // One periodic refresh of all of them (every 15s): again each gets its own data, in fewer
    // calls than ExternalSecrets.
    let new_values: Vec<String> = (0..12)
        .map(|i| canary(&format!("batched-new-{i}")))
        .collect();
    moto_recorder("reset-recording");
    for (i, v) in new_values.iter().enumerate() {
        put_remote(&sm, &format!("{prefix}/s{i}"), v).await;
    }
    for (i, name) in names.iter().enumerate() {
        let (a, b) = pair(i);
        wait_for_data(
            &secrets,
            name,
            &[
                ("a", &new_values[a]),
                ("b", &new_values[b]),
                ("a-again", &new_values[a]),
            ],
        )
        .await;
    }
    moto_recorder("stop-recording");
    let refresh = moto_calls_mentioning(&prefix);
    let refresh_total: usize = refresh.values().sum();
    assert!(
        refresh_total < names.len() / 2,
        "one refresh of {} ExternalSecrets reading 12 secrets: {refresh:?}",
        names.len()
    );
    println!("first sync: {first_sync:?}; one refresh: {refresh:?}");
    let all: Vec<&str> = values
        .iter()
        .chain(&new_values)
        .map(String::as_str)
        .collect();
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &all).await;
}

// ---------------------------------------------------------------------------------------------
// A throttling HTTP proxy in front of moto.

/// Forwards every request to moto, except Secrets Manager calls signed for `region` while
/// throttling is on: those are answered with ThrottlingException, as AWS answers them.
struct ThrottlingProxy {
    url: String,
    throttling: Arc<AtomicBool>,
    /// Secrets Manager calls seen, per region: (forwarded, throttled).
    seen: Arc<Mutex<HashMap<String, (usize, usize)>>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = http_body_util::Full<hyper::body::Bytes>;

/// What the proxy's connections share.
struct ProxyState {
    moto: String,
    region: &'static str,
    throttling: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    upstream: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Body,
    >,
}

impl ProxyState {
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Body>, BoxError> {
        use http_body_util::BodyExt;
        use hyper::body::Bytes;
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let is_sm = header("x-amz-target").starts_with("secretsmanager.");
        // SigV4: Credential=KEY/DATE/REGION/SERVICE/aws4_request
        let signed_region = header("authorization")
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split('/').nth(2))
            .unwrap_or_default()
            .to_owned();
        let throttle =
            is_sm && signed_region == self.region && self.throttling.load(Ordering::SeqCst);
        if is_sm {
            let mut seen = self.seen.lock().unwrap();
            let entry = seen.entry(signed_region).or_default();
            if throttle { entry.1 += 1 } else { entry.0 += 1 }
        }
        if throttle {
            return Ok(hyper::Response::builder()
                .status(400)
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amzn-errortype", "ThrottlingException")
                .body(Body::new(Bytes::from_static(
                    br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                )))?);
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut forward = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}{path}", self.moto));
        for (k, v) in &parts.headers {
            forward = forward.header(k, v);
        }
        let answer = self
            .upstream
            .request(forward.body(Body::new(body))?)
            .await?;
        let (parts, body) = answer.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(hyper::Response::from_parts(parts, Body::new(body)))
    }
}

impl ThrottlingProxy {
    async fn start(moto: &str, region: &'static str) -> Self {
        use hyper_util::rt::{TokioExecutor, TokioIo};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(ProxyState {
            moto: moto.trim_end_matches('/').to_owned(),
            region,
            throttling: Arc::default(),
            seen: Arc::default(),
            upstream: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build_http(),
        });
        let (throttling, seen) = (state.throttling.clone(), state.seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                let service =
                    hyper::service::service_fn(move |request| state.clone().handle(request));
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            throttling,
            seen,
        }
    }

    fn set(&self, on: bool) {
        self.throttling.store(on, Ordering::SeqCst);
    }

    fn seen(&self, region: &str) -> (usize, usize) {
        self.seen
            .lock()
            .unwrap()
            .get(region)
            .copied()
            .unwrap_or_default()
    }
}

/// The address a private lockstep serves `/metrics` on, from its log.
async fn metrics_url(log: &std::path::Path) -> String {
    eventually("lockstep to log its metrics address", WAIT, || async {
        let text = std::fs::read_to_string(log).ok()?;
        let at = text.find("metrics=")? + "metrics=".len();
        let addr: String = text[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        Some(format!("http://{addr}/metrics"))
    })
    .await
}

/// `lockstep_provider_budget_rate` of `store`, from a private lockstep's `/metrics`.
fn budget_rate(metrics: &str, store: &str) -> Option<f64> {
    let out = std::process::Command::new("curl")
        .args(["-s", metrics])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| {
            l.starts_with("lockstep_provider_budget_rate{") && l.contains(&format!("\"{store}\""))
        })?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn a_throttled_store_slows_down_and_recovers_while_another_keeps_syncing() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "throttled").await;
    let class = unique("throttled");
    let proxy = ThrottlingProxy::start(&env("AWS_ENDPOINT_URL"), "eu-west-1").await;
    let private = PrivateLockstep::start(
        ns.name(),
        &class,
        &[("AWS_ENDPOINT_URL", proxy.url.as_str())],
    );
    let metrics = metrics_url(&private.log).await;
    let (ess, secrets) = apis(&client, ns.name());
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), ns.name());
    for (name, region) in [("calm", "us-east-1"), ("busy", "eu-west-1")] {
        let mut store = aws_store(name, serde_json::Value::Null);
        store["spec"]["provider"]["aws"]["region"] = json!(region);
        store["spec"]["controller"] = json!(class);
        // One attempt per call: the SDK's own retries would only hide the throttling.
        store["spec"]["retrySettings"] = json!({"maxRetries": 1});
        apply(&stores, store).await;
    }
    let east = secrets_manager().await;
    let west = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws_config::load_from_env().await)
            .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
            .build(),
    );
    let key = unique("throttled/key");
    let (calm1, busy1) = (canary("calm-1"), canary("busy-1"));
    put_remote(&east, &key, &calm1).await;
    put_remote(&west, &key, &busy1).await;
    let es = |name: &str, store: &str| {
        let mut m = external_secret(
            name,
            json!({"refreshInterval": "2s", "data": data(&[("v", json!({"key": key}))])}),
        );
        m["spec"]["secretStoreRef"]["name"] = json!(store);
        m
    };
    apply(&ess, es("calm", "calm")).await;
    apply(&ess, es("busy", "busy")).await;
    wait_for_data(&secrets, "calm", &[("v", &calm1)]).await;
    wait_for_data(&secrets, "busy", &[("v", &busy1)]).await;
    let busy_store = format!("SecretStore/{}/busy", ns.name());
    let calm_store = format!("SecretStore/{}/calm", ns.name());
    let start_rate = budget_rate(&metrics, &busy_store).expect("the busy store's budget");

    // The busy store is throttled; the calm one keeps syncing new values meanwhile.
    proxy.set(true);
    let (calm2, busy2) = (canary("calm-2"), canary("busy-2"));
    put_remote(&east, &key, &calm2).await;
    put_remote(&west, &key, &busy2).await;
    let message = wait_for_message(&ess, "busy", "SecretSyncedError", "throttled").await;
    assert!(message.contains("throttled"), "{message}");
    wait_for_data(&secrets, "calm", &[("v", &calm2)]).await;
    // Each throttled call halves the budget: twice means the store kept being throttled, and
    // kept slowing down.
    let slowest = eventually(
        "the busy store's budget to fall to a quarter",
        WAIT,
        || async { budget_rate(&metrics, &busy_store).filter(|r| *r <= start_rate / 4.0) },
    )
    .await;
    let calm3 = canary("calm-3");
    put_remote(&east, &key, &calm3).await;
    wait_for_data(&secrets, "calm", &[("v", &calm3)]).await;
    assert!(
        budget_rate(&metrics, &calm_store).unwrap() >= start_rate,
        "the calm store's budget is untouched"
    );
    let busy_secret = secrets.get("busy").await.unwrap();
    assert_eq!(
        secret_text(&secrets, "busy").await.unwrap()["v"],
        busy1,
        "the throttled store's Secret keeps its last good value"
    );
    let (_, throttled) = proxy.seen("eu-west-1");
    assert!(throttled >= 2, "the proxy throttled the busy store");

    // Throttling ends: the busy store recovers, and its budget grows again.
    proxy.set(false);
    wait_for_data(&secrets, "busy", &[("v", &busy2)]).await;
    eventually("the busy store's budget to grow again", WAIT, || async {
        budget_rate(&metrics, &busy_store).filter(|r| *r > slowest)
    })
    .await;
    assert_ne!(
        secrets.get("busy").await.unwrap().resource_version(),
        busy_secret.resource_version()
    );
    println!(
        "busy store: budget {start_rate} -> {slowest} calls/s while throttled; proxy saw {:?} (forwarded, throttled)",
        proxy.seen("eu-west-1")
    );
    let values = [&calm1, &calm2, &calm3, &busy1, &busy2].map(String::as_str);
    assert_no_value_leaked(&client, ns.name(), &[&private.log], &values).await;
}

#[tokio::test]
async fn the_first_sync_lane_overtakes_a_refresh_wave() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lanes").await;
    let class = unique("lanes");
    let (ess, secrets) = apis(&client, ns.name());
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), ns.name());
    let mut store = aws_store("aws", serde_json::Value::Null);
    store["spec"]["controller"] = json!(class);
    apply(&stores, store).await;
    let value = canary("lanes");
    let key = remote("lanes/key", &value).await;
    // A small API budget (10 requests per second) makes a refresh wave of 60 last many seconds.
    let slow_api = [
        ("AWS_ENDPOINT_URL", env("AWS_ENDPOINT_URL")),
        ("LOCKSTEP_CLIENT_QPS", "10".to_string()),
        ("LOCKSTEP_CLIENT_BURST", "10".to_string()),
    ];
    let vars: Vec<(&str, &str)> = slow_api.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let names: Vec<String> = (0..60).map(|i| format!("wave-{i}")).collect();
    let first = PrivateLockstep::start(ns.name(), &class, &vars);
    apply_all(
        &ess,
        names
            .iter()
            .map(|n| {
                external_secret(
                    n,
                    json!({"refreshInterval": "10s", "data": data(&[("v", json!({"key": key}))])}),
                )
            })
            .collect(),
    )
    .await;
    for name in &names {
        wait_for_data(&secrets, name, &[("v", &value)]).await;
    }
    // lockstep stops; once every ExternalSecret is due, a new lockstep starts with all 60 due at
    // once (a refresh wave, as after a restart), and a new ExternalSecret arrives at the same time.
    drop(first);
    let stopped = k8s_openapi::jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_secs(13)).await;
    let _second = PrivateLockstep::start(ns.name(), &class, &vars);
    apply(
        &ess,
        external_secret(
            "newcomer",
            json!({"refreshInterval": "1h", "data": data(&[("v", json!({"key": key}))])}),
        ),
    )
    .await;
    wait_for_data(&secrets, "newcomer", &[("v", &value)]).await;
    let refreshed_before = ess
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|es| es.name_any().starts_with("wave-"))
        .filter(|es| {
            es.status
                .as_ref()
                .and_then(|s| s.refresh_time.as_ref())
                .is_some_and(|t| t.0 > stopped)
        })
        .count();
    assert!(
        refreshed_before < 40,
        "the new ExternalSecret synced before most of the refresh wave ({refreshed_before} of 60 refreshed first)"
    );
    // And the wave itself completes.
    for name in &names {
        eventually(&format!("{name} to be refreshed"), WAIT, || async {
            let es = ess.get(name).await.ok()?;
            es.status?
                .refresh_time
                .filter(|t| t.0 > stopped)
                .map(|_| ())
        })
        .await;
    }
    println!("the newcomer synced after {refreshed_before} of 60 due refreshes");
}

#[tokio::test]
async fn kube_runtime_never_runs_two_reconciles_of_one_object_at_once() {
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::{WatchStreamExt, watcher};

    // lockstep runs its ExternalSecrets through kube-runtime's Controller (for_stream, unbounded
    // concurrency by default); this drives the same machinery with slow reconciles and a storm
    // of changes to two objects.
    let client = client().await;
    let ns = TestNamespace::new(&client, "one-at-once").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    for name in ["a", "b"] {
        apply(
            &api,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"n": "0"}}),
        )
        .await;
    }
    #[derive(Default)]
    struct Seen {
        running: Mutex<HashMap<String, usize>>,
        most_per_object: AtomicUsize,
        most_overall: AtomicUsize,
        reconciles: AtomicUsize,
    }
    let seen = Arc::new(Seen::default());
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    let controller = Controller::for_stream(stream, reader)
        .run(
            |cm: Arc<ConfigMap>, seen: Arc<Seen>| async move {
                let name = cm.name_any();
                {
                    let mut running = seen.running.lock().unwrap();
                    *running.entry(name.clone()).or_default() += 1;
                    seen.most_per_object
                        .fetch_max(running[&name], Ordering::SeqCst);
                    seen.most_overall
                        .fetch_max(running.values().sum(), Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                *seen.running.lock().unwrap().get_mut(&name).unwrap() -= 1;
                seen.reconciles.fetch_add(1, Ordering::SeqCst);
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            seen.clone(),
        )
        .for_each(|_| async {});
    let running = tokio::spawn(controller);
    for i in 1..=30 {
        for name in ["a", "b"] {
            let patch = json!({"data": {"n": i.to_string()}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually("the last change to be reconciled", WAIT, || async {
        let quiet = seen.running.lock().unwrap().values().all(|n| *n == 0);
        (quiet && seen.reconciles.load(Ordering::SeqCst) >= 4).then_some(())
    })
    .await;
    running.abort();
    assert_eq!(
        seen.most_per_object.load(Ordering::SeqCst),
        1,
        "two reconciles of one object overlapped"
    );
    assert!(
        seen.most_overall.load(Ordering::SeqCst) >= 2,
        "different objects do reconcile at the same time"
    );
}
