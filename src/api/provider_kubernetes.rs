//! `spec.provider.kubernetes`: Secrets of a (possibly other) Kubernetes cluster.
use k8s_openapi::ByteString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{CaProvider, DNS_LABEL, SecretKeySelector, ServiceAccountSelector, base64_bytes};
use super::validation;

fn default_server_url() -> String {
    "kubernetes.default".to_owned()
}

fn default_remote_namespace() -> String {
    "default".to_owned()
}

/// A Kubernetes API server and the namespace to read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<KubernetesServer>,

    /// How to authenticate (exactly one method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<KubernetesAuth>,

    /// A Secret key holding a kubeconfig, instead of `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_ref: Option<SecretKeySelector>,

    /// Namespace the Secrets are read from.
    #[serde(default = "default_remote_namespace")]
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub remote_namespace: String,
}

/// Address and trust of the API server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServer {
    #[serde(default = "default_server_url")]
    pub url: String,

    /// PEM certificate authority bundle, base64 in YAML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "base64_bytes")]
    pub ca_bundle: Option<ByteString>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
}

/// Exactly one way to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::kubernetes_auth)]
pub struct KubernetesAuth {
    /// A client certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertAuth>,

    /// A bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenAuth>,

    /// Tokens of a ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSelector>,
}

/// Client certificate authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::kubernetes_cert_auth)]
pub struct CertAuth {
    pub client_cert: SecretKeySelector,
    pub client_key: SecretKeySelector,
}

/// Bearer token authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::kubernetes_token_auth)]
pub struct TokenAuth {
    pub bearer_token: SecretKeySelector,
}
