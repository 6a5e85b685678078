//! The audit log: one value-free record per operation lockstep performs (a provider read, a
//! credential exchange, a Secret written or deleted, a write refused by a guard), shaped like
//! Kubernetes' `audit.k8s.io/v1` Event, hash-chained per sink, sent to stdout, a file or an HTTP
//! endpoint. `docs/audit.md` describes the format.
pub mod chain;
pub mod fingerprint;
pub mod key;
pub mod record;
pub mod sink;
pub mod trigger;
pub mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use fingerprint::FingerprintKey;
pub use record::{Draft, Record, Trigger, User, Verb};
use sink::{FileSink, HttpSink, Sink, SinkError, SinkSpec};

/// What happens when an HTTP sink's spool is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SpoolFullPolicy {
    /// Keep syncing; count the records that could not be kept.
    #[default]
    Drop,
    /// Write no Secret until the receiver takes records again.
    Block,
}

/// How auditing is configured (`lockstep run --audit-*`).
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub sinks: Vec<SinkSpec>,
    /// Only records about these namespaces; empty: all.
    pub namespaces: Vec<String>,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub spool_full: SpoolFullPolicy,
    pub file_max_bytes: u64,
    pub file_keep: usize,
    /// The Secret holding the fingerprint key, in `key_namespace`.
    pub key_secret: String,
    pub key_namespace: String,
    /// Counts records a sink could not keep; exported as `lockstep_audit_records_dropped_total`.
    pub dropped: prometheus_client::metrics::counter::Counter,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Key(#[from] key::KeyStoreError),
}

/// The handle every reconcile shares; a disabled auditor does nothing and costs nothing.
#[derive(Debug, Clone, Default)]
pub struct Auditor(Option<Arc<Inner>>);

#[derive(Debug)]
struct Inner {
    key: FingerprintKey,
    user: User,
    namespaces: Vec<String>,
    sinks: Vec<Sink>,
    policy: SpoolFullPolicy,
    spool_max_bytes: u64,
    dropped: prometheus_client::metrics::counter::Counter,
    file_failing: AtomicBool,
    /// The objects looked at since start, to tell a start-up sync from a periodic one.
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Room kept in a spool before the strict policy stops writes, so the refusal can be recorded.
const STRICT_HEADROOM: u64 = 64 * 1024;

impl Auditor {
    pub fn disabled() -> Self {
        Self(None)
    }

    /// Reads (or creates) the fingerprint key and opens every sink; any sink that cannot be
    /// written fails the start, with the path or URL in the message.
    pub async fn start(
        client: &kube::Client,
        settings: &AuditSettings,
    ) -> Result<Self, StartError> {
        if settings.sinks.is_empty() {
            return Ok(Self::disabled());
        }
        // Sinks first: a read-only path is reported before anything is written to the cluster.
        let mut sinks = Vec::new();
        for spec in &settings.sinks {
            sinks.push(match spec {
                SinkSpec::Stdout => Sink::Stdout(Default::default()),
                SinkSpec::File(path) => Sink::File(std::sync::Mutex::new(FileSink::open(
                    path,
                    settings.file_max_bytes,
                    settings.file_keep,
                )?)),
                SinkSpec::Http(url) => Sink::Http(HttpSink::start(
                    url,
                    &SinkSpec::spool_dir(url, &settings.spool_dir),
                    settings.spool_max_bytes,
                )?),
            });
        }
        let key =
            key::load_or_create(client, &settings.key_namespace, &settings.key_secret).await?;
        let user = key::whoami(client).await;
        tracing::info!(
            sinks = %sinks.iter().map(Sink::name).collect::<Vec<_>>().join(","),
            key = %format!("{}/{}", settings.key_namespace, settings.key_secret),
            user = %user.username,
            "audit log on"
        );
        Ok(Self::from_parts(key, user, settings, sinks))
    }

    fn from_parts(
        key: FingerprintKey,
        user: User,
        settings: &AuditSettings,
        sinks: Vec<Sink>,
    ) -> Self {
        Self(Some(Arc::new(Inner {
            key,
            user,
            namespaces: settings.namespaces.clone(),
            sinks,
            policy: settings.spool_full,
            spool_max_bytes: settings.spool_max_bytes,
            dropped: settings.dropped.clone(),
            file_failing: AtomicBool::new(false),
            seen: Default::default(),
        })))
    }

    /// Whether records about `namespace` are kept (`None`: not about one namespace).
    pub fn covers(&self, namespace: Option<&str>) -> bool {
        match &self.0 {
            None => false,
            Some(inner) => {
                inner.namespaces.is_empty()
                    || namespace.is_none_or(|ns| inner.namespaces.iter().any(|n| n == ns))
            }
        }
    }

    /// The keyed fingerprints of `values`; empty when auditing is off.
    pub fn fingerprints<'a>(
        &self,
        values: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> BTreeMap<String, String> {
        let Some(inner) = &self.0 else {
            return BTreeMap::new();
        };
        values
            .into_iter()
            .map(|(k, v)| (k.to_owned(), inner.key.fingerprint(v)))
            .collect()
    }

    /// Writes the record to every sink, durably, before returning.
    pub fn emit(&self, draft: Draft) {
        let Some(inner) = &self.0 else {
            return;
        };
        if !self.covers(draft.namespace()) {
            return;
        }
        let record = draft.complete(uuid::Uuid::now_v7().to_string(), inner.user.clone());
        // Writes are synced to disk before the operation goes on; on a multi-threaded runtime
        // the other reconciles keep running meanwhile.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.write_all(inner, record));
        } else {
            self.write_all(inner, record);
        }
    }

    fn write_all(&self, inner: &Inner, record: Record) {
        for sink in &inner.sinks {
            match sink.write(record.clone()) {
                Ok(()) => {
                    if matches!(sink, Sink::File(_)) {
                        inner.file_failing.store(false, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    if matches!(sink, Sink::File(_)) {
                        inner.file_failing.store(true, Ordering::Relaxed);
                    }
                    let dropped = inner.dropped.inc() + 1;
                    if dropped == 1 || dropped.is_multiple_of(100) {
                        tracing::warn!(sink = %sink.name(), error = %e, dropped, "audit record dropped");
                    }
                }
            }
        }
    }

    /// Whether this is the first look at object `uid` since lockstep started.
    pub fn first_look(&self, uid: &str) -> bool {
        self.0.as_ref().is_some_and(|i| {
            i.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(uid.to_owned())
        })
    }

    /// Records that a sink could not keep, since start.
    pub fn dropped(&self) -> u64 {
        self.0.as_ref().map_or(0, |i| i.dropped.get())
    }

    /// Under `--audit-spool-full=block`, why Secrets may not be written now.
    pub fn blocks_writes(&self) -> Option<String> {
        let inner = self.0.as_ref()?;
        if inner.policy != SpoolFullPolicy::Block {
            return None;
        }
        if inner.file_failing.load(Ordering::Relaxed) {
            return Some("the audit log file cannot be written".into());
        }
        let limit = inner.spool_max_bytes.saturating_sub(STRICT_HEADROOM);
        inner.sinks.iter().find_map(|s| match s {
            Sink::Http(h) if h.pending() >= limit => Some(format!(
                "the audit receiver {} is not taking records and its spool is full",
                h.url()
            )),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::ObjectRef;

    fn for_tests(sinks: Vec<Sink>, policy: SpoolFullPolicy, spool_max_bytes: u64) -> Auditor {
        let settings = AuditSettings {
            sinks: vec![],
            namespaces: vec![],
            spool_dir: PathBuf::new(),
            spool_max_bytes,
            spool_full: policy,
            file_max_bytes: 0,
            file_keep: 0,
            key_secret: String::new(),
            key_namespace: String::new(),
            dropped: Default::default(),
        };
        let key = FingerprintKey::new(vec![7; fingerprint::KEY_BYTES]).unwrap();
        Auditor::from_parts(key, User::default(), &settings, sinks)
    }

    fn file_sink(dir: &std::path::Path) -> Sink {
        Sink::File(std::sync::Mutex::new(
            FileSink::open(&dir.join("a.log"), 1 << 20, 2).unwrap(),
        ))
    }

    #[test]
    fn a_disabled_auditor_does_nothing() {
        let a = Auditor::disabled();
        assert!(!a.covers(None));
        assert!(a.fingerprints([("k", b"v".as_slice())]).is_empty());
        a.emit(Draft::new(Verb::Get, Trigger::Periodic));
        assert_eq!(a.dropped(), 0);
        assert_eq!(a.blocks_writes(), None);
    }

    #[test]
    fn records_reach_the_file_filtered_by_namespace() {
        let dir = std::env::temp_dir().join(format!("lockstep-auditor-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = for_tests(vec![file_sink(&dir)], SpoolFullPolicy::Drop, 1 << 20);
        if let Some(inner) = a.0.as_mut().and_then(Arc::get_mut) {
            inner.namespaces = vec!["team".into()];
        }
        for ns in ["team", "other"] {
            let mut d = Draft::new(Verb::Get, Trigger::Periodic);
            d.object_ref = Some(ObjectRef {
                namespace: ns.into(),
                ..Default::default()
            });
            d.fingerprints = a.fingerprints([("password", b"hunter2".as_slice())]);
            a.emit(d);
        }
        let text = std::fs::read_to_string(dir.join("a.log")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"namespace\":\"team\""));
        assert!(!text.contains("hunter2"));
        assert!(text.contains("hmac-sha256:"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn records_a_full_spool_cannot_keep_are_counted_for_the_metric() {
        let dir = std::env::temp_dir().join(format!("lockstep-auditor-{}", uuid::Uuid::now_v7()));
        // A receiver that is not there and a spool with no room: under Drop, records are lost.
        let sink = HttpSink::start("http://127.0.0.1:1/", &dir, 1).unwrap();
        let a = for_tests(vec![Sink::Http(sink)], SpoolFullPolicy::Drop, 1);
        let exported = a.0.as_ref().map(|i| i.dropped.clone()).unwrap();
        for _ in 0..3 {
            a.emit(Draft::new(Verb::Get, Trigger::Periodic));
        }
        assert_eq!(a.dropped(), 3);
        assert_eq!(
            exported.get(),
            3,
            "the metric's counter is the one the auditor increments"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
