//! The audit records of the controllers, built from their own types; the hooks at the places
//! where operations happen stay one call each.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use lockstep_provider_api::{ProviderError, SecretValue, VersionInfo};

use super::connect::Audit;
use super::stores::Store;
use crate::api::external_secret::ExternalSecret;
use crate::audit::record::{
    Draft, ObjectRef, Remote, ResponseStatus, StoreRef, Target, Tenant, Verb,
};
use crate::audit::trigger::{self, Facts};
use crate::audit::{Auditor, Trigger};

pub fn object_ref(es: &ExternalSecret) -> ObjectRef {
    ObjectRef {
        api_group: "external-secrets.io".into(),
        resource: "externalsecrets".into(),
        namespace: es.namespace().unwrap_or_default(),
        name: es.name_any(),
        uid: es.uid().unwrap_or_default(),
        generation: es.metadata.generation.unwrap_or_default(),
    }
}

pub fn store_ref(store: &Store, provider: &str, region: Option<&str>) -> StoreRef {
    StoreRef {
        kind: store.kind.as_str().into(),
        namespace: store.namespace.clone(),
        name: store.name.clone(),
        provider: provider.into(),
        region: region.map(str::to_owned),
    }
}

/// The store as a read record names it.
pub fn store_of(store: &Store) -> StoreRef {
    match store.spec.provider.single() {
        Ok(crate::api::provider::Provider::Aws(aws)) => store_ref(store, "aws", Some(&aws.region)),
        Ok(other) => store_ref(store, other.key(), None),
        Err(_) => store_ref(store, "unknown", None),
    }
}

/// Why this reconcile fetches.
pub fn trigger_of(
    auditor: &Auditor,
    es: &ExternalSecret,
    version: &str,
    intact: bool,
    due: bool,
) -> Trigger {
    let status = es.status.as_ref();
    let synced = status
        .and_then(|s| s.synced_resource_version.as_deref())
        .unwrap_or_default();
    trigger::of(Facts {
        never_synced: synced.is_empty() || status.and_then(|s| s.refresh_time.as_ref()).is_none(),
        version_changed: synced != version,
        generation_changed: status.and_then(|s| s.observed_generation) != es.metadata.generation,
        intact,
        due,
        first_look: auditor.first_look(&es.uid().unwrap_or_default()),
    })
}

/// Where a read went, for its record.
#[derive(Debug, Clone)]
pub struct ReadSource {
    pub store: StoreRef,
    pub tenant: Option<Tenant>,
}

/// One record per remote secret read (or one failure record for the request) asked at `asked`.
pub fn read(
    audit: Audit<'_>,
    source: &ReadSource,
    (mode, asked): (&str, &str),
    key: &str,
    version: Option<&str>,
    outcome: Result<(&SecretValue, &VersionInfo), &ProviderError>,
) {
    if !audit
        .auditor
        .covers(audit.object.map(|o| o.namespace.as_str()))
    {
        return;
    }
    // The version the provider says it returned; the one asked for when it says nothing (a
    // failed read, or a provider without versions).
    let (version_id, version_stages) = match outcome {
        Ok((_, read)) if read.id.is_some() || !read.stages.is_empty() => {
            (read.id.clone(), read.stages.clone())
        }
        _ => crate::audit::record::remote_version(version),
    };
    let mut draft = Draft::new(Verb::Get, audit.trigger);
    draft.started = asked.to_owned();
    draft.object_ref = audit.object.cloned();
    draft.store = Some(source.store.clone());
    draft.tenant = source.tenant.clone();
    draft.remote = Some(Remote {
        key: Some(key.to_owned()),
        version_id,
        version_stages,
        mode: Some(mode.into()),
        ..Default::default()
    });
    match outcome {
        Ok((value, _)) => draft.fingerprints = audit.auditor.fingerprints([(key, value.expose())]),
        Err(e) => {
            draft.response_status = ResponseStatus::failure(e.class.as_str(), e.message.clone())
        }
    }
    audit.auditor.emit(draft);
}

/// A write to a Secret, as its record tells it.
#[derive(Debug)]
pub struct Written<'a> {
    pub verb: Verb,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The Secret as the API server returned it (or as it was, for a delete or a failure).
    pub after: Option<&'a Secret>,
    pub data: &'a BTreeMap<String, SecretValue>,
    pub removed: Vec<String>,
    pub error: Option<String>,
    /// When the request was sent (`requestReceivedTimestamp`).
    pub asked: String,
}

/// A Secret created, updated or deleted (or the failed attempt).
pub fn secret_written(audit: Audit<'_>, w: Written<'_>) {
    let Written {
        verb,
        namespace,
        name,
        after,
        data,
        removed,
        error,
        asked,
    } = w;
    if !audit.auditor.covers(Some(namespace)) {
        return;
    }
    let mut draft = Draft::new(verb, audit.trigger);
    draft.started = asked;
    draft.object_ref = audit.object.cloned();
    draft.target = Some(Target {
        namespace: namespace.into(),
        name: name.into(),
        uid: after.and_then(|s| s.uid()),
        resource_version: after.and_then(|s| s.resource_version()),
        keys_written: data.keys().cloned().collect(),
        keys_removed: removed,
    });
    draft.fingerprints = audit
        .auditor
        .fingerprints(data.iter().map(|(k, v)| (k.as_str(), v.expose())));
    if let Some(message) = error {
        draft.response_status = ResponseStatus::failure("Unavailable", message);
    }
    audit.auditor.emit(draft);
}

/// A write refused by a guard.
pub fn refused(
    audit: Audit<'_>,
    namespace: &str,
    existing: Option<&Secret>,
    name: &str,
    guard: &str,
    message: String,
) {
    let mut draft = Draft::new(Verb::Refuse, audit.trigger);
    draft.object_ref = audit.object.cloned();
    draft.target = Some(Target {
        namespace: namespace.into(),
        name: name.into(),
        uid: existing.and_then(|s| s.uid()),
        resource_version: existing.and_then(|s| s.resource_version()),
        ..Default::default()
    });
    draft.response_status = ResponseStatus::failure(guard, message);
    audit.auditor.emit(draft);
}

/// The data keys a write removes: present before, absent after.
pub fn keys_removed(before: Option<&Secret>, after: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let before: BTreeSet<&String> = before
        .and_then(|s| s.data.as_ref())
        .map(|d| d.keys().collect())
        .unwrap_or_default();
    before
        .into_iter()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect()
}
