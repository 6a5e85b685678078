//! ExternalSecret: which remote values go into which Secret, and how often.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::LocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::ExternalSecretCondition;
use super::meta::{DNS_SUBDOMAIN, GeneratorRef, GoDuration, SECRET_KEY, SecretStoreRef};
use super::template::ExternalSecretTemplate;
use super::validation;

/// ESO's default refresh interval, in the exact text its CRD defaults to.
pub const DEFAULT_REFRESH_INTERVAL: &str = "1h0m0s";

fn default_refresh_interval() -> GoDuration {
    GoDuration::new(DEFAULT_REFRESH_INTERVAL)
}

/// Label on every Secret lockstep (or ESO) manages.
pub const LABEL_MANAGED: &str = "reconcile.external-secrets.io/managed";
/// Value of [`LABEL_MANAGED`].
pub const LABEL_MANAGED_VALUE: &str = "true";
/// Label naming the owning ExternalSecret (a hash of `<namespace>/<name>`), with `creationPolicy: Owner`.
pub const LABEL_OWNER: &str = "reconcile.external-secrets.io/created-by";
/// Annotation holding the hash of the Secret's data.
pub const ANNOTATION_DATA_HASH: &str = "reconcile.external-secrets.io/data-hash";
/// Annotation a ClusterExternalSecret mirrors onto its ExternalSecrets to force a refresh.
pub const ANNOTATION_FORCE_SYNC: &str = "external-secrets.io/force-sync";
/// ESO's finalizer on ExternalSecrets; lockstep removes it when it takes over.
pub const FINALIZER: &str = "externalsecrets.external-secrets.io/externalsecret-cleanup";

/// The desired state of an ExternalSecret.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "external-secrets.io",
    version = "v1",
    kind = "ExternalSecret",
    plural = "externalsecrets",
    singular = "externalsecret",
    shortname = "es",
    category = "external-secrets",
    namespaced,
    status = "ExternalSecretStatus",
    label("external-secrets.io/component", "controller"),
    doc = "ExternalSecret declares which values of an external secret manager are written into a Kubernetes Secret.",
    printcolumn(
        name = "StoreType",
        type_ = "string",
        json_path = ".spec.secretStoreRef.kind"
    ),
    printcolumn(
        name = "Store",
        type_ = "string",
        json_path = ".spec.secretStoreRef.name"
    ),
    printcolumn(
        name = "Refresh Interval",
        type_ = "string",
        json_path = ".spec.refreshInterval"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.refreshTime"),
    selectable = ".spec.secretStoreRef.name",
    selectable = ".spec.secretStoreRef.kind",
    selectable = ".spec.target.name",
    selectable = ".spec.refreshInterval"
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::external_secret_spec)]
pub struct ExternalSecretSpec {
    /// The store `data` and `dataFrom` read from, unless an entry names its own `sourceRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_store_ref: Option<SecretStoreRef>,

    /// The Secret to write.
    #[serde(default)]
    pub target: ExternalSecretTarget,

    /// When to refresh: Periodic (the default, every `refreshInterval`), OnChange (only when the
    /// ExternalSecret changes) or CreatedOnce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_policy: Option<RefreshPolicy>,

    /// How often values are read again, as a Go duration (`1h`, `30m`); `0` reads once.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: GoDuration,

    /// Windows (in UTC) that allow or deny periodic refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<SyncWindows>,

    /// One remote value per Secret key; each `secretKey` at most once.
    ///
    /// ESO refuses duplicate keys only with `deletionPolicy: Retain`; lockstep refuses them
    /// always: two entries writing one key make the Secret depend on their order, and with
    /// Delete or Merge a provider error on one of them silently changes which value wins. The
    /// API server enforces it through the list type (a map keyed by `secretKey`), which costs
    /// nothing and needs no limit on the number of entries; a CEL rule comparing every pair
    /// would be quadratic and force a small `maxItems` that ESO does not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["secretKey"])
    )]
    pub data: Vec<ExternalSecretData>,

    /// Many keys at once, from a JSON object, a search or a generator; later entries win.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub data_from: Vec<ExternalSecretDataFromRemoteRef>,
}

impl Default for ExternalSecretSpec {
    fn default() -> Self {
        Self {
            secret_store_ref: None,
            target: ExternalSecretTarget::default(),
            refresh_policy: None,
            refresh_interval: default_refresh_interval(),
            sync_windows: None,
            data: Vec::new(),
            data_from: Vec::new(),
        }
    }
}

impl ExternalSecretSpec {
    /// The Secret's name: `target.name`, else the ExternalSecret's own name.
    pub fn target_name<'a>(&'a self, external_secret_name: &'a str) -> &'a str {
        self.target.name.as_deref().unwrap_or(external_secret_name)
    }

    /// The refresh policy, with ESO's reading of an empty one as Periodic.
    pub fn refresh_policy_or_default(&self) -> RefreshPolicy {
        self.refresh_policy.unwrap_or_default()
    }
}

/// When an ExternalSecret is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum RefreshPolicy {
    CreatedOnce,
    #[default]
    Periodic,
    OnChange,
}

/// Whether sync windows permit or block periodic refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncWindowKind {
    // Refresh only while a window is open.
    Allow,
    // Never refresh while a window is open.
    Deny,
}

/// Sync windows; all share one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindows {
    pub kind: SyncWindowKind,

    #[schemars(length(min = 1, max = 50))]
    pub windows: Vec<SyncWindow>,
}

/// One window: opens at each `schedule` firing and stays open for `duration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// A 5-field cron expression in UTC, or `@daily`, `@hourly`, `@every 1h`, ...
    #[schemars(
        length(min = 1, max = 256),
        pattern(r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [^\s]+.*|[^\s]+( [^\s]+){4})$")
    )]
    pub schedule: String,

    /// How long the window stays open, as a Go duration (`8h`).
    pub duration: GoDuration,
}

/// Whether lockstep creates and owns the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum CreationPolicy {
    // Create the Secret and own it: it is garbage-collected with the ExternalSecret.
    #[default]
    Owner,
    // Create the Secret without an owner; it outlives the ExternalSecret.
    Orphan,
    // Never create; merge keys into a Secret that exists.
    Merge,
    // Do not write a Secret at all.
    None,
    // Create when missing, otherwise merge; no owner.
    CreateOrMerge,
}

/// What happens to the Secret when the provider has no data left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    // Delete the Secret (only one lockstep owns).
    Delete,
    // Remove the keys, keep the Secret.
    Merge,
    // Keep the Secret as it is; missing provider data is an error.
    #[default]
    Retain,
}

/// The Secret an ExternalSecret writes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::external_secret_target)]
pub struct ExternalSecretTarget {
    /// Name of the Secret; the ExternalSecret's name when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: Option<String>,

    #[serde(default)]
    pub creation_policy: CreationPolicy,

    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ExternalSecretTemplate>,

    /// Render into another kind (a ConfigMap or a custom resource) instead of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestReference>,

    /// Write the Secret as immutable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
}

/// The kind a generic target renders into.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestReference {
    #[schemars(length(min = 1, max = 253))]
    pub api_version: String,

    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
}

impl ManifestReference {
    /// A manifest naming core v1 Secret is the same as no manifest.
    pub fn is_secret(&self) -> bool {
        self.api_version == "v1" && self.kind == "Secret"
    }
}

/// One Secret key and the remote value it holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretData {
    /// Key in the Secret: letters, digits, `-`, `.` and `_` only.
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub secret_key: String,

    /// The remote value.
    pub remote_ref: RemoteRef,

    /// Read this entry from another store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreSourceRef>,
}

/// A value in the provider: which secret, which property, which version.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRef {
    /// Key (name) of the secret in the provider.
    pub key: String,

    /// Fetch the secret's metadata (tags, labels) instead of its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<MetadataPolicy>,

    /// A property of a JSON value; for AWS a gjson path such as `db.password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,

    /// A version; for AWS a stage (`AWSCURRENT`) or `uuid/<versionId>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// How invalid characters in keys are replaced (dataFrom only); `Default` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,

    /// How the value is decoded; `None` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,

    /// Whether a value containing NUL bytes is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// Whether the value or the metadata of a remote secret is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum MetadataPolicy {
    #[default]
    None,
    Fetch,
}

/// How key names that Kubernetes does not accept are rewritten (`dataFrom.extract` and `find`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum ConversionStrategy {
    // Each character that is not a letter, digit, `-`, `.` or `_` becomes `_`.
    #[default]
    Default,
    // Each such character becomes `_U<hex code point, at least 4 digits>_`.
    Unicode,
}

/// How fetched values are decoded before they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum DecodingStrategy {
    // Base64, else Base64URL, else the value as fetched. Any value that happens to be valid
    // base64 (for example `test`) is decoded, as in ESO.
    Auto,
    // Standard-alphabet base64 with padding.
    Base64,
    // URL-safe-alphabet base64 with padding.
    #[serde(rename = "Base64URL")]
    Base64Url,
    // Stored as fetched.
    #[default]
    None,
}

impl std::fmt::Display for DecodingStrategy {
    /// The spelling of the CRD enum, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Base64 => "Base64",
            Self::Base64Url => "Base64URL",
            Self::Auto => "Auto",
        })
    }
}

/// What to do with values that contain NUL bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum NullBytePolicy {
    // Store it: binary data is legitimate.
    #[default]
    Ignore,
    // Refuse it, for users who know their values are text.
    Fail,
}

/// A store or a generator that overrides `spec.secretStoreRef` for one entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::store_source_ref)]
pub struct StoreSourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<SecretStoreRef>,

    /// A generator instead of a store (in `data[]` ESO declares but never implemented it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_ref: Option<GeneratorRef>,
}

/// Many keys from one source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::data_from_entry)]
pub struct ExternalSecretDataFromRemoteRef {
    /// Explode one remote JSON object into keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<RemoteRef>,

    /// Every remote secret whose name or tags match, one key each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<ExternalSecretFind>,

    /// Rewrites of the key names, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub rewrite: Vec<ExternalSecretRewrite>,

    /// Another store for `extract`/`find`, or a generator (then without `extract`/`find`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<StoreSourceRef>,
}

/// A search of the provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretFind {
    /// A prefix the names must start with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// A regular expression the names must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<FindName>,

    /// Tags the secrets must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,

    /// How invalid characters in names are replaced; `Default` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_strategy: Option<ConversionStrategy>,

    /// How the values are decoded; `None` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding_strategy: Option<DecodingStrategy>,

    /// Whether a value containing NUL bytes is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_byte_policy: Option<NullBytePolicy>,
}

/// A name pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindName {
    /// An RE2 regular expression, unanchored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
}

/// One rewrite of key names: exactly one of `merge`, `regexp` or `transform`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::rewrite)]
pub struct ExternalSecretRewrite {
    /// Merge the JSON values into one object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<RewriteMerge>,

    /// Replace with a regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RewriteRegexp>,

    /// Rewrite with a template; `.value` is the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<RewriteTransform>,
}

/// Merge the values of all keys into one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteMerge {
    /// The key the merged object is written to (strategy JSON).
    #[serde(default)]
    pub into: String,

    /// Keys whose values win on a conflict, last one strongest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority: Vec<String>,

    #[serde(default)]
    pub priority_policy: MergePriorityPolicy,

    #[serde(default)]
    pub conflict_policy: MergeConflictPolicy,

    #[serde(default)]
    pub strategy: MergeStrategy,
}

/// What to do when a `priority` key is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum MergePriorityPolicy {
    IgnoreNotFound,
    #[default]
    Strict,
}

/// What to do when two values hold the same inner key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum MergeConflictPolicy {
    Ignore,
    #[default]
    Error,
}

/// Whether the merged object replaces the keys or is added under `into`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum MergeStrategy {
    #[default]
    Extract,
    #[serde(rename = "JSON")]
    Json,
}

/// A regular-expression rewrite of key names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteRegexp {
    /// RE2 regular expression.
    pub source: String,
    /// Replacement, with `$1` / `${1}` for groups.
    pub target: String,
}

/// A template rewrite of key names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewriteTransform {
    pub template: String,
}

/// What lockstep observed and did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretStatus {
    /// When the last successful refresh started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time: Option<Time>,

    /// `<generation>-<hash of labels and annotations>` at the last successful refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_resource_version: Option<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ExternalSecretCondition>,

    /// The written Secret, for servicebinding.io.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<LocalObjectReference>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
