//! When an ExternalSecret must be fetched again (ESO's `shouldRefresh`), when to look next, and
//! in which lane it waits.
//!
//! Periodic refreshes follow a schedule: once per interval, at the instant of the
//! ExternalSecret's [slot](SLOTS) in each interval (the slots divide the interval into
//! [`SLOTS`] equal parts). A refresh is due at the first instant of its slot at least half an
//! interval after the last sync. So a refresh that comes late (a wave that takes a while) keeps
//! its place, and the next one comes a full interval after the instant it was due; only the
//! first refresh after a first sync or a spec change waits between half an interval and one and
//! a half. A fleet created together (or on the default `1h`) is spread over the slots instead of
//! coming due at once forever after.
//!
//! The slot is chosen by the first secret the ExternalSecret reads ([`Slots`]): ExternalSecrets
//! that read the same secret come due at the same instants, even when they were created hours
//! apart, so their reads are coalesced into one call. And a store's secrets are dealt to the
//! slots [`BATCH`] at a time, so each slot's reads fill whole batches: a refresh cycle of M
//! secrets costs ceil(M / 20) calls, not one per slot that holds a few.
use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::external_secret::{ExternalSecret, RefreshPolicy};
use crate::api::meta::StoreKind;
use crate::fetch::{BATCH, Lane};

/// How many instants each interval has, one per slot.
pub const SLOTS: u64 = 8;

/// Whether the ExternalSecret's data must be fetched now, given the `syncedResourceVersion` its
/// current generation, labels and annotations would have.
/// `slot` is the ExternalSecret's slot ([`Slots::of`]).
pub fn should_refresh(
    es: &ExternalSecret,
    slot: u64,
    current_version: &str,
    now: Timestamp,
) -> bool {
    let status = es.status.as_ref();
    let synced_version = status
        .and_then(|s| s.synced_resource_version.as_deref())
        .unwrap_or_default();
    let refresh_time = status.and_then(|s| s.refresh_time.as_ref()).map(|t| t.0);
    let never_synced = synced_version.is_empty() || refresh_time.is_none();
    if never_synced {
        return true;
    }
    let spec_changed = synced_version != current_version;
    match es.spec.refresh_policy_or_default() {
        RefreshPolicy::CreatedOnce => false,
        RefreshPolicy::OnChange => spec_changed,
        RefreshPolicy::Periodic => {
            if interval(es).is_none() {
                // `0` means fetch once: even a spec change does not fetch again (as ESO).
                return false;
            }
            if spec_changed {
                return true;
            }
            match refresh_time {
                Some(last) if last <= now => due_at(es, slot, last).is_none_or(|due| due <= now),
                // A refresh time in the future (clock skew, restored backup) is not trusted.
                _ => true,
            }
        }
    }
}

/// The refresh interval; `None` for `0` (fetch once) or an unparseable value.
pub fn interval(es: &ExternalSecret) -> Option<SignedDuration> {
    let d = es
        .spec
        .refresh_interval
        .to_std()
        .ok()
        .filter(|d| !d.is_zero())?;
    SignedDuration::try_from(d).ok()
}

/// The lane of a fetch: `First` for an ExternalSecret never synced, or whose spec, labels or
/// annotations changed since (someone is waiting for it); `Refresh` when only time passed.
pub fn lane(es: &ExternalSecret, current_version: &str) -> Lane {
    let status = es.status.as_ref();
    let synced_version = status
        .and_then(|s| s.synced_resource_version.as_deref())
        .unwrap_or_default();
    let never_synced =
        synced_version.is_empty() || status.and_then(|s| s.refresh_time.as_ref()).is_none();
    if never_synced || synced_version != current_version {
        Lane::First
    } else {
        Lane::Refresh
    }
}

/// When a periodic refresh is due after a sync at `last`, in slot `slot` (see the module
/// comment): the first instant `k * interval + slot * interval / SLOTS` at least half an
/// interval after `last`. `None` without an interval.
pub fn due_at(es: &ExternalSecret, slot: u64, last: Timestamp) -> Option<Timestamp> {
    let interval = interval(es)?.as_nanos();
    let phase = interval * i128::from(slot % SLOTS) / i128::from(SLOTS);
    let e = last.as_nanosecond() + interval / 2 - phase;
    let k = e.div_euclid(interval) + i128::from(e.rem_euclid(interval) != 0);
    Timestamp::from_nanosecond(k * interval + phase).ok()
}

/// The refresh slot of every ExternalSecret, from the secrets all of them read.
///
/// Each store's distinct first secrets are sorted by hash and dealt to the slots in runs of
/// [`BATCH`]: run `r` goes to slot `r % SLOTS`. A slot then holds whole batches of secrets (100
/// secrets fill 5 slots with 20 each, not 8 slots with about 12), and adding a secret moves at
/// most one secret per run to the next run. An ExternalSecret whose secret is not indexed yet
/// (created since) takes the slot its secret's hash gives until the next index.
#[derive(Debug, Default)]
pub struct Slots {
    /// Per store, the distinct hashes of the first secrets its ExternalSecrets read, sorted.
    by_store: HashMap<u64, Vec<u64>>,
}

impl Slots {
    pub fn new<'a>(external_secrets: impl IntoIterator<Item = &'a ExternalSecret>) -> Self {
        let mut by_store: HashMap<u64, Vec<u64>> = HashMap::new();
        for (store, secret) in external_secrets.into_iter().filter_map(first_read) {
            by_store.entry(store).or_default().push(secret);
        }
        for secrets in by_store.values_mut() {
            secrets.sort_unstable();
            secrets.dedup();
            secrets.shrink_to_fit();
        }
        Self { by_store }
    }

    /// The ExternalSecret's slot, in `0..SLOTS`.
    pub fn of(&self, es: &ExternalSecret) -> u64 {
        let Some((store, secret)) = first_read(es) else {
            // Nothing read by key (only `find`): any slot, as long as it stays the same.
            return read_key(es) % SLOTS;
        };
        let rank = self
            .by_store
            .get(&store)
            .and_then(|secrets| secrets.binary_search(&secret).ok());
        match rank {
            Some(rank) => (rank / BATCH) as u64 % SLOTS,
            None => secret % SLOTS,
        }
    }
}

/// What the ExternalSecret reads first (its store and secret), hashed: refreshes that read the
/// same are admitted together (`crate::controller::places`).
pub fn read_key(es: &ExternalSecret) -> u64 {
    match first_read(es) {
        Some((store, secret)) => store ^ secret.rotate_left(32),
        None => fnv1a(es.uid().unwrap_or_else(|| es.name_any()).as_bytes()),
    }
}

/// The store and the first secret the ExternalSecret reads by key, hashed; `None` when it reads
/// none by key. A SecretStore is one per namespace; a ClusterSecretStore is shared by all.
fn first_read(es: &ExternalSecret) -> Option<(u64, u64)> {
    let first = es
        .spec
        .data
        .first()
        .map(|d| &d.remote_ref.key)
        .or_else(|| {
            es.spec
                .data_from
                .iter()
                .find_map(|d| d.extract.as_ref().map(|e| &e.key))
        })?;
    let store_ref = es.spec.secret_store_ref.as_ref();
    let kind = store_ref.map(|s| s.kind_or_default()).unwrap_or_default();
    let name = store_ref
        .and_then(|s| s.name.as_deref())
        .unwrap_or_default();
    let store = match kind {
        StoreKind::SecretStore => {
            format!("SecretStore/{}/{name}", es.namespace().unwrap_or_default())
        }
        StoreKind::ClusterSecretStore => format!("ClusterSecretStore/{name}"),
    };
    Some((fnv1a(store.as_bytes()), fnv1a(first.as_bytes())))
}

/// FNV-1a: a stable hash (the same on every run and build), unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How long from `now` until the next periodic refresh after a sync that started at
/// `synced_at`. Measured from the end of the sync, not its start, so that the ExternalSecrets
/// due at one instant are woken at that instant however long each one's sync took (and
/// their reads meet in one batch).
pub fn after_sync(
    es: &ExternalSecret,
    slot: u64,
    synced_at: Timestamp,
    now: Timestamp,
) -> Option<Duration> {
    if es.spec.refresh_policy_or_default() != RefreshPolicy::Periodic {
        return None;
    }
    let due = due_at(es, slot, synced_at)?;
    Some(Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// How long until the next periodic refresh is due, if there is one.
pub fn next_refresh_in(es: &ExternalSecret, slot: u64, now: Timestamp) -> Option<Duration> {
    if es.spec.refresh_policy_or_default() != RefreshPolicy::Periodic {
        return None;
    }
    let last = es
        .status
        .as_ref()
        .and_then(|s| s.refresh_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let due = due_at(es, slot, last)?;
    Some(Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::external_secret::{ExternalSecretSpec, ExternalSecretStatus};
    use crate::api::meta::GoDuration;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn es(
        policy: Option<RefreshPolicy>,
        interval: &str,
        synced: Option<(&str, Timestamp)>,
    ) -> ExternalSecret {
        let mut es = ExternalSecret::new(
            "x",
            ExternalSecretSpec {
                refresh_policy: policy,
                refresh_interval: GoDuration::new(interval),
                ..Default::default()
            },
        );
        if let Some((version, at)) = synced {
            es.status = Some(ExternalSecretStatus {
                synced_resource_version: Some(version.into()),
                refresh_time: Some(Time(at)),
                ..Default::default()
            });
        }
        es
    }

    #[test]
    fn periodic() {
        let now = Timestamp::now();
        assert!(
            should_refresh(&es(None, "1h", None), 0, "1-a", now),
            "never synced"
        );
        let synced = es(
            None,
            "1h",
            Some(("1-a", now - SignedDuration::from_mins(10))),
        );
        assert!(
            !should_refresh(&synced, 0, "1-a", now),
            "synced 10 minutes ago with a 1h interval"
        );
        assert!(should_refresh(&synced, 0, "2-a", now), "spec changed");
        assert!(
            should_refresh(&synced, 0, "1-b", now),
            "labels or annotations changed (force-sync)"
        );
        let due = due_at(&synced, 0, now - SignedDuration::from_mins(10)).unwrap();
        let after = due.duration_since(now - SignedDuration::from_mins(10));
        assert!(after >= SignedDuration::from_mins(30) && after < SignedDuration::from_mins(90));
        assert!(
            !should_refresh(&synced, 0, "1-a", due - SignedDuration::from_nanos(1)),
            "its instant has not come yet"
        );
        assert!(
            should_refresh(&synced, 0, "1-a", due),
            "its instant has come"
        );
        let future = es(
            None,
            "1h",
            Some(("1-a", now + SignedDuration::from_mins(10))),
        );
        assert!(
            should_refresh(&future, 0, "1-a", now),
            "a refresh time in the future"
        );
    }

    #[test]
    fn zero_interval_fetches_once() {
        let now = Timestamp::now();
        assert!(should_refresh(&es(None, "0", None), 0, "1-a", now));
        let synced = es(
            None,
            "0",
            Some(("1-a", now - SignedDuration::from_hours(240))),
        );
        assert!(!should_refresh(&synced, 0, "2-a", now));
        assert_eq!(next_refresh_in(&synced, 0, now), None);
    }

    #[test]
    fn created_once_and_on_change() {
        let now = Timestamp::now();
        let once = es(
            Some(RefreshPolicy::CreatedOnce),
            "1h",
            Some(("1-a", now - SignedDuration::from_hours(24))),
        );
        assert!(!should_refresh(&once, 0, "2-a", now));
        let on_change = es(
            Some(RefreshPolicy::OnChange),
            "1h",
            Some(("1-a", now - SignedDuration::from_hours(24))),
        );
        assert!(!should_refresh(&on_change, 0, "1-a", now));
        assert!(should_refresh(&on_change, 0, "2-a", now));
    }

    /// A whole hour: the slots' instants in each hour are `slot * 450 s` past it.
    fn t0() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn next_refresh() {
        let now = t0();
        let synced = es(
            None,
            "1h",
            Some(("1-a", now - SignedDuration::from_mins(45))),
        );
        // Slot 4's instants are half past each hour: the first at least half an hour after the
        // sync 45 minutes ago is in 30 minutes.
        let next = next_refresh_in(&synced, 4, now).unwrap();
        assert_eq!(next, Duration::from_secs(30 * 60));
        let after = after_sync(&synced, 4, now, now).unwrap();
        assert_eq!(after, Duration::from_secs(30 * 60));
        // A sync that took 2 s is woken 2 s sooner: at the same instant of the schedule.
        let later = after_sync(&synced, 4, now, now + SignedDuration::from_secs(2)).unwrap();
        assert_eq!(after - later, Duration::from_secs(2));
    }

    fn reading(name: &str, key: &str, interval: &str) -> ExternalSecret {
        let mut es = es(None, interval, None);
        es.metadata.name = Some(name.into());
        es.metadata.namespace = Some("team".into());
        es.spec.data = vec![crate::api::external_secret::ExternalSecretData {
            secret_key: "k".into(),
            remote_ref: crate::api::external_secret::RemoteRef {
                key: key.into(),
                ..Default::default()
            },
            ..Default::default()
        }];
        es
    }

    #[test]
    fn a_late_refresh_keeps_its_place_in_the_schedule() {
        let hour = SignedDuration::from_hours(1);
        let a = reading("a", "db", "1h");
        // Slot 5's instants are 37.5 minutes past each hour.
        let due = t0() + SignedDuration::from_secs(5 * 450);
        for late in [0, 1, 20 * 60, 29 * 60] {
            let synced = due + SignedDuration::from_secs(late);
            assert_eq!(due_at(&a, 5, synced), Some(due + hour), "{late} s late");
        }
        // More than half an interval late, it waits for the instant after.
        let synced = due + SignedDuration::from_mins(31);
        assert_eq!(due_at(&a, 5, synced), Some(due + hour * 2));
    }

    #[test]
    fn readers_synced_hours_apart_come_due_at_the_same_instants() {
        let a = reading("a", "db", "1h");
        let first = due_at(&a, 5, t0() + SignedDuration::from_mins(10)).unwrap();
        let second = due_at(&a, 5, t0() + SignedDuration::from_mins(3 * 60 + 47)).unwrap();
        assert_eq!(first, t0() + SignedDuration::from_secs(3600 + 5 * 450));
        assert_eq!(second, t0() + SignedDuration::from_secs(4 * 3600 + 5 * 450));
        // Refreshed on time from then on, the first comes due at the second's instant, and
        // from there on they refresh together.
        let mut at = first;
        while at < second {
            at = due_at(&a, 5, at).unwrap();
        }
        assert_eq!(at, second);
        assert_eq!(due_at(&a, 5, at), due_at(&a, 5, second));
    }

    #[test]
    fn each_slot_has_its_instant_and_a_first_refresh_waits_half_to_one_and_a_half_intervals() {
        for (interval, secs) in [("1h", 3600), ("60s", 60), ("24h", 86_400)] {
            let es = reading("x", "db", interval);
            let period = SignedDuration::from_secs(secs);
            let synced = t0() + SignedDuration::from_secs(7);
            let phases: std::collections::BTreeSet<i64> = (0..SLOTS)
                .map(|slot| {
                    let due = due_at(&es, slot, synced).unwrap();
                    let wait = due.duration_since(synced);
                    assert!(
                        wait >= period / 2 && wait < period * 3 / 2,
                        "{interval}: {wait}"
                    );
                    due.as_second().rem_euclid(secs)
                })
                .collect();
            let expected: std::collections::BTreeSet<i64> = (0..SLOTS as i64)
                .map(|slot| slot * secs / SLOTS as i64)
                .collect();
            assert_eq!(phases, expected, "{interval}");
        }
        assert_eq!(due_at(&reading("x", "db", "0"), 0, t0()), None);
    }

    /// `readers` ExternalSecrets for each of `secrets` secrets, and each slot's distinct secrets.
    fn dealt(secrets: usize, readers: usize) -> (Slots, Vec<ExternalSecret>, Vec<usize>) {
        let fleet: Vec<ExternalSecret> = (0..secrets * readers)
            .map(|i| reading(&format!("es-{i}"), &format!("secret-{}", i % secrets), "1h"))
            .collect();
        let slots = Slots::new(&fleet);
        let mut per_slot = vec![std::collections::BTreeSet::new(); SLOTS as usize];
        for es in &fleet {
            per_slot[slots.of(es) as usize].insert(es.spec.data[0].remote_ref.key.clone());
        }
        (slots, fleet, per_slot.iter().map(|s| s.len()).collect())
    }

    #[test]
    fn readers_of_a_secret_share_a_slot_and_slots_hold_whole_batches() {
        let (slots, fleet, per_slot) = dealt(100, 10);
        for es in &fleet {
            let key = &es.spec.data[0].remote_ref.key;
            let first = fleet
                .iter()
                .find(|o| &o.spec.data[0].remote_ref.key == key)
                .unwrap();
            assert_eq!(slots.of(es), slots.of(first), "readers of {key}");
        }
        // 100 secrets: five slots of exactly one batch, so a cycle costs 5 calls (not 8).
        let mut filled: Vec<usize> = per_slot.into_iter().filter(|n| *n > 0).collect();
        filled.sort_unstable();
        assert_eq!(filled, [20; 5]);
        // 1,000 secrets: every slot used, and ceil(1000 / 20) = 50 batches in all.
        let (_, _, per_slot) = dealt(1000, 1);
        assert!(per_slot.iter().all(|n| *n > 0), "{per_slot:?}");
        let batches: usize = per_slot.iter().map(|n| n.div_ceil(BATCH)).sum();
        assert_eq!(batches, 50, "{per_slot:?}");
    }

    #[test]
    fn stores_are_dealt_apart_and_new_secrets_get_a_stable_slot() {
        // Twenty secrets through "team"'s SecretStore and twenty others through "other"'s
        // (same store name, another namespace): one batch each, both in the first slot.
        let fleet: Vec<ExternalSecret> = (0..40)
            .map(|i| {
                let mut es = reading(&format!("e{i}"), &format!("s{i}"), "1h");
                if i >= 20 {
                    es.metadata.namespace = Some("other".into());
                }
                es
            })
            .collect();
        let slots = Slots::new(&fleet);
        assert!(fleet.iter().all(|es| slots.of(es) == 0));
        // A secret the index has not seen yet takes a slot from its hash, the same every time.
        let new = reading("new", "created-since", "1h");
        assert_eq!(slots.of(&new), Slots::default().of(&new));
        assert!(slots.of(&new) < SLOTS);
    }

    #[test]
    fn lanes() {
        let now = Timestamp::now();
        assert_eq!(
            lane(&es(None, "1h", None), "1-a"),
            Lane::First,
            "never synced"
        );
        let synced = es(None, "1h", Some(("1-a", now)));
        assert_eq!(lane(&synced, "1-a"), Lane::Refresh);
        assert_eq!(lane(&synced, "2-a"), Lane::First, "spec changed");
    }
}
