//! ESO's kubernetes provider (eso-compatibility.md 5): Secrets of one namespace of a cluster,
//! this one or another, read with the store's own identity (a token, a ServiceAccount's token,
//! a client certificate or a kubeconfig), never lockstep's.
//!
//! As ESO reads them:
//! - `key` is the Secret's name; the value is the JSON object of all its data (strings), from
//!   which the controller selects `property` (a data key, `tls.crt` included);
//! - with `metadataPolicy: Fetch`, `{"annotations":{..},"labels":{..}}`;
//! - `find` lists the namespace's Secrets by labels (`tags`) or else by name regexp; `path` is
//!   ignored, and so is `name` when `tags` are set, as in ESO; each found Secret is the JSON of
//!   its data, under its name;
//! - validation asks the API server (SelfSubjectAccessReview) whether the identity may `get`
//!   secrets in the namespace, and says so when it may not.
#![forbid(unsafe_code)]

mod connection;
mod encode;
mod errors;

pub use connection::{Connection, Credential, DEFAULT_SERVER_URL};

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use lockstep_provider_api::{
    Capabilities, Fetched, FindQuery, ProviderError, RemoteRef, SecretProvider, SecretValue,
    Validation,
};

use crate::errors::{Call, classify};

/// The Secrets of one namespace, read with one identity.
#[derive(Clone)]
pub struct KubernetesSecrets {
    client: Client,
    secrets: Api<Secret>,
    namespace: String,
    /// `the API server https://...`, for messages.
    server: String,
}

impl std::fmt::Debug for KubernetesSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSecrets")
            .field("namespace", &self.namespace)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubernetesSecrets {
    /// A client for `connection`. Nothing is called yet: a wrong server or credential shows in
    /// [`SecretProvider::validate`] and on the first read.
    pub async fn connect(connection: &Connection) -> Result<Self, ProviderError> {
        let config = connection.kube_config().await?;
        let server = connection.server_label();
        let client = Client::try_from(config).map_err(|e| {
            ProviderError::invalid(format!("cannot build a client for {server}: {e}"))
        })?;
        Ok(Self {
            secrets: Api::namespaced(client.clone(), &connection.namespace),
            client,
            namespace: connection.namespace.clone(),
            server,
        })
    }

    fn call<'a>(&'a self, verb: &'static str, name: Option<&'a str>) -> Call<'a> {
        Call {
            verb,
            resource: "secrets",
            name,
            namespace: Some(&self.namespace),
            server: &self.server,
        }
    }

    async fn secret(&self, name: &str) -> Result<Secret, ProviderError> {
        self.secrets
            .get(name)
            .await
            .map_err(|e| classify(self.call("get", Some(name)), e))
    }

    async fn list(&self, params: &ListParams) -> Result<Vec<Secret>, ProviderError> {
        Ok(self
            .secrets
            .list(params)
            .await
            .map_err(|e| classify(self.call("list", None), e))?
            .items)
    }

    /// Who the API server says the store's identity is, for messages; `None` if it will not say.
    async fn identity(&self) -> Option<String> {
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        let review = api
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .ok()?;
        review.status?.user_info?.username
    }
}

/// The JSON of a Secret's data, as ESO's GetSecret returns it without a property.
fn data_json(secret: &Secret) -> SecretValue {
    let data = secret.data.as_ref();
    let pairs = data
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_slice()));
    SecretValue::new(encode::data_object(pairs))
}

fn metadata_json(secret: &Secret) -> SecretValue {
    SecretValue::new(encode::metadata_object(
        secret.metadata.labels.as_ref(),
        secret.metadata.annotations.as_ref(),
    ))
}

#[async_trait::async_trait]
impl SecretProvider for KubernetesSecrets {
    /// The Secret `remote.key` as JSON; `remote.property` is applied by the controller.
    async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError> {
        let secret = self.secret(&remote.key).await?;
        let value = if remote.fetch_metadata {
            metadata_json(&secret)
        } else {
            data_json(&secret)
        };
        Ok(Fetched::unversioned(value))
    }

    /// The Secret's data keys as they are (binary values included), or with `fetch_metadata`
    /// `labels` and `annotations` as JSON, as ESO's GetSecretMap.
    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let secret = self.secret(&remote.key).await?;
        if remote.fetch_metadata {
            let mut labels = Vec::new();
            encode::map_or_null(&mut labels, secret.metadata.labels.as_ref());
            let mut annotations = Vec::new();
            encode::map_or_null(&mut annotations, secret.metadata.annotations.as_ref());
            return Ok(BTreeMap::from([
                ("labels".to_owned(), SecretValue::new(labels)),
                ("annotations".to_owned(), SecretValue::new(annotations)),
            ]));
        }
        Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretValue::new(v.0)))
            .collect())
    }

    async fn find(
        &self,
        query: &FindQuery,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let found = if !query.tags.is_empty() {
            let selector = query
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            self.list(&ListParams::default().labels(&selector)).await?
        } else if let Some(pattern) = &query.name_regexp {
            let matcher = regex::Regex::new(pattern).map_err(|e| {
                ProviderError::invalid(format!(
                    "find.name.regexp {pattern:?} is not a regular expression: {e}"
                ))
            })?;
            let mut all = self.list(&ListParams::default()).await?;
            all.retain(|s| matcher.is_match(s.metadata.name.as_deref().unwrap_or_default()));
            all
        } else {
            return Err(ProviderError::invalid(
                "find needs name.regexp or tags for the kubernetes provider",
            ));
        };
        Ok(found
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), data_json(s)))
            .collect())
    }

    async fn put(&self, _remote: &RemoteRef, _value: &SecretValue) -> Result<(), ProviderError> {
        Err(ProviderError::invalid(
            "PushSecret to the kubernetes provider is not implemented yet",
        ))
    }

    async fn delete(&self, _remote: &RemoteRef) -> Result<(), ProviderError> {
        Err(ProviderError::invalid(
            "PushSecret to the kubernetes provider is not implemented yet",
        ))
    }

    /// Ready only if the API server says the identity may get Secrets in the namespace.
    async fn validate(&self) -> Result<Validation, ProviderError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(self.namespace.clone()),
                    verb: Some("get".into()),
                    resource: Some("secrets".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                classify(
                    Call {
                        verb: "create",
                        resource: "selfsubjectaccessreviews",
                        name: None,
                        namespace: None,
                        server: &self.server,
                    },
                    e,
                )
            })?;
        if answer.status.is_some_and(|s| s.allowed) {
            return Ok(Validation::Ready);
        }
        let mut message = errors::forbidden(self.call("get", None));
        if let Some(who) = self.identity().await {
            message = message.replacen(
                "the store's identity",
                &format!("the store's identity {who:?}"),
                1,
            );
        }
        Err(ProviderError::new(
            lockstep_provider_api::ErrorClass::AccessDenied,
            message,
        ))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }
}
