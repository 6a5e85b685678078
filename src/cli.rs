//! The command line.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lockstep",
    version,
    about = "Keeps Kubernetes Secrets in lockstep with external secret managers"
)]
pub struct Cli {
    /// Log format: readable text, or one JSON object per line.
    #[arg(long, global = true, env = "LOCKSTEP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at start; boxing the largest variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions of external-secrets.io (or write them to a directory).
    Crds(CrdsArgs),
    /// Run the controllers against the cluster in KUBECONFIG (or the in-cluster config).
    Run(RunArgs),
    /// Work with audit logs.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing a YAML stream.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub audit: AuditArgs,

    /// Handle only stores whose spec.controller is empty or equal to this class, so lockstep can
    /// run beside ESO and take over one store at a time.
    #[arg(long, env = "LOCKSTEP_CONTROLLER_CLASS", default_value = "default")]
    pub controller_class: String,

    /// How often stores are validated again when their spec.refreshInterval does not say.
    #[arg(long, env = "LOCKSTEP_STORE_REQUEUE_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub store_requeue_interval: std::time::Duration,

    /// Handle only ExternalSecrets and SecretStores in this namespace (ESO's `--namespace`), for
    /// an installation scoped to one namespace. ClusterSecretStores, and ExternalSecrets that use
    /// them, are then left to a cluster-wide controller (as ESO with
    /// `--enable-cluster-store-reconciler=false`). Empty: every namespace.
    #[arg(long, env = "LOCKSTEP_NAMESPACE", default_value = "")]
    pub namespace: String,

    #[command(flatten)]
    pub ops: OpsArgs,
}

/// How lockstep is operated: its HTTP endpoints, its load on the API server, leader election.
#[derive(Debug, Args)]
pub struct OpsArgs {
    /// Where `/metrics` is served (Prometheus text format). `:8080` means every interface.
    #[arg(long, env = "LOCKSTEP_METRICS_ADDR", default_value = ":8080")]
    pub metrics_addr: String,

    /// Where `/livez` and `/readyz` are served.
    #[arg(long, env = "LOCKSTEP_HEALTH_ADDR", default_value = ":8081")]
    pub health_addr: String,

    /// ExternalSecrets reconciled at the same time (ESO's `--concurrent`); 0: no limit.
    #[arg(long, env = "LOCKSTEP_CONCURRENT", default_value_t = 0)]
    pub concurrent: u16,

    /// Requests per second to the Kubernetes API server (sustained), as ESO's `--client-qps`.
    #[arg(long, env = "LOCKSTEP_CLIENT_QPS", default_value_t = 50.0)]
    pub client_qps: f64,

    /// Requests to the Kubernetes API server allowed in a burst above `--client-qps`.
    #[arg(long, env = "LOCKSTEP_CLIENT_BURST", default_value_t = 100)]
    pub client_burst: u32,

    /// Elect a leader on a coordination.k8s.io Lease: with several replicas only the leader
    /// reconciles and writes. `--leader-elect=false` for a single replica.
    #[arg(long, env = "LOCKSTEP_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: bool,

    /// The Lease's name (distinct from ESO's `external-secrets-controller`, so the two never
    /// contend for one lock).
    #[arg(
        long,
        env = "LOCKSTEP_LEADER_ELECTION_ID",
        default_value = "lockstep-controller"
    )]
    pub leader_election_id: String,

    /// The Lease's namespace. Empty: the Pod's own namespace in a cluster, else `--namespace`
    /// when set, else `default`.
    #[arg(long, env = "LOCKSTEP_LEADER_ELECTION_NAMESPACE", default_value = "")]
    pub leader_election_namespace: String,

    /// How long a Lease holds without renewal: a standby takes over at most this long after
    /// the leader died. SIGTERM releases it at once.
    #[arg(long, env = "LOCKSTEP_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_election_lease_duration: std::time::Duration,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::api::meta::GoDuration::new(text)
        .to_std()
        .map_err(|e| e.to_string())
}

/// Logs go to stderr; the level follows `RUST_LOG` (default `info`).
pub fn init_tracing(format: &LogFormat) {
    use tracing_subscriber::EnvFilter;
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = EnvFilter::try_new(log_directives(rust_log.as_deref()))
        .unwrap_or_else(|_| EnvFilter::new(log_directives(None)));
    use std::io::IsTerminal;
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// kube-runtime wraps every reconcile in an info-level span of its own ("reconciling object"),
/// entered and left on each poll of the task it spawns: a fifth of lockstep's CPU during a cold
/// start of 10,000 (BENCHMARKS.md, session 4). lockstep's own `reconcile` span names the
/// ExternalSecret already, so kube-runtime's controller logs only warnings unless `RUST_LOG`
/// says otherwise about `kube_runtime`.
const QUIET_KUBE_RUNTIME: &str = "kube_runtime::controller=warn";

/// The log filter's directives: `RUST_LOG` (`info` when unset), with [`QUIET_KUBE_RUNTIME`]
/// unless it names `kube_runtime`.
fn log_directives(rust_log: Option<&str>) -> String {
    let asked = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info");
    if asked.contains("kube_runtime") {
        asked.to_owned()
    } else {
        format!("{asked},{QUIET_KUBE_RUNTIME}")
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log file; names the first changed, removed or reordered
    /// record and exits 1, or prints a summary and exits 0.
    Verify {
        /// A file written by `--audit-log file:PATH` (or a receiver's copy of one stream).
        file: PathBuf,
    },
}

/// The audit log (docs/audit.md).
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Where audit records go: `stdout`, `file:PATH`, or an `http://` / `https://` URL that
    /// receives batched POSTs of JSON lines. Repeat for several sinks. None: auditing is off.
    #[arg(long = "audit-log", value_name = "SINK")]
    pub audit_log: Vec<crate::audit::sink::SinkSpec>,

    /// Only records about this namespace (repeatable). None: every namespace.
    #[arg(long = "audit-namespace", value_name = "NS")]
    pub audit_namespace: Vec<String>,

    /// Where HTTP sinks spool records until the receiver takes them (keep it on a volume that
    /// survives a restart).
    #[arg(
        long,
        env = "LOCKSTEP_AUDIT_SPOOL_DIR",
        default_value = "/var/lib/lockstep/audit-spool"
    )]
    pub audit_spool_dir: PathBuf,

    /// The most undelivered bytes an HTTP sink's spool holds.
    #[arg(long, env = "LOCKSTEP_AUDIT_SPOOL_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub audit_spool_max_bytes: u64,

    /// When a spool is full: `drop` keeps syncing and counts the records lost; `block` writes no
    /// Secret until the receiver takes records again.
    #[arg(long, env = "LOCKSTEP_AUDIT_SPOOL_FULL", value_enum, default_value_t = crate::audit::SpoolFullPolicy::Drop)]
    pub audit_spool_full: crate::audit::SpoolFullPolicy,

    /// A `file:` sink is rotated to PATH.1 when it would grow past this size.
    #[arg(long, env = "LOCKSTEP_AUDIT_FILE_MAX_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub audit_file_max_bytes: u64,

    /// How many rotated files (PATH.1 ... PATH.N) are kept.
    #[arg(long, env = "LOCKSTEP_AUDIT_FILE_KEEP", default_value_t = 5)]
    pub audit_file_keep: usize,

    /// The Secret, in lockstep's own namespace (`LOCKSTEP_NAMESPACE_SELF`, `POD_NAMESPACE`, else
    /// `default`), holding the key of the value fingerprints; created on first start.
    #[arg(
        long,
        env = "LOCKSTEP_AUDIT_KEY_SECRET",
        default_value = "lockstep-audit-key"
    )]
    pub audit_key_secret: String,
}

impl AuditArgs {
    pub fn settings(&self) -> crate::audit::AuditSettings {
        crate::audit::AuditSettings {
            sinks: self.audit_log.clone(),
            namespaces: self.audit_namespace.clone(),
            spool_dir: self.audit_spool_dir.clone(),
            spool_max_bytes: self.audit_spool_max_bytes,
            spool_full: self.audit_spool_full,
            file_max_bytes: self.audit_file_max_bytes,
            file_keep: self.audit_file_keep,
            key_secret: self.audit_key_secret.clone(),
            key_namespace: crate::audit::key::own_namespace(),
            dropped: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_runtime_reconcile_spans_are_off_unless_rust_log_names_kube_runtime() {
        assert_eq!(log_directives(None), "info,kube_runtime::controller=warn");
        assert_eq!(
            log_directives(Some(" ")),
            "info,kube_runtime::controller=warn"
        );
        assert_eq!(
            log_directives(Some("lockstep=debug,info")),
            "lockstep=debug,info,kube_runtime::controller=warn"
        );
        assert_eq!(
            log_directives(Some("kube_runtime=debug")),
            "kube_runtime=debug"
        );
        for directives in [log_directives(None), log_directives(Some("debug"))] {
            assert!(
                tracing_subscriber::EnvFilter::try_new(&directives).is_ok(),
                "{directives}"
            );
        }
    }
}
