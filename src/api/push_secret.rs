//! PushSecret and ClusterPushSecret: write Kubernetes Secrets into external secret managers.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::cluster_external_secret::NamespaceFailure;
use super::conditions::Condition;
use super::external_secret::{DEFAULT_REFRESH_INTERVAL, RewriteRegexp, RewriteTransform};
use super::meta::{DNS_SUBDOMAIN, GeneratorRef, GoDuration, LabelsAndAnnotations, StoreKind};
use super::template::ExternalSecretTemplate;
use super::validation;

/// Finalizer ESO puts on PushSecrets.
pub const FINALIZER: &str = "pushsecret.externalsecrets.io/finalizer";

fn default_refresh_interval() -> GoDuration {
    GoDuration::new(DEFAULT_REFRESH_INTERVAL)
}

/// The desired state of a PushSecret.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "PushSecret",
    plural = "pushsecrets",
    singular = "pushsecret",
    shortname = "ps",
    category = "external-secrets",
    namespaced,
    status = "PushSecretStatus",
    label("external-secrets.io/component", "controller"),
    doc = "PushSecret writes the keys of a Kubernetes Secret into external secret managers.",
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
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.refreshTime")
)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSpec {
    /// How often the Secret is pushed again, as a Go duration.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: GoDuration,

    /// The stores to push to.
    pub secret_store_refs: Vec<PushSecretStoreRef>,

    /// Replace remote values, or only create missing ones.
    #[serde(default)]
    pub update_policy: PushSecretUpdatePolicy,

    /// Whether remote values are deleted when they leave the spec or the PushSecret is deleted.
    #[serde(default)]
    pub deletion_policy: PushSecretDeletionPolicy,

    /// The Secret (or generator) to push.
    pub selector: PushSecretSelector,

    /// Which keys go where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<PushSecretData>,

    /// Bulk rules: push many keys without listing each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_to: Vec<PushSecretDataTo>,

    /// Shapes the Secret before it is pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,
}

impl Default for PushSecretSpec {
    fn default() -> Self {
        Self {
            refresh_interval: default_refresh_interval(),
            secret_store_refs: Vec::new(),
            update_policy: PushSecretUpdatePolicy::default(),
            deletion_policy: PushSecretDeletionPolicy::default(),
            selector: PushSecretSelector::default(),
            data: Vec::new(),
            data_to: Vec::new(),
            template: None,
        }
    }
}

/// Stores to push to, by name or by labels.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStoreRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,

    #[serde(default)]
    pub kind: StoreKind,
}

/// Whether existing remote values are overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum PushSecretUpdatePolicy {
    #[default]
    Replace,
    IfNotExists,
}

/// Whether pushed values are deleted from the provider when no longer pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum PushSecretDeletionPolicy {
    Delete,
    #[default]
    None,
}

/// How key names are converted before pushing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum PushSecretConversionStrategy {
    #[default]
    None,
    ReverseUnicode,
}

/// The source: a Secret or a generator, exactly one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::push_secret_selector)]
pub struct PushSecretSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<PushSecretSecret>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// A Secret in the PushSecret's namespace, by name or by labels.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// One key and where it goes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretData {
    #[serde(rename = "match")]
    pub match_: PushSecretMatch,

    /// Provider-specific metadata (for AWS a `PushSecretMetadata` document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub metadata: Option<serde_json::Value>,

    #[serde(default)]
    pub conversion_strategy: PushSecretConversionStrategy,
}

/// A Secret key and the remote location it is pushed to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretMatch {
    /// The key; the whole Secret as a JSON object when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,

    pub remote_ref: PushSecretRemoteRef,
}

/// A remote location.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretRemoteRef {
    /// Name of the remote secret.
    pub remote_key: String,

    /// A property inside the remote secret's JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// A bulk push rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::push_secret_data_to)]
pub struct PushSecretDataTo {
    /// The store to push to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<PushSecretStoreRef>,

    /// Push all matched keys as one JSON object under this name, instead of one secret per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_key: Option<String>,

    /// Which keys; all when empty.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_: Option<PushSecretDataToMatch>,

    /// Rewrites of the key names, in order (one secret per key only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<PushSecretRewrite>,

    /// Provider-specific metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json")]
    pub metadata: Option<serde_json::Value>,

    #[serde(default)]
    pub conversion_strategy: PushSecretConversionStrategy,
}

/// Key selection for a bulk push.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretDataToMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
}

/// A rewrite of key names before pushing: exactly one of `regexp` or `transform`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::push_secret_rewrite)]
pub struct PushSecretRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
}

/// What lockstep observed and did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSecretStatus {
    /// When the last successful push started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<Time>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,

    /// `<Kind>/<store>` to remote key to what was pushed there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub synced_push_secrets: BTreeMap<String, BTreeMap<String, PushSecretData>>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The desired state of a ClusterPushSecret.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1alpha1",
    kind = "ClusterPushSecret",
    plural = "clusterpushsecrets",
    singular = "clusterpushsecret",
    category = "external-secrets",
    status = "ClusterPushSecretStatus",
    label("external-secrets.io/component", "controller"),
    doc = "ClusterPushSecret creates the same PushSecret in every namespace it selects.",
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretSpec {
    /// The spec of the PushSecrets to create.
    pub push_secret_spec: PushSecretSpec,

    /// How often namespaces are checked again, as a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<GoDuration>,

    /// Name of the PushSecrets; the ClusterPushSecret's name when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub push_secret_name: Option<String>,

    /// Labels and annotations of the PushSecrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret_metadata: Option<LabelsAndAnnotations>,

    /// Namespaces matching any of these selectors get the PushSecret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
}

/// What lockstep observed and did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPushSecretStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_namespaces: Vec<NamespaceFailure>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioned_namespaces: Vec<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret_name: Option<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Any JSON value, kept as written.
fn any_json(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}
