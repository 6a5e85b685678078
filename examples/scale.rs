//! The scale benchmark of issue 7 (run by `scripts/bench-scale.sh`, which sets up the
//! environment): N ExternalSecrets over M distinct remote secrets, one `data` entry each, against
//! moto (`aws`) or the fake provider (`fake`). It starts and stops its own `lockstep run`
//! (`LOCKSTEP_BIN`, flags from `LOCKSTEP_ARGS`) and measures:
//! 0. the limit: the time a minimal client takes to create N Secrets on the same control plane,
//!    and the control plane's CPU seconds for it;
//! 1. cold start: from lockstep's start until every ExternalSecret is Ready (the ExternalSecrets
//!    are created while lockstep is stopped), the control plane's CPU seconds for it, and the API
//!    requests per ExternalSecret by verb and resource (`apiserver_request_total`);
//! 2. lockstep's RSS after the cold start and after each wave, and its CPU seconds per cycle;
//! 3. provider calls per refresh wave, counted at moto's request recorder, against the minimum
//!    ceil(M/20): the first wave after the cold start, and the second (the steady state);
//! 4. the apply-to-Secret latency of new ExternalSecrets applied while the refresh wave of all N
//!    is running (p50, p99).
//!
//! Usage: scale N M aws|fake [REFRESH_SECONDS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "shared/bench.rs"]
mod bench;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use lockstep::api::conditions::{ConditionStatus, ExternalSecretConditionType};
use lockstep::api::external_secret::ExternalSecret;
use serde_json::json;

/// Requests in flight when the benchmark itself creates objects.
const PARALLEL: usize = 64;
/// New ExternalSecrets applied during the refresh wave.
const NEWCOMERS: usize = 40;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let m: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(n);
    let provider = args.get(3).cloned().unwrap_or_else(|| "aws".into());
    let refresh: u64 = args.get(4).map(|a| a.parse()).transpose()?.unwrap_or(60);
    let endpoint = std::env::var("AWS_ENDPOINT_URL")?;
    let client = Client::try_default().await?;
    let run = format!("{}-{}", std::process::id(), n);
    let ns = format!("scale-{provider}-{run}");

    // 0. The limit: a minimal client creating N Secrets, PARALLEL at a time.
    let limit_ns = format!("limit-{run}");
    bench::tenant_namespace(&client, &limit_ns).await?;
    let limit_api: Api<Secret> = Api::namespaced(client.clone(), &limit_ns);
    let control_plane = bench::control_plane_pid();
    let limit_cpu_before = bench::cpu_seconds(control_plane);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = limit_api.clone();
            async move {
                let secret: Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("s-{i}")},
                    "data": {"v": "dmFsdWU="}
                }))?;
                api.create(&PostParams::default(), &secret).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<()>()
        .await?;
    let limit = started.elapsed();
    let limit_cpu = bench::cpu_seconds(control_plane) - limit_cpu_before;
    Api::<Namespace>::all(client.clone())
        .delete(&limit_ns, &Default::default())
        .await?;

    // The store, the remote secrets, and N ExternalSecrets, while lockstep is stopped.
    bench::tenant_namespace(&client, &ns).await?;
    let prefix = format!("scale/{run}");
    let spec = match provider.as_str() {
        "aws" => {
            let sm = aws_sdk_secretsmanager::Client::new(&aws_config::load_from_env().await);
            futures::stream::iter(0..m)
                .map(|i| {
                    let (sm, name) = (sm.clone(), format!("{prefix}/k{i}"));
                    async move {
                        sm.create_secret()
                            .name(name)
                            .secret_string(format!("value-{i}"))
                            .send()
                            .await?;
                        anyhow::Ok(())
                    }
                })
                .buffer_unordered(16)
                .try_collect::<()>()
                .await?;
            sm.create_secret()
                .name(format!("{prefix}-newcomer"))
                .secret_string("newcomer")
                .send()
                .await?;
            json!({"aws": {"service": "SecretsManager", "region": "us-east-1"}})
        }
        _ => {
            let mut data: Vec<_> = (0..m)
                .map(|i| json!({"key": format!("{prefix}/k{i}"), "value": format!("value-{i}")}))
                .collect();
            data.push(json!({"key": format!("{prefix}-newcomer"), "value": "newcomer"}));
            json!({"fake": {"data": data}})
        }
    };
    let params = PatchParams::apply("lockstep-bench");
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "store"},
        "spec": {"provider": spec}
    });
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), &ns);
    stores
        .patch("store", &params, &Patch::Apply(&store))
        .await?;
    let ess: Api<ExternalSecret> = Api::namespaced(client.clone(), &ns);
    let manifest = |name: &str, key: usize, interval: &str| {
        json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": name},
            "spec": {"refreshInterval": interval, "secretStoreRef": {"name": "store", "kind": "SecretStore"},
                "data": [{"secretKey": "v", "remoteRef": {"key": format!("{prefix}/k{key}")}}]}
        })
    };
    let interval = format!("{refresh}s");
    futures::stream::iter(0..n)
        .map(|i| {
            let (ess, params, es) = (
                ess.clone(),
                params.clone(),
                manifest(&format!("es-{i}"), i % m, &interval),
            );
            async move {
                ess.patch(&format!("es-{i}"), &params, &Patch::Apply(&es))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<()>()
        .await?;

    // 1. Cold start.
    let recorder = |action: &str| {
        curl(&[
            "-s",
            "-X",
            "POST",
            &format!("{endpoint}/moto-api/recorder/{action}"),
        ])
    };
    recorder("reset-recording");
    recorder("start-recording");
    // The benchmark observes by a watch, not by LISTs: a LIST of N ExternalSecrets every few
    // hundred milliseconds would take a good share of the API server's time from lockstep.
    let synced = watch_synced(ess.clone());
    let requests_before = api_requests(&client).await?;
    let cold_cpu_before = bench::cpu_seconds(control_plane);
    let bin = std::env::var("LOCKSTEP_BIN").unwrap_or_else(|_| "target/debug/lockstep".into());
    let extra = std::env::var("LOCKSTEP_ARGS").unwrap_or_default();
    let log = std::fs::File::create(format!(
        "{}/lockstep-{ns}.log",
        std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into())
    ))?;
    let started = Instant::now();
    let mut lockstep = std::process::Command::new(&bin)
        .args([
            "run",
            "--namespace",
            &ns,
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--leader-elect=false",
        ])
        .args(extra.split_whitespace())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let pid = lockstep.id();
    let ready_all = || {
        let synced = synced.lock().unwrap();
        (synced.len() >= n).then(|| synced.values().copied().collect::<Vec<_>>())
    };
    let refresh_times = bench::poll(Duration::from_secs(1800), Duration::from_millis(20), || {
        std::future::ready(ready_all())
    })
    .await;
    let cold = started.elapsed();
    let cold_cpu = bench::cpu_seconds(pid);
    let cold_control_plane_cpu = bench::cpu_seconds(control_plane) - cold_cpu_before;
    let cold_requests = api_requests(&client)
        .await?
        .into_iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v - requests_before.get(&k).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, v)| *v > 0.0)
        .collect::<BTreeMap<_, _>>();
    let started_at = k8s_openapi::jiff::Timestamp::now() - cold;
    let mut synced_at: Vec<f64> = refresh_times
        .iter()
        .map(|t| t.duration_since(started_at).as_secs_f64())
        .collect();
    synced_at.sort_by(f64::total_cmp);
    recorder("stop-recording");
    let cold_calls = count_calls(&endpoint, &format!("{prefix}/k"));
    let rss_after_cold = rss_mib(pid, "VmRSS");

    // 2, 3 and 4. The first refresh wave (each ExternalSecret refreshed once): lockstep's CPU from
    // the end of the cold start to the end of the wave, the provider calls of the wave, and new
    // ExternalSecrets applied while it runs (they read a secret the wave does not count).
    recorder("reset-recording");
    recorder("start-recording");
    let cpu_before = bench::cpu_seconds(pid);
    let earliest = refresh_times.iter().min().copied().unwrap();
    // A first refresh comes at least half an interval after the first sync (lockstep's schedule).
    let wave = earliest + k8s_openapi::jiff::SignedDuration::from_secs(refresh as i64 / 2);
    let until_wave = wave.duration_since(k8s_openapi::jiff::Timestamp::now());
    let wave_started_in_cold_start = until_wave.is_negative();
    if until_wave.is_positive() {
        tokio::time::sleep(Duration::try_from(until_wave).unwrap_or_default()).await;
    }
    let wave_started = Instant::now();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let since = wave - k8s_openapi::jiff::SignedDuration::from_secs(1);
    let refreshed = || refreshed_since(&synced, since);
    // The slots' instants make the wave start a little after that: wait for its first refresh.
    bench::poll(Duration::from_secs(600), Duration::from_millis(100), || {
        std::future::ready((refreshed() > 0).then_some(()))
    })
    .await;
    let mut latencies = Vec::new();
    for j in 0..NEWCOMERS {
        let name = format!("new-{j}");
        let started = Instant::now();
        let mut es = manifest(&name, 0, "1h");
        es["spec"]["data"][0]["remoteRef"]["key"] = json!(format!("{prefix}-newcomer"));
        ess.patch(&name, &params, &Patch::Apply(&es)).await?;
        bench::poll(
            Duration::from_secs(300),
            Duration::from_millis(10),
            || async { secrets.get_opt(&name).await.ok().flatten().map(|_| ()) },
        )
        .await;
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // How much of the wave was still to do when the last newcomer synced.
    let pending = n - refreshed();
    bench::poll(
        Duration::from_secs(1800),
        Duration::from_millis(500),
        || std::future::ready((refreshed() >= n).then_some(())),
    )
    .await;
    let wave_took = wave_started.elapsed();
    let cpu_cycle = bench::cpu_seconds(pid) - cpu_before;
    recorder("stop-recording");
    let cycle_calls = count_calls(&endpoint, &format!("{prefix}/k"));
    let rss_wave = rss_mib(pid, "VmRSS");

    // 5. The steady state: the second wave, when the refreshes of ExternalSecrets reading one
    // secret have come due together (the first wave follows the cold start's order). Calls,
    // CPU and RSS over one whole cycle, from the end of the first wave to the end of the second.
    recorder("reset-recording");
    recorder("start-recording");
    let cpu_before = bench::cpu_seconds(pid);
    let earliest = {
        let synced = synced.lock().unwrap();
        synced
            .iter()
            .filter(|(name, t)| name.starts_with("es-") && **t >= since)
            .map(|(_, t)| *t)
            .min()
            .unwrap()
    };
    let since = earliest + k8s_openapi::jiff::SignedDuration::from_secs(refresh as i64 - 1);
    let refreshed_again = || refreshed_since(&synced, since);
    let steady_started = Instant::now();
    bench::poll(
        Duration::from_secs(3600),
        Duration::from_millis(500),
        || std::future::ready((refreshed_again() >= n).then_some(())),
    )
    .await;
    let steady_took = steady_started.elapsed();
    let steady_cpu = bench::cpu_seconds(pid) - cpu_before;
    recorder("stop-recording");
    let steady_calls = count_calls(&endpoint, &format!("{prefix}/k"));
    let rss_steady = rss_mib(pid, "VmRSS");
    let rss_peak = rss_mib(pid, "VmHWM");
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];

    lockstep.kill()?;
    lockstep.wait()?;
    Api::<Namespace>::all(client)
        .delete(&ns, &Default::default())
        .await?;

    let minimum = m.div_ceil(20);
    println!(
        "## N={n} M={m} provider={provider} refreshInterval={refresh}s lockstep {bin} {extra}"
    );
    println!(
        "limit (create {n} Secrets, {PARALLEL} in flight): {:.2} s, control plane CPU {limit_cpu:.2} s",
        limit.as_secs_f64()
    );
    println!(
        "cold start: {:.2} s = {:.2} x limit; provider calls during cold start: {cold_calls:?}",
        cold.as_secs_f64(),
        cold.as_secs_f64() / limit.as_secs_f64()
    );
    println!(
        "cold start: lockstep CPU {cold_cpu:.2} s; control plane CPU {cold_control_plane_cpu:.2} s = {:.2} x limit; API server requests per ExternalSecret (all clients, below 0.01 left out): {}",
        cold_control_plane_cpu / limit_cpu,
        cold_requests
            .iter()
            .filter(|(_, v)| **v / n as f64 >= 0.01)
            .map(|(k, v)| format!("{k} {:.2}", v / n as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "first syncs after lockstep's start (s): first {:.1}, median {:.1}, last {:.1} (refreshTime has 1 s resolution)",
        synced_at[0],
        synced_at[synced_at.len() / 2],
        synced_at[synced_at.len() - 1]
    );
    println!(
        "RSS after cold start: {rss_after_cold:.1} MiB; after the first wave: {rss_wave:.1} MiB; after the second: {rss_steady:.1} MiB; peak {rss_peak:.1} MiB"
    );
    println!(
        "first refresh wave ({refresh}s interval): {n} refreshes took {:.1} s{}; CPU {cpu_cycle:.2} s from the end of the cold start to the end of the wave; provider calls {} {cycle_calls:?} (minimum ceil(M/20) = {minimum})",
        wave_took.as_secs_f64(),
        if wave_started_in_cold_start {
            " (it began during the cold start: raise REFRESH_SECONDS)"
        } else {
            ""
        },
        cycle_calls.values().sum::<usize>()
    );
    println!(
        "steady state (the second wave): one cycle of {:.1} s, lockstep CPU {steady_cpu:.2} s per cycle; provider calls per cycle {} {steady_calls:?} (minimum ceil(M/20) = {minimum})",
        steady_took.as_secs_f64(),
        steady_calls.values().sum::<usize>()
    );
    println!(
        "new ExternalSecret during the refresh wave ({NEWCOMERS} applied one after another): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {pending} of {n} wave refreshes still pending after the last",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );
    // One line for `scripts/bench-scale.sh` to take medians from.
    let result = json!({
        "n": n, "m": m, "provider": provider,
        "cold_ratio": cold.as_secs_f64() / limit.as_secs_f64(),
        "control_plane_cpu_ratio": cold_control_plane_cpu / limit_cpu,
        "rss_mib": rss_steady,
        "first_wave_calls": cycle_calls.values().sum::<usize>(),
        "steady_calls": steady_calls.values().sum::<usize>(),
        "minimum_calls": minimum,
        "steady_cpu_s": steady_cpu,
        "newcomer_p50_ms": ms(pick(0.5)),
        "newcomer_p99_ms": ms(pick(0.99)),
    });
    println!("RESULT {result}");
    Ok(())
}

/// The refreshTime of each Ready ExternalSecret by name, kept up to date by a watch.
fn watch_synced(ess: Api<ExternalSecret>) -> Arc<Mutex<HashMap<String, Timestamp>>> {
    let synced = Arc::new(Mutex::new(HashMap::new()));
    let sink = synced.clone();
    tokio::spawn(
        watcher(ess, watcher::Config::default())
            .applied_objects()
            .for_each(move |es| {
                if let Ok(es) = es {
                    let ready = es.status.as_ref().filter(|s| {
                        s.conditions.iter().any(|c| {
                            c.type_ == ExternalSecretConditionType::Ready
                                && c.status == ConditionStatus::True
                        })
                    });
                    let name = es.metadata.name.clone().unwrap_or_default();
                    let mut synced = sink.lock().unwrap();
                    match ready.and_then(|s| s.refresh_time.as_ref()) {
                        Some(t) => synced.insert(name, t.0),
                        None => synced.remove(&name),
                    };
                }
                std::future::ready(())
            }),
    );
    synced
}

/// How many of the N ExternalSecrets (not the newcomers) were refreshed at or after `since`.
fn refreshed_since(synced: &Mutex<HashMap<String, Timestamp>>, since: Timestamp) -> usize {
    synced
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, t)| name.starts_with("es-") && **t >= since)
        .count()
}

/// The API server's request counts by verb and resource (`apiserver_request_total`), watches
/// and the metrics scrape itself left out.
async fn api_requests(client: &Client) -> anyhow::Result<BTreeMap<String, f64>> {
    let request = hyper::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_owned())
    };
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let (verb, resource) = (label(line, "verb"), label(line, "resource"));
        let (Some(verb), Some(resource)) = (verb, resource) else {
            continue;
        };
        if verb == "WATCH" || resource.is_empty() {
            continue;
        }
        let resource = match label(line, "subresource").filter(|s| !s.is_empty()) {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource,
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *counts.entry(format!("{verb} {resource}")).or_default() += value;
    }
    Ok(counts)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(args)
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Secrets Manager reads moto recorded for the benchmark's secrets (bodies are base64).
fn count_calls(endpoint: &str, prefix: &str) -> BTreeMap<String, usize> {
    let recording = curl(&[
        "-s",
        &format!("{endpoint}/moto-api/recorder/download-recording"),
    ]);
    let mut calls = BTreeMap::new();
    for line in recording.lines() {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(target) = record["headers"]["X-Amz-Target"].as_str() else {
            continue;
        };
        let raw = record["body"].as_str().unwrap_or_default();
        let body = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| raw.to_owned());
        if body.contains(prefix) && !target.ends_with("CreateSecret") {
            *calls
                .entry(target.rsplit('.').next().unwrap_or(target).to_owned())
                .or_default() += 1;
        }
    }
    calls
}

fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}
