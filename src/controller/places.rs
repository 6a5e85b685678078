//! The places of the periodic refreshes under way, given out by the secret each one reads.
//!
//! A bound on refreshes under way keeps a wave of thousands from holding thousands of reconciles
//! (and the values they read) at once. But a plain semaphore splits the readers of one secret
//! into rounds: 1,250 ExternalSecrets due together over 125 secrets, 256 at a time, read most of
//! the 125 secrets again in every round, as each round's reads are gone before the next comes.
//! And places let in one at a time, as they come free, send a few secrets to each batch window.
//!
//! Here refreshes are let in by secret and a group at a time: up to a provider batch of secrets
//! with all their waiting readers, in the order their secrets first waited, once there is room
//! for the whole group. The refreshes due at one instant arrive within milliseconds of each
//! other, so the first of them waits [`GATHER`] for the rest before any is let in (nobody waits
//! for a refresh). A refresh of a secret that an admitted refresh is reading joins it at once
//! while there is room. So the readers of a batch of secrets reach the fetch layer together and
//! share one call.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;

use crate::fetch::BATCH;

/// How long the first refresh to wait gathers the others due with it before any is let in.
pub const GATHER: Duration = Duration::from_millis(100);

/// The places, shared by every refresh.
#[derive(Debug)]
pub struct Places {
    bound: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    taken: usize,
    /// Places taken, per secret.
    reading: HashMap<u64, usize>,
    /// The secrets waiting, in the order each first waited, and their waiting refreshes.
    order: VecDeque<u64>,
    waiting: HashMap<u64, Vec<oneshot::Sender<Place>>>,
    /// Whether refreshes are being gathered (none is let in until then).
    gathering: bool,
}

/// A place, given back when dropped.
#[derive(Debug)]
pub struct Place {
    places: Arc<Places>,
    secret: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.places.give_back(self.secret);
    }
}

impl Places {
    pub fn new(bound: usize) -> Arc<Self> {
        Arc::new(Self {
            bound: bound.max(1),
            state: Mutex::default(),
        })
    }

    /// A place for a refresh reading `secret` (a hash): now if the secret is being read and
    /// there is room, else in its group. `depth` counts the refreshes waiting.
    pub async fn enter(self: &Arc<Self>, secret: u64, depth: &Gauge) -> Option<Place> {
        let waiting = {
            let mut state = self.lock();
            if self.joins(&state, secret) {
                return Some(self.take(&mut state, secret));
            }
            let (tx, rx) = oneshot::channel();
            if !state.waiting.contains_key(&secret) {
                state.order.push_back(secret);
            }
            state.waiting.entry(secret).or_default().push(tx);
            if !state.gathering {
                state.gathering = true;
                // A task of its own, so that a waiting refresh that is cancelled cannot leave
                // the others waiting.
                let places = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(GATHER).await;
                    places.gathered();
                });
            }
            rx
        };
        let _waiting = super::context::lanes::Waiting::new(depth);
        waiting.await.ok()
    }

    /// A place now, or `None` (for a bounded controller, whose refresh must not wait holding
    /// one of its slots).
    pub fn try_enter(self: &Arc<Self>, secret: u64) -> Option<Place> {
        let mut state = self.lock();
        let free = state.taken < self.bound && state.order.is_empty();
        (free || self.joins(&state, secret)).then(|| self.take(&mut state, secret))
    }

    fn joins(&self, state: &State, secret: u64) -> bool {
        state.reading.contains_key(&secret) && state.taken < self.bound
    }

    fn take(self: &Arc<Self>, state: &mut State, secret: u64) -> Place {
        state.taken += 1;
        *state.reading.entry(secret).or_default() += 1;
        Place {
            places: self.clone(),
            secret,
        }
    }

    fn gathered(self: &Arc<Self>) {
        let mut unclaimed = Vec::new();
        {
            let mut state = self.lock();
            state.gathering = false;
            self.let_in(&mut state, &mut unclaimed);
        }
        drop(unclaimed);
    }

    fn give_back(self: &Arc<Self>, secret: u64) {
        // Places whose refresh stopped waiting come back here, to be dropped after the lock.
        let mut unclaimed = Vec::new();
        {
            let mut state = self.lock();
            state.taken -= 1;
            if let Some(n) = state.reading.get_mut(&secret) {
                *n -= 1;
                if *n == 0 {
                    state.reading.remove(&secret);
                }
            }
            if !state.gathering {
                self.let_in(&mut state, &mut unclaimed);
            }
        }
        drop(unclaimed);
    }

    /// Lets the waiting refreshes in, a group at a time, while there is room for the next group
    /// (or for half the bound, which keeps at least half the bound busy meanwhile).
    fn let_in(self: &Arc<Self>, state: &mut State, unclaimed: &mut Vec<Place>) {
        while let Some((secrets, readers)) = self.next_group(state)
            && self.bound.saturating_sub(state.taken) >= readers.min(self.half())
        {
            for _ in 0..secrets {
                let Some(next) = state.order.pop_front() else {
                    break;
                };
                let mut readers = state.waiting.remove(&next).unwrap_or_default();
                // As many as there is room for; the others stay first in line.
                let room = self.bound.saturating_sub(state.taken);
                let later = readers.split_off(readers.len().min(room));
                for tx in readers {
                    let place = self.take(state, next);
                    if let Err(place) = tx.send(place) {
                        unclaimed.push(place);
                    }
                }
                if !later.is_empty() {
                    state.waiting.insert(next, later);
                    state.order.push_front(next);
                    break;
                }
            }
        }
    }

    /// The next group of waiting secrets: how many of the first, and their readers. At most a
    /// batch of secrets, and no more readers than half the bound unless one secret has more.
    fn next_group(&self, state: &State) -> Option<(usize, usize)> {
        let mut group = (0, 0);
        for secret in state.order.iter().take(BATCH) {
            let readers = state.waiting.get(secret).map_or(0, Vec::len);
            if group.0 > 0 && group.1 + readers > self.half() {
                break;
            }
            group = (group.0 + 1, group.1 + readers);
        }
        (group.0 > 0).then_some(group)
    }

    /// The most readers a group of several secrets has, and the room a group waits for.
    fn half(&self) -> usize {
        (self.bound / 2).max(1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Places taken now.
    #[cfg(test)]
    fn taken(&self) -> usize {
        self.lock().taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refreshes of `secrets`, in this order, all waiting for a place; each sends its secret and
    /// place once admitted.
    async fn waiting(
        places: &Arc<Places>,
        depth: &Gauge,
        secrets: &[u64],
    ) -> tokio::sync::mpsc::UnboundedReceiver<(u64, Place)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let before = depth.get();
        for &secret in secrets {
            let (places, depth, tx) = (places.clone(), depth.clone(), tx.clone());
            tokio::spawn(async move {
                let place = places.enter(secret, &depth).await.unwrap();
                tx.send((secret, place)).unwrap();
            });
        }
        while depth.get() < before + secrets.len() as i64 {
            tokio::task::yield_now().await;
        }
        rx
    }

    /// The next `n` admitted, their secrets sorted.
    async fn admitted(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<(u64, Place)>,
        n: usize,
    ) -> (Vec<u64>, Vec<Place>) {
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(rx.recv().await.unwrap());
        }
        let mut secrets: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        secrets.sort_unstable();
        (secrets, got.into_iter().map(|(_, p)| p).collect())
    }

    /// Holds `n` places (secrets 100 and up), let in after the gathering.
    async fn hold(places: &Arc<Places>, depth: &Gauge, n: u64) -> Vec<Place> {
        let secrets: Vec<u64> = (100..100 + n).collect();
        admitted(&mut waiting(places, depth, &secrets).await, secrets.len())
            .await
            .1
    }

    #[tokio::test]
    async fn refreshes_due_together_are_gathered_then_let_in_by_secret() {
        let places = Places::new(8);
        let depth = Gauge::default();
        let started = std::time::Instant::now();
        let mut rx = waiting(&places, &depth, &[1, 2, 1, 3, 2]).await;
        tokio::task::yield_now().await;
        assert!(
            rx.try_recv().is_err(),
            "nobody is let in before the gathering ends"
        );
        // Half the bound is 4: 1 and 2 (two readers each) make the first group, 3 the second;
        // both fit, so all are let in.
        let (secrets, _held) = admitted(&mut rx, 5).await;
        assert!(started.elapsed() >= GATHER);
        assert_eq!(secrets, [1, 1, 2, 2, 3]);
        assert_eq!(places.taken(), 5);
        // A reader of a secret being read joins at once while there is room.
        let _joined = places.try_enter(1).expect("joins the read of secret 1");
        assert_eq!(places.taken(), 6);
    }

    #[tokio::test]
    async fn waiting_secrets_are_admitted_a_group_at_a_time_once_all_its_readers_fit() {
        let places = Places::new(8);
        let depth = Gauge::default();
        let mut held = hold(&places, &depth, 8).await;
        assert!(places.try_enter(7).is_none(), "full");
        // Secrets 1, 2 and 3 (one reader each) make a group; 4's two readers would take it past
        // half the bound, so 4 starts the next group.
        let mut rx = waiting(&places, &depth, &[1, 2, 3, 4, 4]).await;
        tokio::time::sleep(GATHER * 2).await;
        held.truncate(6);
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "room for two of the group's three");
        held.truncate(5);
        let (secrets, _group) = admitted(&mut rx, 3).await;
        assert_eq!(secrets, [1, 2, 3], "the group comes in together");
        assert_eq!(places.taken(), 8);
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "4's readers wait for room for both");
        held.truncate(4);
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "room for one of 4's two readers");
        held.truncate(3);
        let (secrets, _fours) = admitted(&mut rx, 2).await;
        assert_eq!(secrets, [4, 4]);
        assert_eq!(places.taken(), 8);
    }

    #[tokio::test]
    async fn no_more_refreshes_than_the_bound_are_let_in() {
        let places = Places::new(2);
        let depth = Gauge::default();
        let mut rx = waiting(&places, &depth, &[5, 5, 5]).await;
        let (_, first_two) = admitted(&mut rx, 2).await;
        assert!(places.try_enter(5).is_none(), "no joining past the bound");
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "the third reader of 5 waits");
        assert_eq!(places.taken(), 2);
        drop(first_two);
        assert!(rx.recv().await.is_some());
    }

    #[tokio::test]
    async fn a_refresh_that_stops_waiting_gives_its_place_back() {
        let places = Places::new(1);
        let depth = Gauge::default();
        let first = hold(&places, &depth, 1).await;
        let waiting = tokio::spawn({
            let (places, depth) = (places.clone(), depth.clone());
            async move { places.enter(2, &depth).await }
        });
        while depth.get() < 1 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        tokio::time::sleep(GATHER * 2).await;
        drop(first);
        assert_eq!(places.taken(), 0);
        assert!(places.try_enter(3).is_some());
    }

    #[tokio::test]
    async fn a_cancelled_first_waiter_does_not_stop_the_gathering() {
        let places = Places::new(4);
        let depth = Gauge::default();
        let first = tokio::spawn({
            let (places, depth) = (places.clone(), depth.clone());
            async move { places.enter(1, &depth).await }
        });
        while depth.get() < 1 {
            tokio::task::yield_now().await;
        }
        let mut rx = waiting(&places, &depth, &[2]).await;
        first.abort();
        let _ = first.await;
        let (secrets, _place) = admitted(&mut rx, 1).await;
        assert_eq!(secrets, [2]);
    }
}
