//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager), so that of several
//! replicas only one reconciles and writes.
//!
//! kube-lease-manager renews and takes over; lockstep adds what it lacks
//! (reference/crate-choices.md section 4): a renew deadline. A leader that cannot confirm its
//! Lease for `duration - grace` (an API server that is slow or unreachable) stops, as
//! controller-runtime does, instead of writing beside a new leader. Until then failures are
//! retried: a slow API server alone is no reason to stop.
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};

use crate::telemetry::{Metrics, Readiness};

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "lost the leader Lease {lease}: {why}. Stopping so that only the new leader writes; \
         the Pod restarts as a standby"
    )]
    Lost { lease: String, why: String },
}

/// Where the Lease lives and how long it holds.
#[derive(Debug, Clone)]
pub struct Election {
    pub lease: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

impl Election {
    /// The Lease's namespace: `explicit`, else the Pod's namespace, else `scoped` (lockstep's
    /// `--namespace`), else `default`.
    pub fn namespace(explicit: &str, scoped: Option<&str>) -> String {
        let in_cluster = std::env::var("POD_NAMESPACE").ok().or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok()
        });
        [
            Some(explicit.to_owned()),
            in_cluster,
            scoped.map(str::to_owned),
        ]
        .into_iter()
        .flatten()
        .map(|n| n.trim().to_owned())
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
    }

    /// The Pod's name (or the host's), made unique per process so that a restarted Pod never
    /// mistakes its predecessor's Lease for its own.
    pub fn identity() -> String {
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "lockstep".into());
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("{host}_{}_{nanos:08x}", std::process::id())
    }

    /// Renewed when this much of the Lease is left.
    fn grace(&self) -> Duration {
        (self.duration / 3).max(Duration::from_secs(1))
    }

    fn name(&self) -> String {
        format!("{}/{}", self.namespace, self.lease)
    }
}

/// Waits for the Lease, then runs `lead` while holding it. Returns when `lead` returns (it stops on
/// SIGTERM after its in-flight work; the Lease is then released so a standby takes over) or on
/// SIGTERM while standing by; fails when leadership is lost.
pub async fn run_elected<F, Fut>(
    client: Client,
    election: Election,
    metrics: Metrics,
    readiness: Readiness,
    lead: F,
) -> Result<(), LeaderError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let secs = |d: Duration| d.as_secs().max(1);
    let grace = election.grace();
    // The manager reads the Lease when it is built; built again, it sees a Lease released since.
    let build = || async {
        loop {
            let built = LeaseManagerBuilder::new(client.clone(), &election.lease)
                .with_namespace(&election.namespace)
                .with_identity(&election.identity)
                .with_duration(secs(election.duration))
                .with_grace(secs(grace).min(secs(election.duration) - 1).max(1))
                .with_field_manager("lockstep-leader-election")
                .build()
                .await;
            match built {
                Ok(m) => return m,
                Err(e) => {
                    tracing::warn!(lease = %election.name(), error = %e, "cannot reach the leader Lease yet; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    };
    let mut manager = tokio::select! {
        m = build() => m,
        _ = shutdown_signal() => return Ok(()),
    };
    metrics.set_leader(false);
    // A standby is ready: a rolling update must not wait for it to lead.
    readiness.set(true);
    tracing::info!(lease = %election.name(), identity = %election.identity, "standing by for the leader Lease");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &election.namespace);
    loop {
        tokio::select! {
            // kube-lease-manager sleeps until the holder's Lease expires, trusting what it read
            // before; a Lease released on SIGTERM is taken at once instead.
            _ = released(&leases, &election.lease) => {
                tokio::select! {
                    m = build() => manager = m,
                    _ = shutdown_signal() => return Ok(()),
                }
            }
            changed = manager.changed() => match changed {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %election.name(), error = %e, "leader election: retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = shutdown_signal() => {
                tracing::info!("stopped while standing by");
                return Ok(());
            }
        }
    }
    tracing::info!(lease = %election.name(), identity = %election.identity, "became the leader");
    metrics.set_leader(true);
    readiness.set(false);
    let outcome = tokio::select! {
        _ = lead() => Ok(()),
        lost = keep_leading(&manager, &leases, &election) => Err(lost),
    };
    metrics.set_leader(false);
    if outcome.is_ok() {
        // Released at once, so a standby does not wait for the Lease to expire.
        match tokio::time::timeout(Duration::from_secs(5), manager.release()).await {
            Ok(Ok(())) => tracing::info!(lease = %election.name(), "released the leader Lease"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not release the leader Lease; it expires by itself")
            }
            Err(_) => tracing::warn!("releasing the leader Lease timed out; it expires by itself"),
        }
    }
    outcome
}

/// Returns once the Lease has no holder (its leader released it).
async fn released(leases: &Api<Lease>, name: &str) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(lease) = leases.get(name).await {
            let holder = lease
                .spec
                .and_then(|s| s.holder_identity)
                .unwrap_or_default();
            if holder.is_empty() {
                return;
            }
        }
    }
}

/// Renews the Lease (kube-lease-manager) and watches the deadline; returns only when leadership
/// is lost.
async fn keep_leading(
    manager: &LeaseManager,
    leases: &Api<Lease>,
    election: &Election,
) -> LeaderError {
    let lost = |why: String| LeaderError::Lost {
        lease: election.name(),
        why,
    };
    let renew = async {
        loop {
            match manager.changed().await {
                Ok(false) => return lost("another replica holds it".into()),
                Ok(true) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the leader Lease failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    };
    let deadline = election.duration.saturating_sub(election.grace());
    let check_every = (election.grace() / 2).max(Duration::from_millis(500));
    let watch = async {
        let mut confirmed = Instant::now();
        loop {
            tokio::time::sleep(check_every).await;
            match tokio::time::timeout(check_every, leases.get(&election.lease)).await {
                Ok(Ok(lease)) => match holds(&lease, &election.identity, election.duration) {
                    Holding::Yes => confirmed = Instant::now(),
                    Holding::Other(holder) => return lost(format!("{holder} holds it now")),
                    Holding::Stale => {}
                },
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the leader Lease failed; retrying")
                }
                Err(_) => tracing::warn!("reading the leader Lease timed out; retrying"),
            }
            if confirmed.elapsed() > deadline {
                return lost(format!(
                    "not renewed for {}s (the API server is unreachable or too slow)",
                    confirmed.elapsed().as_secs()
                ));
            }
        }
    };
    tokio::select! {
        why = renew => why,
        why = watch => why,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Holding {
    Yes,
    /// Held by this identity but not renewed within its duration.
    Stale,
    Other(String),
}

fn holds(lease: &Lease, identity: &str, duration: Duration) -> Holding {
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default();
    if holder != identity {
        return Holding::Other(if holder.is_empty() {
            "nobody".into()
        } else {
            holder
        });
    }
    let renewed = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
    let now = k8s_openapi::jiff::Timestamp::now();
    match renewed {
        Some(at) if now.duration_since(at).unsigned_abs() < duration => Holding::Yes,
        _ => Holding::Stale,
    }
}

/// SIGTERM (Kubernetes stopping the Pod) or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: Option<&str>, renewed_secs_ago: i64) -> Lease {
        let now = k8s_openapi::jiff::Timestamp::now();
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: Some(MicroTime(
                    now.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(
                        renewed_secs_ago,
                    ))
                    .unwrap(),
                )),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn holding_the_lease() {
        let d = Duration::from_secs(15);
        assert_eq!(holds(&lease(Some("me"), 3), "me", d), Holding::Yes);
        assert_eq!(holds(&lease(Some("me"), 30), "me", d), Holding::Stale);
        assert_eq!(
            holds(&lease(Some("you"), 3), "me", d),
            Holding::Other("you".into())
        );
        assert_eq!(
            holds(&lease(None, 3), "me", d),
            Holding::Other("nobody".into())
        );
    }

    #[test]
    fn lease_namespace_order() {
        // POD_NAMESPACE and the in-cluster file are absent in unit tests.
        if std::env::var("POD_NAMESPACE").is_err() {
            assert_eq!(Election::namespace("ops", Some("team")), "ops");
            assert_eq!(Election::namespace("", Some("team")), "team");
            assert_eq!(Election::namespace("", None), "default");
        }
    }
}
