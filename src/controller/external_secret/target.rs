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
use crate::materialize::{Rendered, hash, is_forbidden_type};

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
        "Secret type {type_} is not allowed: lockstep never writes ServiceAccount token or bootstrap token Secrets; {what}"
    )]
    ForbiddenType { type_: String, what: String },
    #[error(
        "Secret {secret:?} has type {existing} and the template asks for {wanted}; a Secret's type cannot change: delete the Secret to let lockstep recreate it, or set spec.target.template.type to {existing}"
    )]
    TypeChange {
        secret: String,
        existing: String,
        wanted: String,
    },
}

impl GuardError {
    /// The guard's name, for the audit record of the refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            GuardError::OwnedByAnother { .. } => "OwnedByAnother",
            GuardError::NotOurs { .. } => "NotOurs",
            GuardError::Immutable { .. } => "Immutable",
            GuardError::ForbiddenType { .. } => "ForbiddenType",
            GuardError::TypeChange { .. } => "TypeChange",
        }
    }
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

/// Checks that lockstep may write the target, given what exists. Every write passes here, so
/// this is where the forbidden Secret types are refused, whichever way they would arrive: asked
/// for by the template, or already the type of the Secret that would be written into.
pub fn check(
    existing: Option<&Secret>,
    es: &ExternalSecret,
    rendered: &Rendered,
) -> Result<(), GuardError> {
    if let Some(type_) = rendered.type_.as_deref().filter(|t| is_forbidden_type(t)) {
        return Err(GuardError::ForbiddenType {
            type_: type_.to_owned(),
            what: "spec.target.template.type asks for it: use another type such as Opaque".into(),
        });
    }
    let Some(secret) = existing else {
        return Ok(());
    };
    let name = secret.name_any();
    let existing_type = secret.type_.as_deref().unwrap_or("Opaque");
    if is_forbidden_type(existing_type) {
        return Err(GuardError::ForbiddenType {
            type_: existing_type.to_owned(),
            what: format!(
                "the target Secret {name:?} already exists with that type: pick another spec.target.name"
            ),
        });
    }
    if let Some(wanted) = rendered.type_.as_deref()
        && wanted != existing_type
    {
        return Err(GuardError::TypeChange {
            secret: name,
            existing: existing_type.to_owned(),
            wanted: wanted.to_owned(),
        });
    }
    let data = &rendered.data;
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
        && data_after_apply(Some(secret), &manager(es), &plain(data)) != existing_data(secret)
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

/// The field manager lockstep applies with: ESO's name for this ExternalSecret.
pub fn manager(es: &ExternalSecret) -> String {
    hash::field_manager(&es.name_any())
}

/// The server-side-apply body: only the fields lockstep owns. `existing` is the Secret as it is
/// now, whose keys written by others stay and count in the data hash.
pub fn desired(
    es: &ExternalSecret,
    secret_name: &str,
    rendered: &Rendered,
    existing: Option<&Secret>,
) -> Secret {
    let namespace = es.namespace().unwrap_or_default();
    let plain = plain(&rendered.data);
    // Without a template ESO copies the ExternalSecret's labels and annotations (all of them);
    // with one, only the template's (rendered).
    let (mut labels, mut annotations) = if es.spec.target.template.is_some() {
        (rendered.labels.clone(), rendered.annotations.clone())
    } else {
        (es.labels().clone(), es.annotations().clone())
    };
    labels.insert(LABEL_MANAGED.into(), LABEL_MANAGED_VALUE.into());
    // ESO hashes the Secret's final data, keys of other writers included; so does lockstep, or a
    // Secret shared with another writer would never look intact and be fetched on every event.
    let after = data_after_apply(existing, &manager(es), &plain);
    annotations.insert(ANNOTATION_DATA_HASH.into(), hash::data_hash(&after));
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
            finalizers: (!rendered.finalizers.is_empty()).then(|| rendered.finalizers.clone()),
            ..Default::default()
        },
        data: Some(plain.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        immutable: es.spec.target.immutable.then_some(true),
        // Without a type in the template the Secret keeps its own (ESO's rule); applying it again
        // keeps server-side apply from resetting a type lockstep applied before to Opaque, which
        // the API server would refuse (the type is immutable).
        type_: rendered
            .type_
            .clone()
            .or_else(|| existing.and_then(|s| s.type_.clone())),
        ..Default::default()
    }
}

/// The data a Secret holds after lockstep applies `ours` with field manager `manager`: server-side
/// apply removes the keys that manager applied before and no longer applies, keeps the keys of
/// other writers, and sets lockstep's.
pub fn data_after_apply(
    existing: Option<&Secret>,
    manager: &str,
    ours: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let Some(secret) = existing else {
        return ours.clone();
    };
    let applied_before = applied_data_keys(secret, manager);
    let mut after: BTreeMap<String, Vec<u8>> = existing_data(secret)
        .into_iter()
        .filter(|(k, _)| !applied_before.contains(k))
        .collect();
    after.extend(ours.iter().map(|(k, v)| (k.clone(), v.clone())));
    after
}

/// The data keys `manager` owns through server-side apply, from the Secret's managedFields.
fn applied_data_keys(secret: &Secret, manager: &str) -> Vec<String> {
    secret
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|f| {
            f.manager.as_deref() == Some(manager) && f.operation.as_deref() == Some("Apply")
        })
        .filter_map(|f| f.fields_v1.as_ref())
        .filter_map(|fields| fields.0.get("f:data")?.as_object())
        .flat_map(|data| data.keys())
        .filter_map(|k| k.strip_prefix("f:"))
        .map(str::to_owned)
        .collect()
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        FieldsV1, ManagedFieldsEntry, OwnerReference,
    };

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

    fn data() -> Rendered {
        Rendered {
            data: BTreeMap::from([(
                "password".to_string(),
                SecretValue::from("s3cr3t".to_string()),
            )]),
            ..Default::default()
        }
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
        let s = desired(&es, "app", &data(), None);
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

        let orphan = desired(&self::es(CreationPolicy::Orphan), "app", &data(), None);
        assert!(orphan.owner_references().is_empty());
        assert!(!orphan.labels().contains_key(LABEL_OWNER));
    }

    #[test]
    fn edits_by_hand_are_detected() {
        let es = es(CreationPolicy::Owner);
        let mut s = desired(&es, "app", &data(), None);
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
            check(Some(&desired(&es, "app", &data(), None)), &es, &data()),
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
        let mut s = desired(&es, "app", &data(), None);
        s.immutable = Some(true);
        assert_eq!(check(Some(&s), &es, &data()), Ok(()), "same data: fine");
        let changed = Rendered {
            data: BTreeMap::from([("password".to_string(), SecretValue::from("new".to_string()))]),
            ..Default::default()
        };
        assert!(matches!(
            check(Some(&s), &es, &changed),
            Err(GuardError::Immutable { .. })
        ));
    }

    #[test]
    fn forbidden_types_are_refused_by_every_route() {
        for forbidden in crate::materialize::FORBIDDEN_TYPES {
            // The template asks for it (a CRD without lockstep's admission rule lets it through).
            let mut asked = data();
            asked.type_ = Some(forbidden.into());
            for policy in [
                CreationPolicy::Owner,
                CreationPolicy::Orphan,
                CreationPolicy::Merge,
            ] {
                let error = check(None, &es(policy), &asked).unwrap_err();
                assert_eq!(error.reason(), "ForbiddenType");
                assert!(error.to_string().contains(forbidden), "{error}");
                assert!(
                    error.to_string().contains("spec.target.template.type"),
                    "{error}"
                );
            }
            // The Secret to write into already has that type, and no template mentions a type.
            let mut token = secret("app");
            token.type_ = Some(forbidden.into());
            for policy in [
                CreationPolicy::Orphan,
                CreationPolicy::Merge,
                CreationPolicy::Owner,
            ] {
                let error = check(Some(&token), &es(policy), &data()).unwrap_err();
                assert_eq!(error.reason(), "ForbiddenType", "{policy:?}");
                assert!(
                    error.to_string().contains("pick another spec.target.name"),
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn a_type_change_is_refused_before_the_api_server_does() {
        let es = es(CreationPolicy::Merge);
        let mut wants = data();
        wants.type_ = Some("kubernetes.io/ssh-auth".into());
        let plain = secret("app");
        assert!(matches!(
            check(Some(&plain), &es, &wants),
            Err(GuardError::TypeChange { existing, .. }) if existing == "Opaque"
        ));
        let mut same = secret("app");
        same.type_ = Some("kubernetes.io/ssh-auth".into());
        assert_eq!(check(Some(&same), &es, &wants), Ok(()));
        // No type in the template: the Secret keeps its own.
        assert_eq!(check(Some(&same), &es, &data()), Ok(()));
    }

    #[test]
    fn with_a_template_only_its_metadata_is_written() {
        let mut es = es(CreationPolicy::Owner);
        es.metadata.labels = Some(BTreeMap::from([("from-es".into(), "x".into())]));
        let mut rendered = data();
        rendered.labels = BTreeMap::from([("team".into(), "a".into())]);
        rendered.finalizers = vec!["example.com/keep".into()];
        rendered.type_ = Some("kubernetes.io/ssh-auth".into());
        let without = desired(&es, "app", &rendered, None);
        assert!(without.labels().contains_key("from-es"));
        assert!(!without.labels().contains_key("team"));

        es.spec.target.template = Some(Default::default());
        let with = desired(&es, "app", &rendered, None);
        assert!(!with.labels().contains_key("from-es"));
        assert_eq!(with.labels().get("team").map(String::as_str), Some("a"));
        assert!(with.labels().contains_key(LABEL_MANAGED));
        assert!(with.annotations().contains_key(ANNOTATION_DATA_HASH));
        assert_eq!(with.finalizers(), ["example.com/keep"]);
        assert_eq!(with.type_.as_deref(), Some("kubernetes.io/ssh-auth"));

        let mut existing = secret("app");
        existing.type_ = Some("kubernetes.io/tls".into());
        let kept = desired(&es, "app", &data(), Some(&existing));
        assert_eq!(
            kept.type_.as_deref(),
            Some("kubernetes.io/tls"),
            "no type in the template: the Secret keeps its own"
        );
    }

    /// A Secret as server-side apply leaves it: `ours` applied by `manager`, `theirs` by kubectl.
    fn shared_secret(manager: &str, ours: &[&str], theirs: &[&str]) -> Secret {
        let fields = |keys: &[&str]| {
            let data: serde_json::Map<String, serde_json::Value> = keys
                .iter()
                .map(|k| (format!("f:{k}"), serde_json::json!({})))
                .collect();
            Some(FieldsV1(serde_json::json!({ "f:data": data })))
        };
        let mut s = secret("app");
        s.metadata.managed_fields = Some(vec![
            ManagedFieldsEntry {
                manager: Some(manager.into()),
                operation: Some("Apply".into()),
                fields_v1: fields(ours),
                ..Default::default()
            },
            ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                operation: Some("Update".into()),
                fields_v1: fields(theirs),
                ..Default::default()
            },
        ]);
        s.data = Some(
            ours.iter()
                .chain(theirs)
                .map(|k| (k.to_string(), ByteString(b"old".to_vec())))
                .collect(),
        );
        s
    }

    #[test]
    fn the_data_after_apply_keeps_other_writers_keys_and_drops_ours_no_longer_written() {
        let manager = "externalsecrets.external-secrets.io/app";
        let existing = shared_secret(manager, &["a", "dropped"], &["theirs"]);
        let ours = BTreeMap::from([
            ("a".to_string(), b"new".to_vec()),
            ("b".to_string(), b"new".to_vec()),
        ]);
        let after = data_after_apply(Some(&existing), manager, &ours);
        assert_eq!(
            after.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b", "theirs"]
        );
        assert_eq!(after["a"], b"new");
        assert_eq!(
            data_after_apply(Some(&existing), "someone-else", &ours).len(),
            4,
            "keys applied by another manager are not ours to drop"
        );
        assert_eq!(data_after_apply(None, manager, &ours), ours);
    }

    #[test]
    fn the_data_hash_covers_other_writers_keys() {
        let es = es(CreationPolicy::Merge);
        let existing = shared_secret(&manager(&es), &["password"], &["theirs"]);
        let mut written = desired(&es, "app", &data(), Some(&existing));
        written.data = Some(BTreeMap::from([
            ("password".into(), ByteString(b"s3cr3t".to_vec())),
            ("theirs".into(), ByteString(b"old".to_vec())),
        ]));
        assert!(
            is_intact(Some(&written), &es),
            "the Secret after the apply matches its hash"
        );
    }

    #[test]
    fn no_value_in_guard_messages() {
        let es = es(CreationPolicy::Owner);
        let err = check(Some(&secret("app")), &es, &data()).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
    }
}
