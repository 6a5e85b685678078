//! Shapes shared by several kinds: references to stores, Secrets, ServiceAccounts and generators,
//! Go durations, and the patterns Kubernetes names must match.
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The API group every lockstep kind lives in, the same as ESO's.
pub const GROUP: &str = "external-secrets.io";

/// A DNS-1123 subdomain: the name of a Secret, ConfigMap, store or generator.
pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A DNS-1123 label: the name of a namespace.
pub const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A key of a Secret or ConfigMap's `data`. `/` is not allowed, as Kubernetes itself refuses it.
pub const SECRET_KEY: &str = "^[-._a-zA-Z0-9]+$";
/// A Go `time.ParseDuration` string without a sign: `0`, `30s`, `1h30m`, `1.5h`, `250ms`.
/// Negative durations have no meaning for any lockstep field, so they are refused.
pub const GO_DURATION: &str = r"^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

/// The longest object name Kubernetes accepts.
pub const MAX_NAME_LENGTH: u32 = 253;
/// The longest namespace name Kubernetes accepts.
pub const MAX_NAMESPACE_LENGTH: u32 = 63;

/// A duration in Go's `time.ParseDuration` syntax, kept as the text the user wrote so that a
/// round trip through lockstep never rewrites `1h` into `1h0m0s`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GoDuration(pub String);

impl GoDuration {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The duration as a `std::time::Duration`; `Err` says why the text is not a Go duration.
    /// The schema already refuses anything that is not, so this only fails on objects stored
    /// before lockstep's CRDs were installed.
    pub fn to_std(&self) -> Result<std::time::Duration, InvalidDuration> {
        let parsed: kube::core::Duration =
            self.0
                .parse()
                .map_err(|e: kube::core::duration::ParseError| InvalidDuration {
                    text: self.0.clone(),
                    reason: e.to_string(),
                })?;
        if parsed.is_negative() {
            return Err(InvalidDuration {
                text: self.0.clone(),
                reason: "a negative duration has no meaning here".into(),
            });
        }
        Ok(parsed.into())
    }
}

impl fmt::Debug for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for GoDuration {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 64,
            "pattern": GO_DURATION,
        })
    }
}

/// Schema of a `[]byte` field: base64 text in YAML and JSON.
pub(crate) fn base64_bytes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "byte" })
}

/// A duration that is not in Go's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration such as 30s, 5m or 1h: {reason}")]
pub struct InvalidDuration {
    pub text: String,
    pub reason: String,
}

/// Which kind of store a reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum StoreKind {
    #[default]
    SecretStore,
    ClusterSecretStore,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::SecretStore => "SecretStore",
            StoreKind::ClusterSecretStore => "ClusterSecretStore",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which SecretStore or ClusterSecretStore to read from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreRef {
    /// Name of the SecretStore or ClusterSecretStore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: Option<String>,

    /// Kind of the store: SecretStore (when empty) or ClusterSecretStore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreKind>,
}

impl SecretStoreRef {
    /// The kind, with ESO's reading of an empty kind as SecretStore.
    pub fn kind_or_default(&self) -> StoreKind {
        self.kind.unwrap_or_default()
    }
}

/// A key of a Secret, possibly in another namespace (ClusterSecretStore only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: Option<String>,

    /// Namespace of the Secret. Only a ClusterSecretStore may point into another namespace; when
    /// empty, the namespace of the ExternalSecret (or of the SecretStore) is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub namespace: Option<String>,

    /// Key within the Secret's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: Option<String>,
}

/// A ServiceAccount whose tokens authenticate to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSelector {
    /// Name of the ServiceAccount.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,

    /// Namespace of the ServiceAccount. Only a ClusterSecretStore may point into another
    /// namespace; when empty, the namespace of the ExternalSecret is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub namespace: Option<String>,

    /// Extra audiences for the token, added to the provider's own (for AWS `sts.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 256)))]
    pub audiences: Vec<String>,
}

/// Where a certificate authority bundle is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CaProviderType {
    Secret,
    ConfigMap,
}

/// A Secret or ConfigMap key that holds a PEM certificate authority bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaProvider {
    /// Secret or ConfigMap.
    #[serde(rename = "type")]
    pub type_: CaProviderType,

    /// Name of the Secret or ConfigMap.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,

    /// Key that holds the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: Option<String>,

    /// Namespace of the Secret or ConfigMap; only for a ClusterSecretStore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub namespace: Option<String>,
}

/// The generator kinds of `generators.external-secrets.io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum GeneratorKind {
    #[serde(rename = "ACRAccessToken")]
    AcrAccessToken,
    BeyondtrustWorkloadCredentialsDynamicSecret,
    ClusterGenerator,
    CloudsmithAccessToken,
    #[serde(rename = "ECRAuthorizationToken")]
    EcrAuthorizationToken,
    Fake,
    #[serde(rename = "GCRAccessToken")]
    GcrAccessToken,
    GithubAccessToken,
    GitlabDeployToken,
    QuayAccessToken,
    Password,
    #[serde(rename = "SSHKey")]
    SshKey,
    #[serde(rename = "STSSessionToken")]
    StsSessionToken,
    #[serde(rename = "UUID")]
    Uuid,
    VaultDynamicSecret,
    Webhook,
    Grafana,
    #[serde(rename = "MFA")]
    Mfa,
}

/// The apiVersion a generator reference gets when it names none.
pub const DEFAULT_GENERATOR_API_VERSION: &str = "generators.external-secrets.io/v1alpha1";

fn default_generator_api_version() -> String {
    DEFAULT_GENERATOR_API_VERSION.to_owned()
}

/// A generator resource that produces values instead of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorRef {
    /// apiVersion of the generator.
    #[serde(default = "default_generator_api_version")]
    #[schemars(length(max = 253))]
    pub api_version: String,

    /// Kind of the generator.
    pub kind: GeneratorKind,

    /// Name of the generator.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
}

/// Labels and annotations for an object lockstep creates on the user's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelsAndAnnotations {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,

    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(
            GoDuration::from("1h").to_std(),
            Ok(std::time::Duration::from_secs(3600))
        );
        assert_eq!(
            GoDuration::from("1h0m0s").to_std(),
            Ok(std::time::Duration::from_secs(3600))
        );
        assert_eq!(
            GoDuration::from("0").to_std(),
            Ok(std::time::Duration::ZERO)
        );
        assert!(GoDuration::from("soon").to_std().is_err());
    }

    #[test]
    fn the_duration_pattern_matches_what_go_accepts() {
        let pattern = regex::Regex::new(GO_DURATION).expect("pattern compiles");
        for ok in [
            "0", "1h", "30m", "1h30m", "1h0m0s", "1.5h", ".5s", "250ms", "10us", "3µs", "7ns",
        ] {
            assert!(pattern.is_match(ok), "{ok} should match");
            assert!(GoDuration::from(ok).to_std().is_ok(), "{ok} should parse");
        }
        for bad in ["soon", "", "1", "h", "-1h", "1d", "1h 30m", "0s0"] {
            assert!(!pattern.is_match(bad), "{bad} should not match");
        }
    }

    #[test]
    fn the_secret_key_pattern_refuses_slashes() {
        let pattern = regex::Regex::new(SECRET_KEY).expect("pattern compiles");
        assert!(pattern.is_match("database-password"));
        assert!(pattern.is_match(".dockerconfigjson"));
        assert!(!pattern.is_match("prod/app"));
        assert!(!pattern.is_match(""));
    }
}
