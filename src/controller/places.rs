//! The places of the periodic refreshes under way, given out by the secret each one reads.
//!
//! A bound on refreshes under way keeps a wave of thousands from holding thousands of reconciles
//! (and the values they read) at once. But a plain semaphore splits the readers of one secret
//! into rounds: 1,250 ExternalSecrets due together over 125 secrets, 256 at a time, read most of
//! the 125 secrets again in every round, as each round's reads are gone before the next comes.
//! Here a refresh of a secret that a refresh under way is reading takes a place at once, past
//! the bound (up to [`JOINERS`] times it), and refreshes that wait are admitted by secret: all
//! the waiting readers of one secret together, in the order their secrets first waited. So the
//! readers of a secret due together reach the fetch layer together and share one read.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;

/// How far past the bound readers of a secret already being read may join.
pub const JOINERS: usize = 2;

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

    /// A place for a refresh reading `secret` (a hash), now if one is free or the secret is
    /// being read, else in turn. `depth` counts the refreshes waiting.
    pub async fn enter(self: &Arc<Self>, secret: u64, depth: &Gauge) -> Option<Place> {
        let waiting = {
            let mut state = self.lock();
            if self.admits(&state, secret) {
                return Some(self.take(&mut state, secret));
            }
            let (tx, rx) = oneshot::channel();
            if !state.waiting.contains_key(&secret) {
                state.order.push_back(secret);
            }
            state.waiting.entry(secret).or_default().push(tx);
            rx
        };
        let _waiting = super::context::lanes::Waiting::new(depth);
        waiting.await.ok()
    }

    /// A place now, or `None` (for a bounded controller, whose refresh must not wait holding
    /// one of its slots).
    pub fn try_enter(self: &Arc<Self>, secret: u64) -> Option<Place> {
        let mut state = self.lock();
        self.admits(&state, secret)
            .then(|| self.take(&mut state, secret))
    }

    fn admits(&self, state: &State, secret: u64) -> bool {
        let free = state.taken < self.bound && state.order.is_empty();
        let joins = state.reading.contains_key(&secret) && state.taken < self.bound * JOINERS;
        free || joins
    }

    fn take(self: &Arc<Self>, state: &mut State, secret: u64) -> Place {
        state.taken += 1;
        *state.reading.entry(secret).or_default() += 1;
        Place {
            places: self.clone(),
            secret,
        }
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
            // The next waiting secret's readers together, once a place is free (as many as may
            // join; the others stay first in line).
            while state.taken < self.bound
                && let Some(next) = state.order.pop_front()
            {
                let mut readers = state.waiting.remove(&next).unwrap_or_default();
                let room = self.bound * JOINERS - state.taken;
                let later = readers.split_off(readers.len().min(room));
                for tx in readers {
                    let place = self.take(&mut state, next);
                    if let Err(place) = tx.send(place) {
                        unclaimed.push(place);
                    }
                }
                if !later.is_empty() {
                    state.waiting.insert(next, later);
                    state.order.push_front(next);
                }
            }
        }
        drop(unclaimed);
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

    #[tokio::test]
    async fn readers_of_a_secret_being_read_join_past_the_bound() {
        let places = Places::new(2);
        let depth = Gauge::default();
        let a = places.enter(1, &depth).await.unwrap();
        let _b = places.enter(2, &depth).await.unwrap();
        // Full: a reader of secret 1 joins (up to twice the bound), a reader of 3 waits.
        let _a2 = places.try_enter(1).expect("joins the read of secret 1");
        assert!(places.try_enter(3).is_none());
        let _a3 = places.try_enter(1).expect("joins, at twice the bound");
        assert!(
            places.try_enter(1).is_none(),
            "no further than twice the bound"
        );
        assert_eq!(places.taken(), 4);
        drop(a);
        assert_eq!(places.taken(), 3);
    }

    /// Refreshes of `secrets`, in this order, all waiting for a place; each sends its secret and
    /// place once admitted.
    async fn waiting(
        places: &Arc<Places>,
        depth: &Gauge,
        secrets: &[u64],
    ) -> tokio::sync::mpsc::UnboundedReceiver<(u64, Place)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for &secret in secrets {
            let (places, depth, tx) = (places.clone(), depth.clone(), tx.clone());
            tokio::spawn(async move {
                let place = places.enter(secret, &depth).await.unwrap();
                tx.send((secret, place)).unwrap();
            });
        }
        while depth.get() < secrets.len() as i64 {
            tokio::task::yield_now().await;
        }
        rx
    }

    #[tokio::test]
    async fn waiting_readers_of_one_secret_are_admitted_together_in_order() {
        let places = Places::new(2);
        let depth = Gauge::default();
        let first = places.enter(9, &depth).await.unwrap();
        let second = places.enter(8, &depth).await.unwrap();
        // Waiting, in this order: a reader of 5, a reader of 7, two more readers of 5.
        let mut rx = waiting(&places, &depth, &[5, 7, 5, 5]).await;
        drop(first);
        // All three readers of 5 are admitted at once, past the bound of two; 7 waits.
        let mut fives = Vec::new();
        for _ in 0..3 {
            fives.push(rx.recv().await.unwrap());
        }
        assert!(fives.iter().all(|(s, _)| *s == 5), "{fives:?}");
        assert_eq!(places.taken(), 4);
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "7 still waits");
        drop(fives);
        drop(second);
        let (secret, _place) = rx.recv().await.unwrap();
        assert_eq!(secret, 7);
        assert_eq!(places.taken(), 1);
    }

    #[tokio::test]
    async fn no_more_readers_than_twice_the_bound_are_admitted_at_once() {
        let places = Places::new(1);
        let depth = Gauge::default();
        let first = places.enter(9, &depth).await.unwrap();
        let mut rx = waiting(&places, &depth, &[5, 5, 5]).await;
        drop(first);
        let (a, b) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "the third reader of 5 waits");
        assert_eq!(places.taken(), 2);
        drop((a, b));
        assert!(rx.recv().await.is_some());
    }

    #[tokio::test]
    async fn a_refresh_that_stops_waiting_gives_its_place_back() {
        let places = Places::new(1);
        let depth = Gauge::default();
        let first = places.enter(1, &depth).await.unwrap();
        let waiting = tokio::spawn({
            let (places, depth) = (places.clone(), depth.clone());
            async move { places.enter(2, &depth).await }
        });
        while depth.get() < 1 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        drop(first);
        assert_eq!(places.taken(), 0);
        assert!(places.try_enter(3).is_some());
    }
}
