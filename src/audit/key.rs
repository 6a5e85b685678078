//! The per-installation fingerprint key, kept in a Kubernetes Secret in lockstep's own namespace
//! and created on first start; and lockstep's own identity, for the records' `user`.
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::fingerprint::{FingerprintKey, KeyError};
use super::record::User;

/// The key inside the Secret's data.
pub const DATA_KEY: &str = "key";

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error(
        "reading or creating the audit key Secret {namespace}/{name}: {source}; lockstep needs get and create on secrets in {namespace}"
    )]
    Kube {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error(
        "the audit key Secret {namespace}/{name} has no usable data key {DATA_KEY:?} ({source}); delete it to let lockstep create a new key (fingerprints made with the old key then no longer match)"
    )]
    Unusable {
        namespace: String,
        name: String,
        source: KeyError,
    },
    #[error(transparent)]
    Generate(KeyError),
}

/// The namespace lockstep runs in: `LOCKSTEP_NAMESPACE_SELF`, `POD_NAMESPACE`, the in-cluster
/// service account's namespace, else `default`.
pub fn own_namespace() -> String {
    ["LOCKSTEP_NAMESPACE_SELF", "POD_NAMESPACE"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .chain(
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok(),
        )
        .map(|n| n.trim().to_owned())
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The key in `namespace/name`, created with fresh random bytes when the Secret does not exist.
pub async fn load_or_create(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<FingerprintKey, KeyStoreError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let kube = |source| KeyStoreError::Kube {
        namespace: namespace.into(),
        name: name.into(),
        source,
    };
    if let Some(existing) = api.get_opt(name).await.map_err(kube)? {
        return from_secret(existing, namespace, name);
    }
    let key = FingerprintKey::generate().map_err(KeyStoreError::Generate)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "lockstep".to_string(),
            )])),
            annotations: Some(BTreeMap::from([(
                "lockstep.dev/purpose".to_string(),
                "HMAC key of the audit log's value fingerprints; deleting it changes every fingerprint from the next start".to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            DATA_KEY.to_string(),
            ByteString(key.bytes().to_vec()),
        )])),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = %format!("{namespace}/{name}"), "created the audit key");
            Ok(key)
        }
        // Another replica created it first: use theirs.
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = api.get(name).await.map_err(kube)?;
            from_secret(existing, namespace, name)
        }
        Err(e) => Err(kube(e)),
    }
}

fn from_secret(
    secret: Secret,
    namespace: &str,
    name: &str,
) -> Result<FingerprintKey, KeyStoreError> {
    let bytes = secret
        .data
        .and_then(|mut d| d.remove(DATA_KEY))
        .map(|b| b.0)
        .unwrap_or_default();
    FingerprintKey::new(bytes).map_err(|source| KeyStoreError::Unusable {
        namespace: namespace.into(),
        name: name.into(),
        source,
    })
}

/// Who lockstep is to the API server (a SelfSubjectReview); `unknown` if it cannot tell.
pub async fn whoami(client: &Client) -> User {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(review) => {
            let info = review.status.and_then(|s| s.user_info).unwrap_or_default();
            User {
                username: info.username.unwrap_or_else(|| "unknown".into()),
                groups: info.groups.unwrap_or_default(),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not tell lockstep's own identity for the audit log");
            User {
                username: "unknown".into(),
                groups: vec![],
            }
        }
    }
}
