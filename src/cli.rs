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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions of external-secrets.io (or write them to a directory).
    Crds(CrdsArgs),
    /// Run the controllers against the cluster in KUBECONFIG (or the in-cluster config).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing a YAML stream.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
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
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::api::meta::GoDuration::new(text)
        .to_std()
        .map_err(|e| e.to_string())
}

/// Logs go to stderr; the level follows `RUST_LOG` (default `info`).
pub fn init_tracing(format: &LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
