//! When an ExternalSecret must be fetched again (ESO's `shouldRefresh`), when to look next, and
//! in which lane it waits.
//!
//! Periodic refreshes are jittered: a refresh is due at the first instant of its [slot](SLOTS)
//! on a grid of period `spread` (a tenth of the interval, at most [`MAX_SPREAD`]) once the
//! interval has passed, so it comes less than `spread` late. A fleet created together (or on the
//! default `1h`) is spread over the slots instead of coming due at once forever after. The slot
//! is deterministic and chosen by the first secret the ExternalSecret reads: ExternalSecrets that
//! read the same secret come due at the same instants, so their reads are coalesced into one
//! call, and each slot's reads are batched.
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::external_secret::{ExternalSecret, RefreshPolicy};
use crate::fetch::Lane;

/// The most a refresh is delayed by jitter.
pub const MAX_SPREAD: Duration = Duration::from_secs(5 * 60);
/// How many distinct delays there are.
pub const SLOTS: u64 = 8;

/// Whether the ExternalSecret's data must be fetched now, given the `syncedResourceVersion` its
/// current generation, labels and annotations would have.
pub fn should_refresh(es: &ExternalSecret, current_version: &str, now: Timestamp) -> bool {
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
                Some(last) if last <= now => due_at(es, last).is_none_or(|due| due <= now),
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

/// When a periodic refresh is due after a sync at `last` (see the module comment); `None`
/// without an interval.
pub fn due_at(es: &ExternalSecret, last: Timestamp) -> Option<Timestamp> {
    let interval = interval(es)?;
    let earliest = last.checked_add(interval).ok()?;
    let spread = (interval.as_nanos() / 10).min(MAX_SPREAD.as_nanos() as i128);
    if spread <= 0 {
        return Some(earliest);
    }
    let slot = i128::from(fnv1a(jitter_key(es).as_bytes()) % SLOTS);
    let offset = spread * slot / i128::from(SLOTS);
    // The first instant k * spread + offset at or after `earliest`.
    let e = earliest.as_nanosecond() - offset;
    let k = e.div_euclid(spread) + i128::from(e.rem_euclid(spread) != 0);
    Timestamp::from_nanosecond(k * spread + offset).ok()
}

/// The first secret the ExternalSecret reads (store and key), or its uid when it reads none
/// by key.
fn jitter_key(es: &ExternalSecret) -> String {
    let store = es
        .spec
        .secret_store_ref
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_default();
    let first = es
        .spec
        .data
        .first()
        .map(|d| d.remote_ref.key.clone())
        .or_else(|| {
            es.spec
                .data_from
                .iter()
                .find_map(|d| d.extract.as_ref().map(|e| e.key.clone()))
        });
    match first {
        Some(key) => format!("{}/{store}/{key}", es.namespace().unwrap_or_default()),
        None => es.uid().unwrap_or_else(|| es.name_any()),
    }
}

/// FNV-1a: a stable hash (the same on every run and build), unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How long from `now` until the next periodic refresh after a sync that started at
/// `synced_at`. Measured from the end of the sync, not its start, so that the ExternalSecrets
/// due at one grid instant are woken at that instant however long each one's sync took (and
/// their reads meet in one batch).
pub fn after_sync(es: &ExternalSecret, synced_at: Timestamp, now: Timestamp) -> Option<Duration> {
    if es.spec.refresh_policy_or_default() != RefreshPolicy::Periodic {
        return None;
    }
    let due = due_at(es, synced_at)?;
    Some(Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// How long until the next periodic refresh is due, if there is one.
pub fn next_refresh_in(es: &ExternalSecret, now: Timestamp) -> Option<Duration> {
    if es.spec.refresh_policy_or_default() != RefreshPolicy::Periodic {
        return None;
    }
    let last = es
        .status
        .as_ref()
        .and_then(|s| s.refresh_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let due = due_at(es, last)?;
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
            should_refresh(&es(None, "1h", None), "1-a", now),
            "never synced"
        );
        let synced = es(
            None,
            "1h",
            Some(("1-a", now - SignedDuration::from_mins(10))),
        );
        assert!(
            !should_refresh(&synced, "1-a", now),
            "synced 10 minutes ago with a 1h interval"
        );
        assert!(should_refresh(&synced, "2-a", now), "spec changed");
        assert!(
            should_refresh(&synced, "1-b", now),
            "labels or annotations changed (force-sync)"
        );
        let due = due_at(&synced, now - SignedDuration::from_mins(10)).unwrap();
        let late = due.duration_since(now + SignedDuration::from_mins(50));
        assert!(late >= SignedDuration::ZERO && late < SignedDuration::from_mins(5));
        assert!(
            !should_refresh(&synced, "1-a", due - SignedDuration::from_nanos(1)),
            "interval and jitter not elapsed yet"
        );
        assert!(
            should_refresh(&synced, "1-a", due),
            "interval and jitter elapsed"
        );
        let future = es(
            None,
            "1h",
            Some(("1-a", now + SignedDuration::from_mins(10))),
        );
        assert!(
            should_refresh(&future, "1-a", now),
            "a refresh time in the future"
        );
    }

    #[test]
    fn zero_interval_fetches_once() {
        let now = Timestamp::now();
        assert!(should_refresh(&es(None, "0", None), "1-a", now));
        let synced = es(
            None,
            "0",
            Some(("1-a", now - SignedDuration::from_hours(240))),
        );
        assert!(!should_refresh(&synced, "2-a", now));
        assert_eq!(next_refresh_in(&synced, now), None);
    }

    #[test]
    fn created_once_and_on_change() {
        let now = Timestamp::now();
        let once = es(
            Some(RefreshPolicy::CreatedOnce),
            "1h",
            Some(("1-a", now - SignedDuration::from_hours(24))),
        );
        assert!(!should_refresh(&once, "2-a", now));
        let on_change = es(
            Some(RefreshPolicy::OnChange),
            "1h",
            Some(("1-a", now - SignedDuration::from_hours(24))),
        );
        assert!(!should_refresh(&on_change, "1-a", now));
        assert!(should_refresh(&on_change, "2-a", now));
    }

    #[test]
    fn next_refresh() {
        let now = Timestamp::now();
        let synced = es(
            None,
            "1h",
            Some(("1-a", now - SignedDuration::from_mins(45))),
        );
        let next = next_refresh_in(&synced, now).unwrap();
        assert!(
            next >= Duration::from_secs(15 * 60) && next < Duration::from_secs(20 * 60),
            "{next:?}"
        );
        let after = after_sync(&synced, now, now).unwrap();
        assert!(
            after >= Duration::from_secs(3600) && after < Duration::from_secs(3900),
            "{after:?}"
        );
        // A sync that took 2 s is woken 2 s sooner: at the same instant of the grid.
        let later = after_sync(&synced, now, now + SignedDuration::from_secs(2)).unwrap();
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
    fn jitter_is_deterministic_bounded_and_aligns_readers_of_a_secret() {
        let hour = SignedDuration::from_hours(1);
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let a = reading("a", "db", "1h");
        let b = reading("b", "db", "1h");
        assert_eq!(due_at(&a, t0), due_at(&a.clone(), t0), "deterministic");
        // Synced a minute apart (within one spread), two readers of one secret come due at the
        // same instant.
        let due = due_at(&a, t0).unwrap();
        let synced = due - hour - SignedDuration::from_mins(3);
        assert_eq!(due_at(&a, synced), Some(due));
        assert_eq!(due_at(&b, synced + SignedDuration::from_mins(1)), Some(due));
        // Every refresh is late by less than the spread (5 minutes for 1h), and secrets spread
        // over every slot.
        let offsets: std::collections::BTreeSet<i64> = (0..200)
            .map(|i| {
                let due = due_at(&reading("x", &format!("secret-{i}"), "1h"), t0).unwrap();
                let late = due.duration_since(t0 + hour);
                assert!(late >= SignedDuration::ZERO && late < SignedDuration::from_mins(5));
                due.as_second() % 300
            })
            .collect();
        assert_eq!(offsets.len() as u64, SLOTS, "{offsets:?}");
        // A tenth of the interval when that is less than the cap.
        for i in 0..50 {
            let due = due_at(&reading("x", &format!("s{i}"), "60s"), t0).unwrap();
            let late = due.duration_since(t0 + SignedDuration::from_secs(60));
            assert!(late >= SignedDuration::ZERO && late < SignedDuration::from_secs(6));
        }
        assert_eq!(due_at(&reading("x", "db", "0"), t0), None);
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
