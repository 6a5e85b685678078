//! SecretStore and ClusterSecretStore: where secrets live and how to authenticate. Both kinds
//! share one spec, as in ESO.
use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use kube::core::object::{HasSpec, HasStatus};
use kube::core::{ClusterResourceScope, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::Condition;
use super::meta::{DNS_LABEL, GROUP, GoDuration, InvalidDuration};
use super::provider::SecretStoreProvider;
use super::validation;

/// Finalizer ESO puts on stores that PushSecrets with `deletionPolicy: Delete` use.
pub const FINALIZER: &str = "secretstore.externalsecrets.io/finalizer";

/// The desired state of a SecretStore or ClusterSecretStore.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "SecretStore",
    plural = "secretstores",
    singular = "secretstore",
    shortname = "ss",
    category = "external-secrets",
    namespaced,
    status = "SecretStoreStatus",
    label("external-secrets.io/component", "controller"),
    doc = "SecretStore says where secrets live and how to authenticate, for ExternalSecrets in its namespace.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Capabilities",
        type_ = "string",
        json_path = ".status.capabilities"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::secret_store_spec)]
pub struct SecretStoreSpec {
    /// Controller class: a lockstep started with another `--controller-class` ignores this store.
    /// Empty means every controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,

    /// The provider; exactly one.
    pub provider: SecretStoreProvider,

    /// Retries of provider calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<RetrySettings>,

    /// How often the store is validated again: seconds, or a Go duration such as `5m`. Empty or
    /// `0` uses the controller's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxLength" = 64))]
    pub refresh_interval: Option<IntOrString>,

    /// Namespaces whose ExternalSecrets may use this store (ClusterSecretStore only); any of the
    /// conditions must match. Empty allows every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClusterSecretStoreCondition>,
}

impl SecretStoreSpec {
    /// `refreshInterval` as a duration; `None` when unset or zero (use the controller default).
    pub fn refresh_interval(&self) -> Result<Option<std::time::Duration>, InvalidDuration> {
        let duration = match &self.refresh_interval {
            None => return Ok(None),
            Some(IntOrString::Int(seconds)) => {
                let seconds = u64::try_from(*seconds).map_err(|_| InvalidDuration {
                    text: seconds.to_string(),
                    reason: "a negative number of seconds has no meaning here".into(),
                })?;
                std::time::Duration::from_secs(seconds)
            }
            Some(IntOrString::String(text)) => GoDuration::new(text.clone()).to_std()?,
        };
        Ok((!duration.is_zero()).then_some(duration))
    }
}

/// Retries of provider calls.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    /// Attempts; 3 when `retrySettings` is set without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_retries: Option<i32>,

    /// Fixed delay between attempts, as a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<GoDuration>,
}

/// Namespaces allowed to use a ClusterSecretStore: matching the selector, named, or matching a
/// regular expression.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 63), pattern(DNS_LABEL)))]
    pub namespaces: Vec<String>,

    /// RE2 regular expressions matched against the namespace name. The API server cannot check
    /// that they compile; the controller does, and reports a store whose expression does not as
    /// not Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_regexes: Vec<String>,
}

/// What a store can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Capabilities {
    ReadOnly,
    WriteOnly,
    ReadWrite,
}

/// What lockstep observed about a store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A store for ExternalSecrets in any namespace its `conditions` allow.
///
/// Written by hand rather than derived so that it shares [`SecretStoreSpec`] with SecretStore;
/// its CRD is SecretStore's with the names and scope changed (see `versions`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStore {
    pub metadata: ObjectMeta,
    pub spec: SecretStoreSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SecretStoreStatus>,
}

impl ClusterSecretStore {
    pub fn new(name: &str, spec: SecretStoreSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

/// Serialized with `apiVersion` and `kind`, which the API server needs on every request body.
impl Serialize for ClusterSecretStore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            spec: &'a SecretStoreSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<SecretStoreStatus>,
        }
        Wire {
            api_version: "external-secrets.io/v1",
            kind: "ClusterSecretStore",
            metadata: &self.metadata,
            spec: &self.spec,
            status: &self.status,
        }
        .serialize(serializer)
    }
}

impl Resource for ClusterSecretStore {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ClusterSecretStore".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn api_version(_: &()) -> Cow<'_, str> {
        "external-secrets.io/v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "clustersecretstores".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl HasSpec for ClusterSecretStore {
    type Spec = SecretStoreSpec;

    fn spec(&self) -> &SecretStoreSpec {
        &self.spec
    }

    fn spec_mut(&mut self) -> &mut SecretStoreSpec {
        &mut self.spec
    }
}

impl HasStatus for ClusterSecretStore {
    type Status = SecretStoreStatus;

    fn status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }

    fn status_mut(&mut self) -> &mut Option<SecretStoreStatus> {
        &mut self.status
    }
}
