//! `spec.provider.aws`: AWS Secrets Manager, Parameter Store and Certificate Manager.
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{SecretKeySelector, ServiceAccountSelector};
use super::validation;

/// A region name as the AWS endpoint resolver accepts it: host labels, such as `us-east-1`.
pub const REGION_PATTERN: &str = r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$";

/// Session tag keys lockstep sets itself with `sessionTagsPolicy` Simple or Custom.
pub const RESERVED_SESSION_TAG_KEYS: [&str; 3] = ["esoNamespace", "esoStoreName", "esoStoreKind"];

/// Which AWS API holds the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AwsService {
    SecretsManager,
    ParameterStore,
    CertificateManager,
}

/// Whether STS session tags name the ExternalSecret's namespace and store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum SessionTagsPolicy {
    // Use `sessionTags` as written.
    #[default]
    None,
    // Replace them with esoNamespace, esoStoreName and esoStoreKind.
    Simple,
    // As Simple, plus `customSessionTags`.
    Custom,
}

/// AWS access for a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::aws_provider)]
pub struct AwsProvider {
    /// Which API to use.
    pub service: AwsService,

    /// How to authenticate; the default credential chain of lockstep's own pod when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AwsAuth>,

    /// A role ARN to assume on top of the base credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub role: Option<String>,

    /// Region, such as `us-east-1`.
    #[schemars(length(min = 1, max = 128), pattern(REGION_PATTERN))]
    pub region: String,

    /// Role ARNs assumed in order before `role`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_roles: Vec<String>,

    /// The ExternalId passed when assuming `role`.
    #[serde(
        rename = "externalID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,

    /// Session tags passed when assuming `role`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub session_tags: Vec<Tag>,

    /// Settings for deleting Secrets Manager secrets (PushSecret with `deletionPolicy: Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<SecretsManagerSettings>,

    /// Session tag keys that pass on to chained roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub transitive_tag_keys: Vec<String>,

    /// Whether session tags name the ExternalSecret's namespace and the store.
    #[serde(default)]
    pub session_tags_policy: SessionTagsPolicy,

    /// Extra session tags with `sessionTagsPolicy: Custom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    pub custom_session_tags: BTreeMap<String, String>,

    /// Prepended verbatim to every remote key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// An STS session tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// How Secrets Manager secrets are deleted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::aws_secrets_manager)]
pub struct SecretsManagerSettings {
    /// Delete at once, without a recovery window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_delete_without_recovery: bool,

    /// Days (7 to 30) before a deleted secret is gone for good; AWS's default is 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_window_in_days: Option<i64>,
}

/// AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuth {
    /// Static access keys from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<AwsAuthSecretRef>,

    /// Web identity through a ServiceAccount token (IRSA style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<AwsJwtAuth>,
}

/// Keys of Secrets holding static credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuthSecretRef {
    #[serde(
        rename = "accessKeyIDSecretRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id_secret_ref: Option<SecretKeySelector>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_secret_ref: Option<SecretKeySelector>,

    /// Only for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_secret_ref: Option<SecretKeySelector>,
}

/// Web identity: a token of this ServiceAccount is exchanged for the role in its
/// `eks.amazonaws.com/role-arn` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsJwtAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
}
