//! The Secret an ExternalSecret should produce, and the guards that decide whether lockstep may
//! write it. Pure functions: the reconcile reads, these decide, the reconcile writes.
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use lockstep_provider_api::SecretValue;

use crate::api::external_secret::{
    ANNOTATION_DATA_HASH, CreationPolicy, ExternalSecret, LABEL_MANAGED, LABEL_MANAGED_VALUE,
    LABEL_OWNER,
};
use crate::materialize::hash;

/// Why lockstep will not write the target Secret. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error(
        "target is owned by another ExternalSecret: Secret {secret:?} is controlled by {owner}; pick another spec.target.name"
    )]
    OwnedByAnother { secret: String, owner: String },
    #[error(
        "Secret {secret:?} already exists and was not created by this ExternalSecret; creationPolicy Owner never takes over a Secret: delete it, pick another spec.target.name, or use creationPolicy: Merge"
    )]
    NotOurs { secret: String },
    #[error(
        "could not update secret, target is immutable: Secret {secret:?} is immutable and its data would change; delete it to let lockstep recreate it"
    )]
    Immutable { secret: String },
    #[error(
        "templates (spec.target.template) are not supported yet; remove the template or keep using ESO for this ExternalSecret"
    )]
    TemplateUnsupported,
}

/// Whether `secret` was created by (or for) this ExternalSecret.
pub fn is_ours(secret: &Secret, es: &ExternalSecret) -> bool {
    let namespace = es.namespace().unwrap_or_default();
    let by_label = secret
        .labels()
        .get(LABEL_OWNER)
        .is_some_and(|v| *v == hash::created_by_label(&namespace, &es.name_any()));
    let by_owner = es.uid().is_some_and(|uid| {
        secret
            .owner_references()
            .iter()
            .any(|o| o.uid == uid && o.controller == Some(true))
    });
    by_label || by_owner
}

/// Checks that lockstep may write the target, given what exists.
pub fn check(
    existing: Option<&Secret>,
    es: &ExternalSecret,
    data: &BTreeMap<String, SecretValue>,
) -> Result<(), GuardError> {
    if es.spec.target.template.is_some() {
        return Err(GuardError::TemplateUnsupported);
    }
    let Some(secret) = existing else {
        return Ok(());
    };
    let name = secret.name_any();
    if es.spec.target.creation_policy == CreationPolicy::Owner {
        let foreign_controller = secret
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && Some(&o.uid) != es.uid().as_ref());
        if let Some(owner) = foreign_controller {
            return Err(GuardError::OwnedByAnother {
                secret: name,
                owner: format!("{} {:?}", owner.kind, owner.name),
            });
        }
        if !is_ours(secret, es) {
            return Err(GuardError::NotOurs { secret: name });
        }
    }
    if secret.immutable == Some(true)
        && hash::data_hash(&plain(data)) != hash::data_hash(&existing_data(secret))
    {
        return Err(GuardError::Immutable { secret: name });
    }
    Ok(())
}

/// Whether a Secret still holds what lockstep last wrote (ESO's `isSecretValid`): a Secret edited,
/// relabelled or deleted by hand is rewritten at once instead of at the next refresh.
pub fn is_intact(existing: Option<&Secret>, es: &ExternalSecret) -> bool {
    if matches!(
        es.spec.target.creation_policy,
        CreationPolicy::Orphan | CreationPolicy::None
    ) {
        return true;
    }
    let Some(secret) = existing else {
        return es.spec.target.creation_policy == CreationPolicy::Merge;
    };
    let managed = secret
        .labels()
        .get(LABEL_MANAGED)
        .is_some_and(|v| v == LABEL_MANAGED_VALUE);
    let recorded = secret.annotations().get(ANNOTATION_DATA_HASH);
    managed && recorded.is_some_and(|h| *h == hash::data_hash(&existing_data(secret)))
}

/// The server-side-apply body: only the fields lockstep owns.
pub fn desired(
    es: &ExternalSecret,
    secret_name: &str,
    data: &BTreeMap<String, SecretValue>,
) -> Secret {
    let namespace = es.namespace().unwrap_or_default();
    let plain = plain(data);
    // Without a template ESO copies the ExternalSecret's labels and annotations (all of them).
    let mut labels = es.labels().clone();
    let mut annotations = es.annotations().clone();
    labels.insert(LABEL_MANAGED.into(), LABEL_MANAGED_VALUE.into());
    annotations.insert(ANNOTATION_DATA_HASH.into(), hash::data_hash(&plain));
    let owner = es.spec.target.creation_policy == CreationPolicy::Owner;
    if owner {
        labels.insert(
            LABEL_OWNER.into(),
            hash::created_by_label(&namespace, &es.name_any()),
        );
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.into()),
            namespace: Some(namespace),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner.then(|| es.controller_owner_ref(&()).into_iter().collect()),
            ..Default::default()
        },
        data: Some(plain.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        immutable: es.spec.target.immutable.then_some(true),
        ..Default::default()
    }
}

fn plain(data: &BTreeMap<String, SecretValue>) -> BTreeMap<String, Vec<u8>> {
    data.iter()
        .map(|(k, v)| (k.clone(), v.expose().to_vec()))
        .collect()
}

fn existing_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::external_secret::{ExternalSecretSpec, ExternalSecretTarget};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn es(policy: CreationPolicy) -> ExternalSecret {
        let mut es = ExternalSecret::new(
            "app",
            ExternalSecretSpec {
                target: ExternalSecretTarget {
                    creation_policy: policy,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        es.metadata.namespace = Some("team".into());
        es.metadata.uid = Some("uid-1".into());
        es
    }

    fn data() -> BTreeMap<String, SecretValue> {
        BTreeMap::from([(
            "password".to_string(),
            SecretValue::from("s3cr3t".to_string()),
        )])
    }

    fn secret(name: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_desired_secret_carries_esos_markers() {
        let es = es(CreationPolicy::Owner);
        let s = desired(&es, "app", &data());
        assert_eq!(
            s.labels().get(LABEL_MANAGED).map(String::as_str),
            Some("true")
        );
        assert_eq!(
            s.labels().get(LABEL_OWNER),
            Some(&hash::created_by_label("team", "app"))
        );
        assert!(s.annotations().contains_key(ANNOTATION_DATA_HASH));
        let owner = &s.owner_references()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            ("uid-1", Some(true))
        );
        assert!(is_intact(Some(&s), &es), "what lockstep writes is intact");

        let orphan = desired(&self::es(CreationPolicy::Orphan), "app", &data());
        assert!(orphan.owner_references().is_empty());
        assert!(!orphan.labels().contains_key(LABEL_OWNER));
    }

    #[test]
    fn edits_by_hand_are_detected() {
        let es = es(CreationPolicy::Owner);
        let mut s = desired(&es, "app", &data());
        s.data
            .get_or_insert_default()
            .insert("password".into(), ByteString(b"changed".to_vec()));
        assert!(!is_intact(Some(&s), &es));
        assert!(!is_intact(None, &es), "a deleted Secret is recreated");
        assert!(
            is_intact(None, &self::es(CreationPolicy::Merge)),
            "Merge never creates"
        );
    }

    #[test]
    fn owner_never_takes_over_a_foreign_secret() {
        let es = es(CreationPolicy::Owner);
        assert_eq!(
            check(Some(&secret("app")), &es, &data()),
            Err(GuardError::NotOurs {
                secret: "app".into()
            })
        );
        let mut other = secret("app");
        other.metadata.owner_references = Some(vec![OwnerReference {
            kind: "ExternalSecret".into(),
            name: "other".into(),
            uid: "uid-2".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        assert!(matches!(
            check(Some(&other), &es, &data()),
            Err(GuardError::OwnedByAnother { .. })
        ));
        assert_eq!(
            check(Some(&desired(&es, "app", &data())), &es, &data()),
            Ok(())
        );
        assert_eq!(
            check(
                Some(&secret("app")),
                &self::es(CreationPolicy::Merge),
                &data()
            ),
            Ok(())
        );
        assert_eq!(check(None, &es, &data()), Ok(()));
    }

    #[test]
    fn immutable_secrets_are_not_rewritten() {
        let es = es(CreationPolicy::Owner);
        let mut s = desired(&es, "app", &data());
        s.immutable = Some(true);
        assert_eq!(check(Some(&s), &es, &data()), Ok(()), "same data: fine");
        let changed =
            BTreeMap::from([("password".to_string(), SecretValue::from("new".to_string()))]);
        assert!(matches!(
            check(Some(&s), &es, &changed),
            Err(GuardError::Immutable { .. })
        ));
    }

    #[test]
    fn no_value_in_guard_messages() {
        let es = es(CreationPolicy::Owner);
        let err = check(Some(&secret("app")), &es, &data()).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
    }
}
