//! Status conditions, and ESO's condition reasons and messages, which dashboards, alerts and
//! `kubectl get` columns written for ESO match on verbatim.
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The one condition type every kind reports.
pub const READY: &str = "Ready";

/// `status` of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(ok: bool) -> Self {
        if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The condition types an ExternalSecret may carry. `Ready` is ESO's; `Stalled` (True beside
/// Ready=False) is kstatus' failure condition, which Flux and `kubectl wait`-style tools read: kstatus
/// does not look at `Ready`, so without it a failing ExternalSecret would read as Current. ESO's
/// schema also allows `Deleted`, so stored objects that carry it still validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum ExternalSecretConditionType {
    #[default]
    Ready,
    Stalled,
    Deleted,
}

/// A condition of an ExternalSecret.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretCondition {
    #[serde(rename = "type")]
    pub type_: ExternalSecretConditionType,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed (not when the condition was last written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// A condition of a store, a PushSecret, a ClusterPushSecret or a ClusterExternalSecret.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed (not when the condition was last written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

/// ExternalSecret reasons and the exact messages ESO writes with them.
pub mod external_secret {
    /// The Secret was written (or there was nothing to write).
    pub const SECRET_SYNCED: &str = "SecretSynced";
    /// Reading from the provider or writing the Secret failed.
    pub const SECRET_SYNCED_ERROR: &str = "SecretSyncedError";
    /// The provider had no data and `deletionPolicy: Delete` removed the Secret.
    pub const SECRET_DELETED: &str = "SecretDeleted";
    /// `creationPolicy: Merge` and the Secret to merge into does not exist.
    pub const SECRET_MISSING: &str = "SecretMissing";

    /// The same four for generic (manifest) targets.
    pub const RESOURCE_SYNCED: &str = "ResourceSynced";
    pub const RESOURCE_SYNCED_ERROR: &str = "ResourceSyncedError";
    pub const RESOURCE_DELETED: &str = "ResourceDeleted";
    pub const RESOURCE_MISSING: &str = "ResourceMissing";

    pub const MSG_SYNCED: &str = "secret synced";
    pub const MSG_SYNCED_RETAIN: &str = "secret retained due to DeletionPolicy=Retain";
    pub const MSG_DELETED: &str = "secret deleted due to DeletionPolicy=Delete";
    pub const MSG_MISSING: &str = "secret will not be created due to CreationPolicy=Merge";
    pub const MSG_GET_PROVIDER_DATA_FAILED: &str = "could not get secret data from provider";
    pub const MSG_UPDATE_FAILED: &str = "could not update secret";
    pub const MSG_UPDATE_IMMUTABLE: &str = "could not update secret, target is immutable";
    pub const MSG_OWNERSHIP_FAILED: &str = "failed to take ownership of target secret";
    pub const MSG_OWNED_BY_OTHER: &str = "target is owned by another ExternalSecret";
    pub const MSG_DELETE_FAILED: &str = "could not delete secret";
    pub const MSG_DELETE_ORPHANS_FAILED: &str = "could not delete orphaned secrets";

    /// Event reasons.
    pub const EVENT_UPDATE_FAILED: &str = "UpdateFailed";
    pub const EVENT_CREATED: &str = "Created";
    pub const EVENT_UPDATED: &str = "Updated";
    pub const EVENT_DELETED: &str = "Deleted";
    pub const EVENT_MISSING_PROVIDER_SECRET: &str = "MissingProviderSecret";
    pub const EVENT_PARAMETER_DEPRECATED: &str = "ParameterDeprecated";

    /// Event messages.
    pub const EVENT_MSG_CREATED: &str = "secret created";
    pub const EVENT_MSG_UPDATED: &str = "secret updated";
    pub const EVENT_MSG_DELETED_ORPHANED: &str = "secret deleted because it was orphaned";
}

/// SecretStore and ClusterSecretStore reasons and messages.
pub mod store {
    pub const VALID: &str = "Valid";
    pub const INVALID_PROVIDER_CONFIG: &str = "InvalidProviderConfig";
    pub const VALIDATION_UNKNOWN: &str = "ValidationUnknown";
    /// Declared by ESO but never written.
    pub const INVALID_STORE_CONFIGURATION: &str = "InvalidStoreConfiguration";
    /// Declared by ESO but never written.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    /// Warning event reasons for providers that are not maintained or are deprecated.
    pub const STORE_UNMAINTAINED: &str = "StoreUnmaintained";
    pub const STORE_DEPRECATED: &str = "StoreDeprecated";

    pub const MSG_VALID: &str = "store validated";
    pub const MSG_CLIENT_FAILED: &str = "unable to create client";
    pub const MSG_VALIDATION_FAILED: &str = "unable to validate store";
    pub const MSG_VALIDATION_UNKNOWN: &str = "could not determine validation status";
}

/// PushSecret and ClusterPushSecret reasons and messages.
pub mod push_secret {
    pub const SYNCED: &str = "Synced";
    pub const ERRORED: &str = "Errored";
    pub const SOURCE_DELETED: &str = "SourceDeleted";

    pub const MSG_SYNCED: &str = "PushSecret synced successfully";
    /// Appended to [`MSG_SYNCED`] with `updatePolicy: IfNotExists`.
    pub const MSG_SYNCED_IF_NOT_EXISTS_SUFFIX: &str = ". Existing secrets in providers unchanged.";
    pub const MSG_SOURCE_DELETED: &str = "source secret deleted; provider secrets cleaned up";
    pub const MSG_GET_SOURCE_FAILED: &str = "could not get source secret";
}

/// ClusterExternalSecret messages (its conditions carry no reason in ESO).
pub mod cluster_external_secret {
    pub const MSG_NAMESPACES_FAILED: &str = "one or more namespaces failed";
}
