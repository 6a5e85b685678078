//! What the benchmark examples share: a tenant namespace with an IRSA ServiceAccount, polling,
//! and the CPU time of a process (the control plane's, lockstep's).
// Each example uses a part of this module.
#![allow(dead_code)]
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

/// The control plane's process (etcd and kube-apiserver in one), from the environment's pid file.
pub fn control_plane_pid() -> u32 {
    let dir = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/env".into());
    std::fs::read_to_string(format!("{dir}/cluster.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/PID/stat: 11 and 12 counted from the state.
    (ticks(11) + ticks(12)) / 100.0
}
