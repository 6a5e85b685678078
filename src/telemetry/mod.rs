//! Metrics, and the HTTP servers for `/metrics`, `/livez` and `/readyz`.
//!
//! ESO's metric names, types and labels are kept (eso-compatibility.md section 8) so that existing
//! dashboards and alerts keep working; lockstep's own metrics are prefixed `lockstep_`. Labels only
//! ever carry names chosen by users or by lockstep (namespaces, object names, AWS call names,
//! outcomes): never a secret value.
pub mod aws;
mod server;
pub mod throttle;

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use server::{Readiness, serve};

/// The published price of one AWS Secrets Manager API call: $0.05 per 10,000 calls
/// (aws.amazon.com/secrets-manager/pricing). STS calls are free.
pub const SECRETS_MANAGER_USD_PER_CALL: f64 = 0.05 / 10_000.0;

/// ESO's provider label for Secrets Manager.
pub const PROVIDER_AWS_SM: &str = "AWS/SecretsManager";
/// ESO's provider label for Parameter Store.
pub const PROVIDER_AWS_PS: &str = "AWS/ParameterStore";

/// ESO's counters whose names do not end in `_total`. prometheus-client appends `_total` to every
/// counter; the exposition renames these back so ESO's queries find them.
const ESO_COUNTERS_WITHOUT_TOTAL: [&str; 2] = [
    "externalsecret_sync_calls_error",
    "externalsecret_provider_api_calls_count",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Object {
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectCondition {
    name: String,
    namespace: String,
    condition: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EsoApiCall {
    provider: String,
    call: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderCall {
    provider: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Store {
    store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreClass {
    store: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lane {
    lane: String,
}

/// Every metric lockstep exports. Cheap to clone: the handles share their values.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    sync_calls: Family<Object, Counter>,
    sync_errors: Family<Object, Counter>,
    status_condition: Family<ObjectCondition, Gauge>,
    reconcile_duration_ns: Family<Object, Gauge<f64, AtomicU64>>,
    store_status_condition: Family<ObjectCondition, Gauge>,
    cluster_store_status_condition: Family<ObjectCondition, Gauge>,
    eso_api_calls: Family<EsoApiCall, Counter>,
    provider_calls: Family<ProviderCall, Counter>,
    aws_cost: Family<Store, Counter<f64, AtomicU64>>,
    budget_rate: Family<Store, Gauge<f64, AtomicU64>>,
    workqueue_depth: Family<Lane, Gauge>,
    read_errors: Family<StoreClass, Counter>,
    credential_exchanges: Family<Outcome, Counter>,
    reconcile_seconds: Family<Kind, Histogram>,
    managed_secrets: Gauge,
    managed: Arc<Mutex<HashSet<(String, String)>>>,
    leader: Gauge,
    audit_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn object(namespace: &str, name: &str) -> Object {
    Object {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let sync_calls = Family::<Object, Counter>::default();
        registry.register(
            "externalsecret_sync_calls",
            "Total number of the External Secret sync calls",
            sync_calls.clone(),
        );
        let sync_errors = Family::<Object, Counter>::default();
        registry.register(
            "externalsecret_sync_calls_error",
            "Total number of the External Secret sync errors",
            sync_errors.clone(),
        );
        let status_condition = Family::<ObjectCondition, Gauge>::default();
        registry.register(
            "externalsecret_status_condition",
            "The status condition of a specific External Secret",
            status_condition.clone(),
        );
        let reconcile_duration_ns = Family::<Object, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "externalsecret_reconcile_duration",
            "The duration time to reconcile the External Secret (nanoseconds, as ESO)",
            reconcile_duration_ns.clone(),
        );
        let store_status_condition = Family::<ObjectCondition, Gauge>::default();
        registry.register(
            "secretstore_status_condition",
            "The status condition of a specific Secret Store",
            store_status_condition.clone(),
        );
        let cluster_store_status_condition = Family::<ObjectCondition, Gauge>::default();
        registry.register(
            "clustersecretstore_status_condition",
            "The status condition of a specific Cluster Secret Store",
            cluster_store_status_condition.clone(),
        );
        let eso_api_calls = Family::<EsoApiCall, Counter>::default();
        registry.register(
            "externalsecret_provider_api_calls_count",
            "Number of API calls towards the secret provider",
            eso_api_calls.clone(),
        );
        let provider_calls = Family::<ProviderCall, Counter>::default();
        registry.register(
            "lockstep_provider_calls",
            "Provider API requests by provider, operation and outcome (retries count: each is billed)",
            provider_calls.clone(),
        );
        let aws_cost = Family::<Store, Counter<f64, AtomicU64>>::default();
        registry.register(
            "lockstep_aws_api_cost_usd",
            "Estimated AWS API cost of the provider calls made, per store: calls x the published price per call (Secrets Manager: $0.05 per 10,000)",
            aws_cost.clone(),
        );
        let budget_rate = Family::<Store, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "lockstep_provider_budget_rate",
            "Provider calls per second a store may make now: halved when the provider throttles, raised by one after each call that is not throttled",
            budget_rate.clone(),
        );
        let workqueue_depth = Family::<Lane, Gauge>::default();
        registry.register(
            "lockstep_workqueue_depth",
            "ExternalSecret reconciles that are due and wait for a turn in their lane (first-sync or refresh)",
            workqueue_depth.clone(),
        );
        let read_errors = Family::<StoreClass, Counter>::default();
        registry.register(
            "lockstep_provider_read_errors",
            "Reads of one secret that failed, per store and error class, whether the call failed or one secret inside a batch did",
            read_errors.clone(),
        );
        let credential_exchanges = Family::<Outcome, Counter>::default();
        registry.register(
            "lockstep_credential_exchanges",
            "Credential exchanges (STS AssumeRole, AssumeRoleWithWebIdentity, TokenRequest) by outcome",
            credential_exchanges.clone(),
        );
        let reconcile_seconds = Family::<Kind, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
        });
        registry.register(
            "lockstep_reconcile_duration_seconds",
            "Reconcile duration by kind",
            reconcile_seconds.clone(),
        );
        let managed_secrets = Gauge::default();
        registry.register(
            "lockstep_managed_secrets",
            "Kubernetes Secrets lockstep keeps in sync",
            managed_secrets.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "lockstep_leader",
            "1 when this replica holds the leader Lease (or leader election is off), 0 on standby",
            leader.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "lockstep_audit_records_dropped",
            "Audit records a sink could not keep (spool full under --audit-spool-full=drop, or a failing file)",
            audit_dropped.clone(),
        );
        Self {
            registry: Arc::new(registry),
            sync_calls,
            sync_errors,
            status_condition,
            reconcile_duration_ns,
            store_status_condition,
            cluster_store_status_condition,
            eso_api_calls,
            provider_calls,
            aws_cost,
            budget_rate,
            workqueue_depth,
            read_errors,
            credential_exchanges,
            reconcile_seconds,
            managed_secrets,
            managed: Arc::default(),
            leader,
            audit_dropped,
        }
    }

    /// The gauge of reconciles waiting for a turn in `lane`.
    pub fn workqueue_depth(&self, lane: &str) -> Gauge {
        self.workqueue_depth
            .get_or_create(&Lane { lane: lane.into() })
            .clone()
    }

    /// The counter the audit log increments for each record it could not keep.
    pub fn audit_records_dropped(&self) -> Counter {
        self.audit_dropped.clone()
    }

    /// The exposition in Prometheus' text format 0.0.4 (ESO's counters keep their names).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut body = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut body, &self.registry)?;
        Ok(rename_eso_counters(&body))
    }

    /// One ExternalSecret reconcile done: ESO's counters and duration, and lockstep's histogram.
    pub fn reconciled(&self, namespace: &str, name: &str, took: Duration, failed: bool) {
        let key = object(namespace, name);
        self.sync_calls.get_or_create(&key).inc();
        // Failures reported in the status are counted where they are reported
        // (`sync_failed`); these are the ones that could not even be reported.
        if failed {
            self.sync_errors.get_or_create(&key).inc();
        }
        self.reconcile_duration_ns
            .get_or_create(&key)
            .set(took.as_nanos() as f64);
        self.observe_reconcile("ExternalSecret", took);
    }

    /// ESO's `externalsecret_sync_calls_error`: a sync that ended in a failure status.
    pub fn sync_failed(&self, namespace: &str, name: &str) {
        self.sync_errors
            .get_or_create(&object(namespace, name))
            .inc();
    }

    /// A reconcile of any kind, for lockstep's histogram.
    pub fn observe_reconcile(&self, kind: &str, took: Duration) {
        self.reconcile_seconds
            .get_or_create(&Kind { kind: kind.into() })
            .observe(took.as_secs_f64());
    }

    /// ESO's `externalsecret_status_condition`: 1 for the current status, 0 for the opposite.
    pub fn es_condition(&self, namespace: &str, name: &str, condition: &str, status: &str) {
        set_condition(&self.status_condition, namespace, name, condition, status);
    }

    /// `secretstore_status_condition` or `clustersecretstore_status_condition`.
    pub fn store_condition(
        &self,
        cluster: bool,
        namespace: &str,
        name: &str,
        condition: &str,
        status: &str,
    ) {
        let family = if cluster {
            &self.cluster_store_status_condition
        } else {
            &self.store_status_condition
        };
        set_condition(family, namespace, name, condition, status);
    }

    /// Removes the series of a deleted ExternalSecret, as ESO does.
    pub fn forget_external_secret(&self, namespace: &str, name: &str) {
        let key = object(namespace, name);
        self.sync_calls.remove(&key);
        self.sync_errors.remove(&key);
        self.reconcile_duration_ns.remove(&key);
        self.managed_secret(namespace, name, false);
        for condition in ["Ready", "Deleted"] {
            for status in ["True", "False", "Unknown"] {
                self.status_condition.remove(&ObjectCondition {
                    name: name.into(),
                    namespace: namespace.into(),
                    condition: condition.into(),
                    status: status.into(),
                });
            }
        }
    }

    /// The ExternalSecret `namespace/name` keeps a Secret (`true`) or no longer (`false`).
    pub fn managed_secret(&self, namespace: &str, name: &str, managed: bool) {
        let mut set = self.managed.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_owned(), name.to_owned());
        if managed {
            set.insert(key);
        } else {
            set.remove(&key);
        }
        self.managed_secrets.set(set.len() as i64);
    }

    /// One HTTP request to a provider's API. `outcome` is `success` or a failure class.
    pub fn provider_call(&self, store: &str, provider: &str, call: &str, outcome: &str) {
        let status = if outcome == "success" {
            "success"
        } else {
            "error"
        };
        self.eso_api_calls
            .get_or_create(&EsoApiCall {
                provider: provider.into(),
                call: call.into(),
                status: status.into(),
            })
            .inc();
        self.provider_calls
            .get_or_create(&ProviderCall {
                provider: provider.into(),
                operation: call.into(),
                outcome: outcome.into(),
            })
            .inc();
        if provider == PROVIDER_AWS_SM {
            self.aws_cost
                .get_or_create(&Store {
                    store: store.into(),
                })
                .inc_by(SECRETS_MANAGER_USD_PER_CALL);
        }
    }

    /// The calls per second a store's budget allows now.
    pub fn budget_rate(&self, store: &str, rate: f64) {
        self.budget_rate
            .get_or_create(&Store {
                store: store.into(),
            })
            .set(rate);
    }

    /// A read of one secret failed with an error of `class`.
    pub fn read_failed(&self, store: &str, class: &str) {
        self.read_errors
            .get_or_create(&StoreClass {
                store: store.into(),
                class: class.into(),
            })
            .inc();
    }

    /// One credential exchange for a store identity.
    pub fn credential_exchange(&self, ok: bool) {
        let outcome = if ok { "success" } else { "error" };
        self.credential_exchanges
            .get_or_create(&Outcome {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}

fn set_condition(
    family: &Family<ObjectCondition, Gauge>,
    namespace: &str,
    name: &str,
    condition: &str,
    status: &str,
) {
    let series = |status: &str| ObjectCondition {
        name: name.into(),
        namespace: namespace.into(),
        condition: condition.into(),
        status: status.into(),
    };
    // ESO sets the opposite status to 0 rather than deleting it.
    let opposite = if status == "True" { "False" } else { "True" };
    family.get_or_create(&series(status)).set(1);
    family.get_or_create(&series(opposite)).set(0);
}

fn rename_eso_counters(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        let renamed = ESO_COUNTERS_WITHOUT_TOTAL.iter().find_map(|name| {
            let with_total = format!("{name}_total");
            line.contains(&with_total)
                .then(|| line.replacen(&with_total, name, 1))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eso_names_types_and_labels() {
        let m = Metrics::new();
        m.reconciled("team", "db", Duration::from_millis(3), true);
        m.es_condition("team", "db", "Ready", "False");
        m.provider_call(
            "SecretStore/team/aws",
            PROVIDER_AWS_SM,
            "GetSecretValue",
            "success",
        );
        m.provider_call(
            "SecretStore/team/aws",
            PROVIDER_AWS_SM,
            "GetSecretValue",
            "throttled",
        );
        let text = m.encode().unwrap();
        for expected in [
            "# TYPE externalsecret_sync_calls_total counter",
            "externalsecret_sync_calls_total{name=\"db\",namespace=\"team\"} 1",
            "# TYPE externalsecret_sync_calls_error counter",
            "externalsecret_sync_calls_error{name=\"db\",namespace=\"team\"} 1",
            "# TYPE externalsecret_status_condition gauge",
            "externalsecret_status_condition{name=\"db\",namespace=\"team\",condition=\"Ready\",status=\"False\"} 1",
            "externalsecret_status_condition{name=\"db\",namespace=\"team\",condition=\"Ready\",status=\"True\"} 0",
            "# TYPE externalsecret_reconcile_duration gauge",
            "externalsecret_reconcile_duration{name=\"db\",namespace=\"team\"} 3000000",
            "# TYPE externalsecret_provider_api_calls_count counter",
            "externalsecret_provider_api_calls_count{provider=\"AWS/SecretsManager\",call=\"GetSecretValue\",status=\"success\"} 1",
            "externalsecret_provider_api_calls_count{provider=\"AWS/SecretsManager\",call=\"GetSecretValue\",status=\"error\"} 1",
            "lockstep_provider_calls_total{provider=\"AWS/SecretsManager\",operation=\"GetSecretValue\",outcome=\"throttled\"} 1",
            "lockstep_aws_api_cost_usd_total{store=\"SecretStore/team/aws\"} 0.00001",
            "# TYPE lockstep_reconcile_duration_seconds histogram",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("externalsecret_sync_calls_error_total"));
    }

    #[test]
    fn deleted_external_secrets_leave_no_series() {
        let m = Metrics::new();
        m.reconciled("team", "db", Duration::from_millis(3), false);
        m.es_condition("team", "db", "Ready", "True");
        m.forget_external_secret("team", "db");
        let text = m.encode().unwrap();
        assert!(!text.contains("name=\"db\""), "{text}");
    }

    #[test]
    fn managed_secrets_are_counted_once() {
        let m = Metrics::new();
        m.managed_secret("a", "s", true);
        m.managed_secret("a", "s", true);
        m.managed_secret("b", "s", true);
        m.managed_secret("a", "s", false);
        assert!(m.encode().unwrap().contains("lockstep_managed_secrets 1\n"));
    }
}
