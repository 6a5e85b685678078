//! The audit record: one operation lockstep performed, shaped like Kubernetes' `audit.k8s.io/v1`
//! Event (auditID, stage, verb, user, objectRef, responseStatus, timestamps) with lockstep's own
//! `apiVersion` and the fields Kubernetes' log cannot know: the tenant identity, the store, the
//! remote secret and keyed fingerprints of the values. Never a value.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "audit.lockstep.dev/v1";
pub const KIND: &str = "Event";

/// What lockstep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// A read of one remote secret from a provider.
    Get,
    /// A credential exchange: TokenRequest, AssumeRoleWithWebIdentity, AssumeRole.
    Exchange,
    /// A Kubernetes Secret created.
    Create,
    /// A Kubernetes Secret updated (a drift correction is an update with trigger `drift`).
    Update,
    /// A Kubernetes Secret deleted.
    Delete,
    /// A write refused by a guard (Owner and a foreign Secret, an immutable Secret, ...).
    Refuse,
}

/// Why lockstep did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The refresh interval elapsed.
    Periodic,
    /// A new ExternalSecret, or its spec changed.
    SpecChange,
    /// Labels or annotations changed with the spec unchanged (ESO's `force-sync` annotation).
    ForceSync,
    /// The target Secret was edited or deleted by someone else.
    Drift,
    /// The first look at an object after lockstep started.
    Startup,
    /// A store changed, or a failed sync is retried.
    StoreChange,
}

/// The stage of the operation; lockstep records operations once they completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    ResponseComplete,
}

/// Kubernetes' UserInfo: lockstep's own identity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub username: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The identity lockstep used on the tenant's behalf; `roleSessionName` joins CloudTrail.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// `namespace/name` of the ServiceAccount whose token was exchanged (web identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The last role assumed (web identity, then `role`); none for static keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    /// `static`, `web-identity` or `default-chain`.
    pub credentials: String,
}

/// The ExternalSecret the operation was for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub generation: i64,
}

/// The store the operation went through.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreRef {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The provider side: which secret, at which version; or which calls an exchange made.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The VersionId read (`remoteRef.version: uuid/<VersionId>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The staging labels the read selected (`AWSCURRENT` unless `remoteRef.version` says).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_stages: Vec<String>,
    /// `extract`, `find`, `data` or `metadata` (tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The API calls of an exchange, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
}

/// The Kubernetes Secret written, as the API server returned it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_written: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys_removed: Vec<String>,
}

/// Success, or the classified error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseStatus {
    /// `Success` or `Failure`, as a Kubernetes Status.
    pub status: String,
    /// The error class (`NotFound`, `AccessDenied`, `Throttled`, `Unavailable`, `Invalid`) or the guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ResponseStatus {
    pub fn success() -> Self {
        Self {
            status: "Success".into(),
            ..Default::default()
        }
    }

    pub fn failure(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: "Failure".into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
        }
    }
}

/// One audit record. Field order is the serialization order, and the chain hashes the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub api_version: String,
    pub kind: String,
    /// Always `Metadata`: no request or response body is ever recorded.
    pub level: String,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: Stage,
    pub verb: Verb,
    pub trigger: Trigger,
    pub request_received_timestamp: String,
    pub stage_timestamp: String,
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Tenant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Remote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// `hmac-sha256:<hex>` of each value read or written, keyed by the installation's audit key:
    /// equal values have equal fingerprints, and nobody without the key can test a guess.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fingerprints: BTreeMap<String, String>,
    pub response_status: ResponseStatus,
    /// The position in this record's stream (one stream per sink), from 1.
    pub sequence: u64,
    /// `sha256:<hex>` of the previous line of the stream; empty for the first record ever.
    pub previous_hash: String,
}

/// What a hook knows about an operation; the auditor adds the id, identity and chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub verb: Verb,
    pub trigger: Trigger,
    pub started: String,
    pub tenant: Option<Tenant>,
    pub object_ref: Option<ObjectRef>,
    pub store: Option<StoreRef>,
    pub remote: Option<Remote>,
    pub target: Option<Target>,
    pub fingerprints: BTreeMap<String, String>,
    pub response_status: ResponseStatus,
}

impl Draft {
    pub fn new(verb: Verb, trigger: Trigger) -> Self {
        Self {
            verb,
            trigger,
            started: now(),
            tenant: None,
            object_ref: None,
            store: None,
            remote: None,
            target: None,
            fingerprints: BTreeMap::new(),
            response_status: ResponseStatus::success(),
        }
    }

    /// The namespace the record is about, for `--audit-namespace`: the ExternalSecret's, the
    /// Secret's, or else the SecretStore's (`None` for a ClusterSecretStore on its own).
    pub fn namespace(&self) -> Option<&str> {
        self.object_ref
            .as_ref()
            .map(|o| o.namespace.as_str())
            .or(self.target.as_ref().map(|t| t.namespace.as_str()))
            .or(self.store.as_ref().and_then(|s| s.namespace.as_deref()))
    }

    /// The record, before the chain fields are set by its stream.
    pub fn complete(self, audit_id: String, user: User) -> Record {
        Record {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            level: "Metadata".into(),
            audit_id,
            stage: Stage::ResponseComplete,
            verb: self.verb,
            trigger: self.trigger,
            request_received_timestamp: self.started,
            stage_timestamp: now(),
            user,
            tenant: self.tenant,
            object_ref: self.object_ref,
            store: self.store,
            remote: self.remote,
            target: self.target,
            fingerprints: self.fingerprints,
            response_status: self.response_status,
            sequence: 0,
            previous_hash: String::new(),
        }
    }
}

/// RFC 3339 with microseconds, as Kubernetes' audit timestamps.
pub fn now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    format!("{now:.6}")
}

/// The requested `remoteRef.version` as the record names it: a VersionId or staging labels.
pub fn remote_version(version: Option<&str>) -> (Option<String>, Vec<String>) {
    match version.filter(|v| !v.is_empty()) {
        None => (None, vec!["AWSCURRENT".into()]),
        Some(v) => match v.strip_prefix("uuid/") {
            Some(id) => (Some(id.to_owned()), Vec::new()),
            None => (None, vec![v.to_owned()]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_shaped_like_kubernetes_audit_events() {
        let mut draft = Draft::new(Verb::Update, Trigger::Drift);
        draft.object_ref = Some(ObjectRef {
            api_group: "external-secrets.io".into(),
            resource: "externalsecrets".into(),
            namespace: "team".into(),
            name: "app".into(),
            uid: "u".into(),
            generation: 2,
        });
        assert_eq!(draft.namespace(), Some("team"));
        let mut validation = Draft::new(Verb::Exchange, Trigger::StoreChange);
        assert_eq!(validation.namespace(), None);
        validation.store = Some(StoreRef {
            namespace: Some("other".into()),
            ..Default::default()
        });
        assert_eq!(validation.namespace(), Some("other"), "a SecretStore's own");
        let record = draft.complete("id-1".into(), User::default());
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["apiVersion"], API_VERSION);
        assert_eq!(json["kind"], "Event");
        assert_eq!(json["auditID"], "id-1");
        assert_eq!(json["stage"], "ResponseComplete");
        assert_eq!(json["verb"], "update");
        assert_eq!(json["trigger"], "drift");
        assert_eq!(json["objectRef"]["generation"], 2);
        assert_eq!(json["responseStatus"]["status"], "Success");
        assert!(json.get("remote").is_none(), "empty parts are left out");
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn versions_are_named_as_aws_does() {
        assert_eq!(remote_version(None), (None, vec!["AWSCURRENT".into()]));
        assert_eq!(
            remote_version(Some("AWSPREVIOUS")),
            (None, vec!["AWSPREVIOUS".into()])
        );
        assert_eq!(
            remote_version(Some("uuid/abc")),
            (Some("abc".into()), vec![])
        );
    }
}
