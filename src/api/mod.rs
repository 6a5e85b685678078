//! The CRD types of `external-secrets.io`, shaped like ESO's so that ESO manifests apply
//! unchanged: field names, defaults, enums, printer columns, and ESO's webhook checks as schema
//! rules.
pub mod cluster_external_secret;
pub mod conditions;
pub mod external_secret;
pub mod meta;
pub mod provider;
pub mod provider_aws;
pub mod provider_fake;
pub mod provider_kubernetes;
pub mod provider_webhook;
pub mod push_secret;
pub mod secret_store;
pub mod template;
pub mod validation;
pub mod versions;

#[cfg(test)]
mod tests;

pub use cluster_external_secret::{
    ClusterExternalSecret, ClusterExternalSecretSpec, ClusterExternalSecretStatus,
};
pub use external_secret::{ExternalSecret, ExternalSecretSpec, ExternalSecretStatus};
pub use push_secret::{
    ClusterPushSecret, ClusterPushSecretSpec, PushSecret, PushSecretSpec, PushSecretStatus,
};
pub use secret_store::{ClusterSecretStore, SecretStore, SecretStoreSpec, SecretStoreStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Every CRD lockstep serves, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    versions::crds()
}
