//! `spec.provider.webhook`: any HTTP API, called with a templated request.
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{CaProvider, GoDuration, SecretKeySelector, base64_bytes};

/// The request to make and how to read its answer.
///
/// `Debug` leaves out header values and the body: users sometimes write a token there instead
/// of a `{{ .secret.key }}` reference, and a store spec does end up in logs.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookProvider {
    /// HTTP method; GET when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,

    /// URL template; `{{ .remoteRef.key }}` and friends are query-escaped.
    #[schemars(length(min = 1))]
    pub url: String,

    /// Header name to value template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<WebhookAuth>,

    /// Body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,

    /// Request timeout as a Go duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<WebhookResult>,

    /// Secrets available to the templates as `.<name>.<key>`; they must carry the label
    /// `external-secrets.io/type: webhook`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<WebhookSecret>,

    /// PEM certificate authority bundle for https URLs, base64 in YAML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "base64_bytes")]
    pub ca_bundle: Option<ByteString>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
}

impl fmt::Debug for WebhookProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|k| (k.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("WebhookProvider")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("auth", &self.auth)
            .field("body", &self.body.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("result", &self.result)
            .field("secrets", &self.secrets)
            .field(
                "ca_bundle",
                &self
                    .ca_bundle
                    .as_ref()
                    .map(|b| format!("<{} bytes>", b.0.len())),
            )
            .field("ca_provider", &self.ca_provider)
            .finish()
    }
}

/// Authentication protocols; exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAuth {
    pub ntlm: NtlmProtocol,
}

/// NTLM credentials from Secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NtlmProtocol {
    pub username_secret: SecretKeySelector,
    pub password_secret: SecretKeySelector,
}

/// How the response is read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResult {
    /// A JSONPath selecting the value in a JSON response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
}

/// A Secret passed to the templates under `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecret {
    pub name: String,
    pub secret_ref: SecretKeySelector,
}
