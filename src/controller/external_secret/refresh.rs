//! When an ExternalSecret must be fetched again (ESO's `shouldRefresh`), and when to look next.
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::external_secret::{ExternalSecret, RefreshPolicy};

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
            let Some(interval) = interval(es) else {
                // `0` means fetch once: even a spec change does not fetch again (as ESO).
                return false;
            };
            if spec_changed {
                return true;
            }
            match refresh_time {
                Some(last) if last <= now => {
                    last.checked_add(interval).map_or(true, |due| due <= now)
                }
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

/// How long after a sync that just happened the next periodic refresh is due.
pub fn after_sync(es: &ExternalSecret) -> Option<Duration> {
    if es.spec.refresh_policy_or_default() != RefreshPolicy::Periodic {
        return None;
    }
    Duration::try_from(interval(es)?).ok()
}

/// How long until the next periodic refresh is due, if there is one.
pub fn next_refresh_in(es: &ExternalSecret, now: Timestamp) -> Option<Duration> {
    if es.spec.refresh_policy_or_default() != RefreshPolicy::Periodic {
        return None;
    }
    let interval = interval(es)?;
    let last = es
        .status
        .as_ref()
        .and_then(|s| s.refresh_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let due = last.checked_add(interval).unwrap_or(last);
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
        assert!(
            should_refresh(&synced, "1-a", now + SignedDuration::from_mins(51)),
            "interval elapsed"
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
            next <= Duration::from_secs(15 * 60) && next > Duration::from_secs(14 * 60),
            "{next:?}"
        );
    }
}
