//! The status an outcome gives an ExternalSecret. ESO's reasons and messages come first, so
//! dashboards and alerts written for ESO keep matching; the detail follows, so the condition itself
//! says what is wrong and what to do.
use k8s_openapi::api::core::v1::LocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::conditions::external_secret as reason;
use crate::api::conditions::{
    ConditionStatus, ExternalSecretCondition, ExternalSecretConditionType,
};
use crate::api::external_secret::{ExternalSecret, ExternalSecretStatus};

/// How a reconcile ended, as far as the status is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written (or already up to date) with this `message` (ESO's messages for Synced/Retain).
    Synced {
        reason: &'static str,
        message: &'static str,
    },
    /// Failed: ESO's short message, then what is wrong and what to do.
    Failed {
        message: &'static str,
        detail: String,
    },
}

/// The status after `outcome`. `refresh_time` and `synced_resource_version` only move on success.
pub fn next(
    es: &ExternalSecret,
    outcome: &Outcome,
    started: Timestamp,
    synced_version: &str,
    secret_name: &str,
) -> ExternalSecretStatus {
    let previous = es.status.clone().unwrap_or_default();
    let (status, reason_text, message) = match outcome {
        Outcome::Synced { reason, message } => {
            (ConditionStatus::True, *reason, (*message).to_owned())
        }
        Outcome::Failed { message, detail } => (
            ConditionStatus::False,
            reason::SECRET_SYNCED_ERROR,
            failure_message(message, detail),
        ),
    };
    let old = previous
        .conditions
        .iter()
        .find(|c| c.type_ == ExternalSecretConditionType::Ready);
    // lastTransitionTime moves only when the status flips, as in ESO.
    let transition = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(Time(started)),
    };
    let ready = ExternalSecretCondition {
        type_: ExternalSecretConditionType::Ready,
        status,
        reason: Some(reason_text.into()),
        message: Some(message),
        last_transition_time: transition,
    };
    let succeeded = status == ConditionStatus::True;
    // kstatus reads Stalled=True as Failed; it is dropped again as soon as a sync succeeds.
    let stalled = (!succeeded).then(|| ExternalSecretCondition {
        type_: ExternalSecretConditionType::Stalled,
        status: ConditionStatus::True,
        ..ready.clone()
    });
    ExternalSecretStatus {
        refresh_time: if succeeded {
            Some(Time(started))
        } else {
            previous.refresh_time
        },
        synced_resource_version: if succeeded {
            Some(synced_version.into())
        } else {
            previous.synced_resource_version
        },
        conditions: std::iter::once(ready).chain(stalled).collect(),
        binding: Some(LocalObjectReference {
            name: secret_name.into(),
        })
        .filter(|_| succeeded)
        .or(previous.binding),
        observed_generation: es.metadata.generation,
    }
}

/// ESO's short message, then the detail; a detail that already starts with ESO's message (a
/// self-contained error, as events carry it) does not repeat it.
fn failure_message(message: &str, detail: &str) -> String {
    if detail.starts_with(message) {
        detail.to_owned()
    } else {
        format!("{message}: {detail}")
    }
}

/// Whether writing `next` would change anything a reader cares about. A refresh that changed
/// nothing but `refreshTime` is still written, because `refreshTime` is when data was last checked.
pub fn differs(es: &ExternalSecret, next: &ExternalSecretStatus) -> bool {
    es.status.as_ref() != Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::external_secret::ExternalSecretSpec;

    #[test]
    fn esos_message_comes_first_and_only_once() {
        assert_eq!(
            failure_message("could not update secret", "the data is too large"),
            "could not update secret: the data is too large"
        );
        assert_eq!(
            failure_message(
                reason::MSG_OWNED_BY_OTHER,
                "target is owned by another ExternalSecret: Secret \"x\" is controlled by ..."
            ),
            "target is owned by another ExternalSecret: Secret \"x\" is controlled by ..."
        );
    }

    #[test]
    fn success_then_failure_keeps_the_last_good_refresh() {
        let mut es = ExternalSecret::new("app", ExternalSecretSpec::default());
        es.metadata.generation = Some(3);
        let t0 = Timestamp::now();
        let ok = Outcome::Synced {
            reason: reason::SECRET_SYNCED,
            message: reason::MSG_SYNCED,
        };
        let s1 = next(&es, &ok, t0, "3-abc", "app-secret");
        assert_eq!(s1.observed_generation, Some(3));
        assert_eq!(s1.conditions.len(), 1, "no Stalled condition while synced");
        assert_eq!(s1.conditions[0].reason.as_deref(), Some("SecretSynced"));
        assert_eq!(s1.conditions[0].message.as_deref(), Some("secret synced"));
        assert_eq!(
            s1.binding.as_ref().map(|b| b.name.as_str()),
            Some("app-secret")
        );
        es.status = Some(s1.clone());

        let failed = Outcome::Failed {
            message: reason::MSG_GET_PROVIDER_DATA_FAILED,
            detail: "access denied".into(),
        };
        let t1 = t0 + k8s_openapi::jiff::SignedDuration::from_secs(30);
        let s2 = next(&es, &failed, t1, "3-abc", "app-secret");
        assert_eq!(s2.conditions[0].status, ConditionStatus::False);
        assert_eq!(s2.conditions[1].type_, ExternalSecretConditionType::Stalled);
        assert_eq!(s2.conditions[1].status, ConditionStatus::True);
        assert_eq!(s2.conditions[1].message, s2.conditions[0].message);
        assert_eq!(
            s2.conditions[0].message.as_deref(),
            Some("could not get secret data from provider: access denied")
        );
        assert_eq!(
            s2.refresh_time, s1.refresh_time,
            "the last good refresh stays"
        );
        assert_eq!(s2.conditions[0].last_transition_time, Some(Time(t1)));
        es.status = Some(s2.clone());
        let s3 = next(
            &es,
            &failed,
            t1 + k8s_openapi::jiff::SignedDuration::from_secs(60),
            "3-abc",
            "app-secret",
        );
        assert_eq!(
            s3.conditions[0].last_transition_time,
            Some(Time(t1)),
            "no flip, no transition"
        );
        es.status = Some(s3.clone());
        let s4 = next(&es, &ok, t1, "3-abc", "app-secret");
        assert_eq!(s4.conditions.len(), 1, "a success clears Stalled");
        assert!(
            !differs(&es, &s3),
            "an unchanged failure is not written again"
        );
    }
}
