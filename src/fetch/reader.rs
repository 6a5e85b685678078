//! Reads through one store identity, shared by every ExternalSecret that uses it.
//!
//! - Coalescing: reads of the same remote secret and version that arrive within a short window
//!   of each other wait for one provider call and each get a copy of its answer. Only reads that
//!   have not been sent yet are joined, so every answer was read after it was asked for (a
//!   force-sync never gets a value read before it). The window is [`FIRST_WINDOW`] for first
//!   syncs, where someone waits, and [`REFRESH_WINDOW`] for refreshes, where nobody does and a
//!   longer window gathers more of a refresh wave into each call.
//! - Batching: distinct reads go to the provider [`BATCH`] at a time, through `get_many` (for
//!   AWS one BatchGetSecretValue); each caller receives the answer or the error of its own
//!   secret only. Each batch has its own window. A first sync's batch leaves when full; a
//!   refresh's stays open for the rest of its window, for the other readers of its secrets,
//!   while new secrets open the next batch.
//! - Budget: each batch, and each `find`, spends one token of the store's [`Budget`].
//! - Lanes: first syncs and refreshes are batched separately, and first syncs' batches take
//!   tokens first.
//!
//! A reader lives as long as its credentials in the [`ClientCache`](super::ClientCache); reads
//! of different identities (another namespace's referent auth) never share an answer, because
//! the other identity may not be allowed to read it. Answers are handed over and dropped: the
//! reader keeps no value once its callers have theirs.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockstep_provider_api::{
    ErrorClass, Fetched, FindQuery, ProviderError, RemoteRef, SecretProvider, SecretValue,
};
use tokio::sync::oneshot;

use super::Lane;
use super::budget::Budget;

/// How long a first sync's read waits for others to join its batch.
pub const FIRST_WINDOW: Duration = Duration::from_millis(20);
/// How long a refresh's read waits for others to join its batch.
pub const REFRESH_WINDOW: Duration = Duration::from_millis(500);
/// Distinct secrets per batch: what one BatchGetSecretValue reads.
pub const BATCH: usize = 20;

type Answer = Result<Fetched, ProviderError>;

/// The reads of one lane waiting for their batch to leave.
#[derive(Default)]
struct Pending {
    /// Finds the batch for its timer (unless it already left full).
    id: u64,
    order: Vec<RemoteRef>,
    waiters: HashMap<RemoteRef, Vec<oneshot::Sender<Answer>>>,
}

struct Inner {
    provider: Arc<dyn SecretProvider>,
    budget: Arc<Budget>,
    /// Per lane, the batches still open, oldest first.
    pending: Mutex<[Vec<Pending>; 2]>,
    next_id: AtomicU64,
    /// Batches sent to the provider (for tests and metrics).
    batches: AtomicU64,
}

/// A cheap handle; clones share the batches and the budget.
#[derive(Clone)]
pub struct Reader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("batches", &self.batches())
            .finish_non_exhaustive()
    }
}

impl Reader {
    pub fn new(provider: Arc<dyn SecretProvider>, budget: Arc<Budget>) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                budget,
                pending: Mutex::default(),
                next_id: AtomicU64::new(1),
                batches: AtomicU64::new(0),
            }),
        }
    }

    /// The provider itself, for what is not a read (validation).
    pub fn provider(&self) -> &Arc<dyn SecretProvider> {
        &self.inner.provider
    }

    /// Batches sent to the provider so far.
    pub fn batches(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }

    /// Reads `remotes`; the answer at `i` is for `remotes[i]`.
    pub async fn get_many(&self, remotes: &[RemoteRef], lane: Lane) -> Vec<Answer> {
        let receivers: Vec<_> = remotes.iter().map(|r| self.enqueue(r, lane)).collect();
        futures::future::join_all(receivers.into_iter().map(|rx| async move {
            rx.await.unwrap_or_else(|_| {
                Err(ProviderError::new(
                    ErrorClass::Unavailable,
                    "the provider call was cancelled before it answered; lockstep retries",
                ))
            })
        }))
        .await
    }

    /// `dataFrom.find`, within the store's budget.
    pub async fn find(
        &self,
        query: &FindQuery,
        lane: Lane,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        self.inner.budget.acquire(lane).await?;
        let found = self.inner.provider.find(query).await;
        if let Err(e) = &found {
            self.inner.budget.read_failed(e.class);
        }
        self.inner
            .note(found.as_ref().err().map(|e| (e.class, e.retry_after)));
        found
    }

    fn enqueue(&self, remote: &RemoteRef, lane: Lane) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        let open = &mut pending[lane as usize];
        // The batch that already reads this secret, else the newest one with room, else a new
        // one with a window of its own.
        let joined = open
            .iter()
            .position(|b| b.waiters.contains_key(remote))
            .or_else(|| {
                open.len()
                    .checked_sub(1)
                    .filter(|&i| open[i].order.len() < BATCH)
            });
        let at = joined.unwrap_or_else(|| {
            open.push(self.open_batch(lane));
            open.len() - 1
        });
        let batch = &mut open[at];
        let waiters = batch.waiters.entry(remote.clone()).or_default();
        if waiters.is_empty() {
            batch.order.push(remote.clone());
        }
        waiters.push(tx);
        // A first sync's batch leaves as soon as it is full: someone is waiting. A refresh's
        // stays open until its window ends, so that every reader of its secrets that comes due
        // meanwhile joins it (sent when full, a latecomer's read would be a call of its own);
        // new secrets go to the next batch.
        if lane == Lane::First && batch.order.len() >= BATCH {
            let full = open.remove(at);
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.send(full, lane).await });
        }
        rx
    }

    /// A new, empty batch, and the timer that sends it when its window ends (unless it left
    /// full before).
    fn open_batch(&self, lane: Lane) -> Pending {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(match lane {
                Lane::First => FIRST_WINDOW,
                Lane::Refresh => REFRESH_WINDOW,
            })
            .await;
            let due = {
                let mut pending = inner.pending.lock().unwrap_or_else(|p| p.into_inner());
                let open = &mut pending[lane as usize];
                let at = open.iter().position(|b| b.id == id);
                at.map(|at| open.remove(at))
            };
            if let Some(batch) = due {
                inner.send(batch, lane).await;
            }
        });
        Pending {
            id,
            ..Pending::default()
        }
    }
}

impl Inner {
    /// Sends one batch and hands each answer to the callers that asked for it.
    async fn send(&self, mut batch: Pending, lane: Lane) {
        let answers = match self.budget.acquire(lane).await {
            Ok(()) => {
                self.batches.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    ?lane,
                    secrets = batch.order.len(),
                    readers = batch.waiters.values().map(Vec::len).sum::<usize>(),
                    "provider batch"
                );
                let answers = self.provider.get_many(&batch.order).await;
                let throttled = answers.iter().find_map(|a| match a {
                    Err(e) if e.class == ErrorClass::Throttled => Some((e.class, e.retry_after)),
                    _ => None,
                });
                self.note(throttled);
                answers
            }
            Err(refused) => batch.order.iter().map(|_| Err(refused.clone())).collect(),
        };
        for (remote, answer) in batch.order.iter().zip(answers) {
            if let Err(e) = &answer {
                self.budget.read_failed(e.class);
            }
            let Some(waiters) = batch.waiters.remove(remote) else {
                continue;
            };
            let mut waiters = waiters.into_iter().peekable();
            while let Some(tx) = waiters.next() {
                // The last caller gets the answer itself, the others a copy. A caller that gave
                // up (its reconcile ended) is skipped.
                let answer = if waiters.peek().is_some() {
                    answer.clone()
                } else {
                    let _ = tx.send(answer);
                    break;
                };
                let _ = tx.send(answer);
            }
        }
    }

    /// Adjusts the budget after a call: `Some` when it failed, with the class and asked delay.
    fn note(&self, failure: Option<(ErrorClass, Option<Duration>)>) {
        match failure {
            Some((ErrorClass::Throttled, retry_after)) => self.budget.throttled(retry_after),
            _ => self.budget.succeeded(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_provider_api::{Capabilities, Validation, VersionInfo};
    use std::sync::atomic::AtomicUsize;

    /// Answers `value-of-<key>`, "missing" for keys starting with `missing`, and "throttled"
    /// for keys starting with `slow`; counts its calls and what each call asked.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        asked: Mutex<Vec<Vec<String>>>,
    }

    #[async_trait::async_trait]
    impl SecretProvider for Counting {
        async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError> {
            if remote.key.starts_with("missing") {
                return Err(ProviderError::not_found(format!("{} is gone", remote.key)));
            }
            if remote.key.starts_with("slow") {
                return Err(ProviderError::new(ErrorClass::Throttled, "slow down"));
            }
            let version = remote.version.clone().unwrap_or_default();
            Ok(Fetched {
                value: SecretValue::from(format!("value-of-{}{version}", remote.key)),
                version: VersionInfo::default(),
            })
        }
        async fn get_many(&self, remotes: &[RemoteRef]) -> Vec<Result<Fetched, ProviderError>> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.asked
                .lock()
                .unwrap()
                .push(remotes.iter().map(|r| r.key.clone()).collect());
            let mut out = Vec::new();
            for r in remotes {
                out.push(self.get(r).await);
            }
            out
        }
        async fn get_map(
            &self,
            _: &RemoteRef,
        ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
            unimplemented!()
        }
        async fn find(
            &self,
            _: &FindQuery,
        ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
            Ok(BTreeMap::new())
        }
        async fn put(&self, _: &RemoteRef, _: &SecretValue) -> Result<(), ProviderError> {
            unimplemented!()
        }
        async fn delete(&self, _: &RemoteRef) -> Result<(), ProviderError> {
            unimplemented!()
        }
        async fn validate(&self) -> Result<Validation, ProviderError> {
            Ok(Validation::Ready)
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::ReadOnly
        }
    }

    fn key(k: &str) -> RemoteRef {
        RemoteRef {
            key: k.into(),
            ..Default::default()
        }
    }

    fn reader() -> (Reader, Arc<Counting>, Arc<Budget>) {
        let provider = Arc::new(Counting::default());
        let budget = Arc::new(Budget::new("SecretStore/ns/s", Default::default()));
        (
            Reader::new(provider.clone(), budget.clone()),
            provider,
            budget,
        )
    }

    fn text(answer: &Answer) -> String {
        String::from_utf8(answer.as_ref().unwrap().value.expose().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn concurrent_readers_of_one_secret_share_one_call() {
        let (reader, provider, _) = reader();
        let reads = (0..50).map(|_| {
            let reader = reader.clone();
            async move { reader.get_many(&[key("db")], Lane::Refresh).await }
        });
        let answers = futures::future::join_all(reads).await;
        assert!(answers.iter().all(|a| text(&a[0]) == "value-of-db"));
        assert_eq!(provider.calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn each_caller_gets_exactly_its_own_secrets() {
        let (reader, provider, _) = reader();
        // 30 callers, each asking for two of 40 secrets: 40 distinct reads, 2 batches.
        let reads = (0..30).map(|i| {
            let reader = reader.clone();
            async move {
                let asked = [
                    key(&format!("s{}", i % 40)),
                    key(&format!("s{}", (i + 13) % 40)),
                ];
                let answers = reader.get_many(&asked, Lane::Refresh).await;
                (i, answers)
            }
        });
        for (i, answers) in futures::future::join_all(reads).await {
            assert_eq!(text(&answers[0]), format!("value-of-s{}", i % 40));
            assert_eq!(text(&answers[1]), format!("value-of-s{}", (i + 13) % 40));
        }
        let asked = provider.asked.lock().unwrap();
        for batch in asked.iter() {
            let distinct: std::collections::BTreeSet<&String> = batch.iter().collect();
            assert_eq!(
                distinct.len(),
                batch.len(),
                "a secret read twice in one call"
            );
            assert!(batch.len() <= BATCH, "{asked:?}");
        }
        // 60 reads of 40 secrets: at most 60 / 20 calls, however the reads fall into windows.
        assert!(
            provider.calls.load(Ordering::Relaxed) <= 3,
            "{} calls: {asked:?}",
            asked.len()
        );
    }

    #[tokio::test]
    async fn a_full_refresh_batch_waits_for_latecomers_in_its_window() {
        let (reader, provider, _) = reader();
        // Twenty distinct secrets fill a batch; a second reader of each comes 50 ms later,
        // well inside the refresh window, and must share the first one's call.
        let keys: Vec<RemoteRef> = (0..BATCH).map(|i| key(&format!("s{i}"))).collect();
        let early = reader.get_many(&keys, Lane::Refresh);
        let late = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            reader.get_many(&keys, Lane::Refresh).await
        };
        let (early, late) = tokio::join!(early, late);
        for (i, (a, b)) in early.iter().zip(&late).enumerate() {
            assert_eq!(text(a), format!("value-of-s{i}"));
            assert_eq!(text(b), format!("value-of-s{i}"));
        }
        assert_eq!(provider.calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_refresh_window_is_sent_twenty_secrets_per_call() {
        let (reader, provider, _) = reader();
        let keys: Vec<RemoteRef> = (0..45).map(|i| key(&format!("s{i}"))).collect();
        let answers = reader.get_many(&keys, Lane::Refresh).await;
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(text(a), format!("value-of-s{i}"));
        }
        let mut sizes: Vec<usize> = provider
            .asked
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [5, 20, 20]);
    }

    #[tokio::test]
    async fn versions_are_different_reads() {
        let (reader, _, _) = reader();
        let current = key("db");
        let previous = RemoteRef {
            version: Some("AWSPREVIOUS".into()),
            ..key("db")
        };
        let answers = reader.get_many(&[current, previous], Lane::First).await;
        assert_eq!(text(&answers[0]), "value-of-db");
        assert_eq!(text(&answers[1]), "value-of-dbAWSPREVIOUS");
    }

    #[tokio::test]
    async fn one_secrets_error_reaches_only_its_callers() {
        let (reader, provider, _) = reader();
        let (first, second) = ([key("ok1"), key("missing-x")], [key("ok2")]);
        let (a, b) = tokio::join!(
            reader.get_many(&first, Lane::Refresh),
            reader.get_many(&second, Lane::Refresh),
        );
        assert_eq!(provider.calls.load(Ordering::Relaxed), 1, "one batch");
        assert_eq!(text(&a[0]), "value-of-ok1");
        assert_eq!(a[1].as_ref().unwrap_err().class, ErrorClass::NotFound);
        assert_eq!(text(&b[0]), "value-of-ok2");
    }

    #[tokio::test]
    async fn a_later_read_is_not_answered_by_an_earlier_call() {
        let (reader, provider, _) = reader();
        reader.get_many(&[key("db")], Lane::Refresh).await;
        reader.get_many(&[key("db")], Lane::Refresh).await;
        assert_eq!(provider.calls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn throttling_slows_the_budget_down() {
        let (reader, _, budget) = reader();
        let before = budget.rate();
        let answers = reader.get_many(&[key("slow")], Lane::Refresh).await;
        assert_eq!(
            answers[0].as_ref().unwrap_err().class,
            ErrorClass::Throttled
        );
        assert!(budget.rate() < before);
        let after_throttle = budget.rate();
        reader.get_many(&[key("fine")], Lane::Refresh).await;
        assert!(budget.rate() > after_throttle, "and speeds up again");
    }
}
