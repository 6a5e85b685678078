//! Sync throughput with auditing off, with a `file:` sink and with an HTTP sink, measured in one
//! run against a running environment (see `scripts/bench-audit.sh`, which sets it up).
//!
//! Per configuration and round: a fresh namespace with an IRSA ServiceAccount and a SecretStore of
//! a controller class of its own, a `lockstep run --namespace` of its own with the configuration's
//! audit flags, then N ExternalSecrets applied at once; the time from the first apply until all N
//! Secrets exist gives ExternalSecrets synced per second. Configurations are interleaved round by
//! round so that load from elsewhere on the machine spreads over all of them.
//!
//! Usage: audit_throughput LOCKSTEP_BINARY [N] [ROUNDS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "shared/bench.rs"]
mod bench;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use lockstep::api::external_secret::ExternalSecret;
use lockstep::api::secret_store::SecretStore;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    Off,
    File,
    Http,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: audit_throughput LOCKSTEP_BINARY [N] [ROUNDS]");
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let client = Client::try_default().await?;
    let sm = aws_sdk_secretsmanager::Client::new(&aws_config::load_from_env().await);
    let remote = format!("bench/audit-{}/password", std::process::id());
    sm.create_secret()
        .name(&remote)
        .secret_string("bench-value")
        .send()
        .await?;
    let received = Arc::new(AtomicUsize::new(0));
    let receiver = receiver(received.clone()).await;
    let work = std::env::temp_dir().join(format!("lockstep-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    let mut results: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..rounds {
        for audit in [Audit::Off, Audit::File, Audit::Http] {
            let tag = format!("{audit:?}-{round}").to_lowercase();
            let flags = match audit {
                Audit::Off => vec![],
                Audit::File => vec![format!(
                    "--audit-log=file:{}",
                    work.join(format!("{tag}.log")).display()
                )],
                Audit::Http => vec![
                    format!("--audit-log={receiver}/ingest"),
                    format!("--audit-spool-dir={}", work.join(tag.clone()).display()),
                ],
            };
            let rate = measure(&client, &binary, &remote, &tag, n, &flags).await?;
            println!("round {round}: audit {audit:?}: {rate:.1} ExternalSecrets/s");
            results
                .entry(match audit {
                    Audit::Off => "off",
                    Audit::File => "file",
                    Audit::Http => "http",
                })
                .or_default()
                .push(rate);
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let off = median(&results["off"]);
    println!(
        "records received by the HTTP receiver: {}",
        received.load(Ordering::Relaxed)
    );
    for name in ["off", "file", "http"] {
        let m = median(&results[name]);
        println!(
            "audit {name:>4}: median {m:.1} ExternalSecrets/s, ratio to off {:.2} (runs: {:?})",
            m / off,
            results[name]
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
        );
    }
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}

/// ExternalSecrets synced per second by a fresh lockstep with `flags`.
async fn measure(
    client: &Client,
    binary: &str,
    remote: &str,
    tag: &str,
    n: usize,
    flags: &[String],
) -> anyhow::Result<f64> {
    let ns = format!("bench-audit-{}-{tag}", std::process::id());
    let class = ns.clone();
    let params = PatchParams::apply("lockstep-bench");
    bench::tenant_namespace(client, &ns).await?;
    let log = std::fs::File::create(std::env::temp_dir().join(format!("{ns}.log")))?;
    let mut lockstep = std::process::Command::new(binary)
        .args(["run", "--namespace", &ns, "--controller-class", &class])
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--leader-elect=false",
        ])
        .args(flags)
        .env("LOCKSTEP_NAMESPACE_SELF", &ns)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "aws"},
        "spec": {"controller": class, "provider": {"aws": {"service": "SecretsManager", "region": "us-east-1",
            "auth": {"jwt": {"serviceAccountRef": {"name": "app"}}}}}}
    });
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), &ns);
    stores.patch("aws", &params, &Patch::Apply(&store)).await?;
    bench::poll(
        Duration::from_secs(60),
        Duration::from_millis(20),
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
    let started = Instant::now();
    for i in 0..n {
        let es = json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": format!("es-{i}")},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                "data": [{"secretKey": "password", "remoteRef": {"key": remote}}]}
        });
        ess.patch(&format!("es-{i}"), &params, &Patch::Apply(&es))
            .await?;
    }
    let managed = ListParams::default().labels("reconcile.external-secrets.io/managed=true");
    bench::poll(
        Duration::from_secs(600),
        Duration::from_millis(20),
        || async {
            let list = secrets.list_metadata(&managed).await.ok()?;
            (list.items.len() >= n).then_some(())
        },
    )
    .await;
    let elapsed = started.elapsed();
    let _ = lockstep.kill();
    let _ = lockstep.wait();
    Api::<Namespace>::all(client.clone())
        .delete(&ns, &Default::default())
        .await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// A receiver that answers 200 to every POST and counts the JSON lines.
async fn receiver(count: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
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
                    let lines = buf[end..end + len].iter().filter(|b| **b == b'\n').count();
                    count.fetch_add(lines, Ordering::Relaxed);
                    buf.drain(..end + len);
                    if socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}
