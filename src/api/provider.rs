//! `spec.provider` of a store: the providers lockstep supports, and ESO's others, which the API
//! server refuses with a message naming the supported ones (see `validation::provider`).
use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::provider_aws::AwsProvider;
use super::provider_fake::FakeProvider;
use super::provider_kubernetes::KubernetesProvider;
use super::provider_webhook::WebhookProvider;
use super::validation;

/// The `spec.provider` keys lockstep implements, in the order messages list them.
pub const SUPPORTED_PROVIDERS: [&str; 4] = ["aws", "fake", "kubernetes", "webhook"];

/// ESO's other `spec.provider` keys (ESO v2.9 has 43 in all). They are declared in the schema as
/// opaque objects so that the API server does not prune them silently, and refused by a rule.
pub const UNSUPPORTED_PROVIDERS: [&str; 39] = [
    "azurekv",
    "akeyless",
    "bitwardensecretsmanager",
    "vault",
    "ovh",
    "gcpsm",
    "oracle",
    "ibm",
    "yandexcertificatemanager",
    "yandexlockbox",
    "github",
    "gitlab",
    "onepassword",
    "onepasswordSDK",
    "crd",
    "senhasegura",
    "scaleway",
    "doppler",
    "previder",
    "onboardbase",
    "keepersecurity",
    "conjur",
    "delinea",
    "secretserver",
    "chef",
    "pulumi",
    "fortanix",
    "passworddepot",
    "passbolt",
    "dvls",
    "infisical",
    "beyondtrust",
    "beyondtrustworkloadcredentials",
    "cloudrusm",
    "volcengine",
    "ngrok",
    "barbican",
    "nebiusmysterybox",
    "openBao",
];

/// Exactly one provider (the schema enforces it; the Rust type cannot).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::provider)]
pub struct SecretStoreProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsProvider>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake: Option<FakeProvider>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesProvider>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookProvider>,

    /// Keys of providers lockstep does not implement. The API server refuses them, but a store
    /// written before lockstep's CRDs were installed may still carry one: it is kept here so that
    /// the store can be reported as unsupported instead of failing to parse.
    #[serde(flatten)]
    #[schemars(skip)]
    pub unsupported: BTreeMap<String, serde_json::Value>,
}

/// The one provider a store configures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Provider<'a> {
    Aws(&'a AwsProvider),
    Fake(&'a FakeProvider),
    Kubernetes(&'a KubernetesProvider),
    Webhook(&'a WebhookProvider),
}

impl Provider<'_> {
    /// The `spec.provider` key.
    pub fn key(&self) -> &'static str {
        match self {
            Provider::Aws(_) => "aws",
            Provider::Fake(_) => "fake",
            Provider::Kubernetes(_) => "kubernetes",
            Provider::Webhook(_) => "webhook",
        }
    }
}

/// Why a store does not name exactly one supported provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderSelectionError {
    #[error("provider {0:?} is not supported by lockstep yet; supported providers: {list}", list = SUPPORTED_PROVIDERS.join(", "))]
    Unsupported(String),
    #[error("exactly one provider must be set (supported: {list}); found {found}", list = SUPPORTED_PROVIDERS.join(", "), found = .0.len())]
    NotExactlyOne(Vec<String>),
}

impl SecretStoreProvider {
    /// Every key set, supported or not, in schema order.
    pub fn configured_keys(&self) -> Vec<String> {
        let supported = [
            ("aws", self.aws.is_some()),
            ("fake", self.fake.is_some()),
            ("kubernetes", self.kubernetes.is_some()),
            ("webhook", self.webhook.is_some()),
        ];
        supported
            .iter()
            .filter(|(_, set)| *set)
            .map(|(key, _)| (*key).to_owned())
            .chain(self.unsupported.keys().cloned())
            .collect()
    }

    /// The single supported provider, or why there is none.
    pub fn single(&self) -> Result<Provider<'_>, ProviderSelectionError> {
        if let Some(key) = self.unsupported.keys().next() {
            return Err(ProviderSelectionError::Unsupported(key.clone()));
        }
        let mut set = Vec::with_capacity(1);
        if let Some(p) = &self.aws {
            set.push(Provider::Aws(p));
        }
        if let Some(p) = &self.fake {
            set.push(Provider::Fake(p));
        }
        if let Some(p) = &self.kubernetes {
            set.push(Provider::Kubernetes(p));
        }
        if let Some(p) = &self.webhook {
            set.push(Provider::Webhook(p));
        }
        match set.as_slice() {
            [one] => Ok(*one),
            _ => Err(ProviderSelectionError::NotExactlyOne(
                self.configured_keys(),
            )),
        }
    }
}

impl fmt::Display for Provider<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
