//! The Kubernetes objects a kubernetes or webhook store points at (credential Secrets, CA
//! bundles in Secrets or ConfigMaps, ServiceAccounts to request tokens for), read with ESO's
//! namespace rules: a SecretStore reads only its own namespace; a ClusterSecretStore reads the
//! namespace a reference names or, where ESO allows it, the ExternalSecret's ("referent").
use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use lockstep_provider_api::SecretValue;

use super::aws_identity::Scope;
use crate::api::meta::{
    CaProvider, CaProviderType, SecretKeySelector, ServiceAccountSelector, StoreKind,
};

/// The label ESO requires on every Secret a webhook store reads.
pub const WEBHOOK_SECRET_LABEL: (&str, &str) = ("external-secrets.io/type", "webhook");

/// ServiceAccount tokens for the kubernetes provider live an hour, as ESO's.
pub const TOKEN_SECONDS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error(
        "{field} of {kind} {store:?} names no namespace, so it is resolved in the namespace of each ExternalSecret that uses the store; the store alone cannot be checked"
    )]
    Referent {
        field: String,
        kind: &'static str,
        store: String,
    },
    #[error(
        "{field} names no namespace, and a ClusterSecretStore must say where the object is: set {field}.namespace"
    )]
    NamespaceRequired { field: String },
    #[error(
        "{field} names namespace {named:?}, but a SecretStore may only use its own namespace {own:?}: remove the namespace, or use a ClusterSecretStore"
    )]
    ForeignNamespace {
        field: String,
        named: String,
        own: String,
    },
    #[error("{field} must name {what}")]
    Incomplete { field: String, what: &'static str },
    #[error("{kind} {namespace}/{name} does not exist: create it, or fix {field}")]
    Missing {
        kind: &'static str,
        namespace: String,
        name: String,
        field: String,
    },
    #[error("{kind} {namespace}/{name} has no key {key:?}: add it, or fix {field}")]
    KeyMissing {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
        field: String,
    },
    #[error(
        "Secret {namespace}/{name} ({field}) lacks the label {label}={value}, which a webhook store requires of every Secret it reads: add the label",
        label = WEBHOOK_SECRET_LABEL.0, value = WEBHOOK_SECRET_LABEL.1
    )]
    NotWebhookSecret {
        namespace: String,
        name: String,
        field: String,
    },
    #[error("{field}: the CA bundle is neither PEM nor base64 of PEM")]
    NotPem { field: String },
    #[error(
        "requesting a token for ServiceAccount {namespace}/{name} ({field}): {source}; lockstep needs RBAC create on serviceaccounts/token"
    )]
    TokenRequest {
        namespace: String,
        name: String,
        field: String,
        source: Box<kube::Error>,
    },
    #[error("reading {what}: {source}")]
    Kube {
        what: String,
        source: Box<kube::Error>,
    },
}

impl RefError {
    /// Whether a retry may succeed without a change to the store (the API server failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, RefError::Kube { .. } | RefError::TokenRequest { .. })
    }
}

/// Reads what a store references, recording each object's resourceVersion: when one changes,
/// the cached connection is stale.
pub struct Refs<'a> {
    client: &'a Client,
    scope: Scope<'a>,
    /// `kind:namespace/name@resourceVersion` of every object read.
    pub sources: Vec<String>,
}

impl std::fmt::Debug for Refs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refs")
            .field("scope", &self.scope)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl<'a> Refs<'a> {
    pub fn new(client: &'a Client, scope: Scope<'a>) -> Self {
        Self {
            client,
            scope,
            sources: Vec::new(),
        }
    }

    /// The namespace a reference at `field` resolves to. `referent`: a ClusterSecretStore's
    /// reference without a namespace means the ExternalSecret's (ESO's kubernetes auth); else
    /// it must name one (ESO's webhook secrets and caProvider).
    pub fn namespace(
        &self,
        explicit: Option<&str>,
        field: &str,
        referent: bool,
    ) -> Result<String, RefError> {
        let explicit = explicit.filter(|n| !n.is_empty());
        match self.scope.store_kind {
            StoreKind::SecretStore => {
                let own = self
                    .scope
                    .store_namespace
                    .or(self.scope.consumer_namespace)
                    .unwrap_or_default();
                match explicit {
                    Some(named) if named != own => Err(RefError::ForeignNamespace {
                        field: field.to_owned(),
                        named: named.to_owned(),
                        own: own.to_owned(),
                    }),
                    _ => Ok(own.to_owned()),
                }
            }
            StoreKind::ClusterSecretStore => match (explicit, referent) {
                (Some(named), _) => Ok(named.to_owned()),
                (None, true) => self
                    .scope
                    .consumer_namespace
                    .map(str::to_owned)
                    .ok_or_else(|| RefError::Referent {
                        field: field.to_owned(),
                        kind: self.scope.store_kind.as_str(),
                        store: self.scope.store_name.to_owned(),
                    }),
                (None, false) => Err(RefError::NamespaceRequired {
                    field: field.to_owned(),
                }),
            },
        }
    }

    /// The Secret a selector names, and the namespace it was found in.
    pub async fn secret(
        &mut self,
        sel: &SecretKeySelector,
        field: &str,
        referent: bool,
    ) -> Result<Secret, RefError> {
        let name =
            sel.name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| RefError::Incomplete {
                    field: field.to_owned(),
                    what: "a Secret (name)",
                })?;
        let namespace = self.namespace(sel.namespace.as_deref(), field, referent)?;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let secret = api
            .get_opt(&name)
            .await
            .map_err(|e| RefError::Kube {
                what: format!("Secret {namespace}/{name}"),
                source: Box::new(e),
            })?
            .ok_or_else(|| RefError::Missing {
                kind: "Secret",
                namespace: namespace.clone(),
                name: name.clone(),
                field: field.to_owned(),
            })?;
        self.sources.push(format!(
            "secret:{namespace}/{name}@{}",
            secret.resource_version().unwrap_or_default()
        ));
        Ok(secret)
    }

    /// The value at a selector's key.
    pub async fn secret_key(
        &mut self,
        sel: &SecretKeySelector,
        field: &str,
        referent: bool,
    ) -> Result<SecretValue, RefError> {
        let key =
            sel.key
                .clone()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| RefError::Incomplete {
                    field: field.to_owned(),
                    what: "a key",
                })?;
        let secret = self.secret(sel, field, referent).await?;
        let namespace = secret.namespace().unwrap_or_default();
        let name = secret.name_any();
        secret
            .data
            .and_then(|mut d| d.remove(&key))
            .map(|b| SecretValue::new(b.0))
            .ok_or(RefError::KeyMissing {
                kind: "Secret",
                namespace,
                name,
                key,
                field: field.to_owned(),
            })
    }

    /// All data of a Secret a webhook store reads, which must carry ESO's webhook label.
    pub async fn webhook_secret(
        &mut self,
        sel: &SecretKeySelector,
        field: &str,
    ) -> Result<BTreeMap<String, SecretValue>, RefError> {
        let secret = self.secret(sel, field, false).await?;
        let labelled = secret
            .labels()
            .get(WEBHOOK_SECRET_LABEL.0)
            .is_some_and(|v| v == WEBHOOK_SECRET_LABEL.1);
        if !labelled {
            return Err(RefError::NotWebhookSecret {
                namespace: secret.namespace().unwrap_or_default(),
                name: secret.name_any(),
                field: field.to_owned(),
            });
        }
        Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretValue::new(v.0)))
            .collect())
    }

    /// The PEM bundle of `caBundle` or `caProvider` (at `field`), if either is set.
    pub async fn ca(
        &mut self,
        bundle: Option<&ByteString>,
        provider: Option<&CaProvider>,
        field: &str,
    ) -> Result<Option<Vec<u8>>, RefError> {
        if let Some(bundle) = bundle.filter(|b| !b.0.is_empty()) {
            return pem_or_base64(&bundle.0, &format!("{field}.caBundle")).map(Some);
        }
        let Some(provider) = provider else {
            return Ok(None);
        };
        let field = format!("{field}.caProvider");
        let key = provider
            .key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| RefError::Incomplete {
                field: field.clone(),
                what: "the key that holds the bundle",
            })?;
        let pem = match provider.type_ {
            CaProviderType::Secret => {
                let sel = SecretKeySelector {
                    name: Some(provider.name.clone()),
                    namespace: provider.namespace.clone(),
                    key: Some(key),
                };
                self.secret_key(&sel, &field, false)
                    .await?
                    .expose()
                    .to_vec()
            }
            CaProviderType::ConfigMap => {
                let namespace = self.namespace(provider.namespace.as_deref(), &field, false)?;
                let name = &provider.name;
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &namespace);
                let map = api
                    .get_opt(name)
                    .await
                    .map_err(|e| RefError::Kube {
                        what: format!("ConfigMap {namespace}/{name}"),
                        source: Box::new(e),
                    })?
                    .ok_or_else(|| RefError::Missing {
                        kind: "ConfigMap",
                        namespace: namespace.clone(),
                        name: name.clone(),
                        field: field.clone(),
                    })?;
                self.sources.push(format!(
                    "configmap:{namespace}/{name}@{}",
                    map.resource_version().unwrap_or_default()
                ));
                map.data
                    .and_then(|mut d| d.remove(&key))
                    .ok_or_else(|| RefError::KeyMissing {
                        kind: "ConfigMap",
                        namespace,
                        name: name.clone(),
                        key,
                        field: field.clone(),
                    })?
                    .into_bytes()
            }
        };
        pem_or_base64(&pem, &field).map(Some)
    }

    /// Checks that the ServiceAccount exists (recording its version) and says where it is; the
    /// token itself is requested only when a connection is made.
    pub async fn service_account(
        &mut self,
        sel: &ServiceAccountSelector,
        field: &str,
    ) -> Result<TokenSource, RefError> {
        let namespace = self.namespace(sel.namespace.as_deref(), field, true)?;
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &namespace);
        let sa = api
            .get_opt(&sel.name)
            .await
            .map_err(|e| RefError::Kube {
                what: format!("ServiceAccount {namespace}/{}", sel.name),
                source: Box::new(e),
            })?
            .ok_or_else(|| RefError::Missing {
                kind: "ServiceAccount",
                namespace: namespace.clone(),
                name: sel.name.clone(),
                field: field.to_owned(),
            })?;
        self.sources.push(format!(
            "sa:{namespace}/{}@{}",
            sel.name,
            sa.resource_version().unwrap_or_default()
        ));
        Ok(TokenSource {
            namespace,
            name: sel.name.clone(),
            audiences: sel.audiences.clone(),
            field: field.to_owned(),
        })
    }
}

/// A ServiceAccount to request a token for.
#[derive(Debug, Clone)]
pub struct TokenSource {
    pub namespace: String,
    pub name: String,
    pub audiences: Vec<String>,
    field: String,
}

impl TokenSource {
    /// A token valid for [`TOKEN_SECONDS`], for the API server's default audience unless the
    /// selector names audiences.
    pub async fn request(&self, client: &Client) -> Result<SecretValue, RefError> {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &self.namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(self.audiences.clone()).filter(|a| !a.is_empty()),
                expiration_seconds: Some(TOKEN_SECONDS),
                ..Default::default()
            }),
            ..Default::default()
        };
        let answer = api
            .create_token_request(&self.name, &PostParams::default(), &request)
            .await
            .map_err(|e| RefError::TokenRequest {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                field: self.field.clone(),
                source: Box::new(e),
            })?;
        Ok(SecretValue::from(
            answer.status.and_then(|s| s.token).unwrap_or_default(),
        ))
    }
}

/// ESO accepts a CA bundle as PEM or as base64 of PEM.
fn pem_or_base64(bytes: &[u8], field: &str) -> Result<Vec<u8>, RefError> {
    let is_pem = |b: &[u8]| b.windows(11).any(|w| w == b"-----BEGIN ");
    if is_pem(bytes) {
        return Ok(bytes.to_vec());
    }
    let compact: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
        .filter(|decoded| is_pem(decoded))
        .ok_or_else(|| RefError::NotPem {
            field: field.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn ca_bundles_are_pem_or_base64_of_pem() {
        assert_eq!(pem_or_base64(PEM, "f").unwrap(), PEM);
        let encoded = base64::engine::general_purpose::STANDARD.encode(PEM);
        assert_eq!(pem_or_base64(encoded.as_bytes(), "f").unwrap(), PEM);
        let err = pem_or_base64(b"junk", "server.caBundle").unwrap_err();
        assert!(err.to_string().contains("server.caBundle"), "{err}");
    }

    fn scope(kind: StoreKind, consumer: Option<&'static str>) -> Scope<'static> {
        Scope {
            store_kind: kind,
            store_name: "s",
            store_namespace: (kind == StoreKind::SecretStore).then_some("team-a"),
            consumer_namespace: consumer,
        }
    }

    #[tokio::test]
    async fn namespaces_follow_esos_rules() {
        // No call is made: `namespace` only reads the scope.
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let own = Refs::new(&client, scope(StoreKind::SecretStore, Some("team-a")));
        assert_eq!(own.namespace(None, "f", true).unwrap(), "team-a");
        assert_eq!(own.namespace(Some("team-a"), "f", false).unwrap(), "team-a");
        let err = own
            .namespace(Some("kube-system"), "auth.token.bearerToken", true)
            .unwrap_err();
        assert!(
            err.to_string().contains("may only use its own namespace"),
            "{err}"
        );

        let validating = Refs::new(&client, scope(StoreKind::ClusterSecretStore, None));
        assert!(matches!(
            validating.namespace(None, "f", true),
            Err(RefError::Referent { .. })
        ));
        let err = validating
            .namespace(None, "secrets[0].secretRef", false)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("set secrets[0].secretRef.namespace"),
            "{err}"
        );
        assert_eq!(
            validating.namespace(Some("shared"), "f", false).unwrap(),
            "shared"
        );

        let used = Refs::new(
            &client,
            scope(StoreKind::ClusterSecretStore, Some("team-b")),
        );
        assert_eq!(used.namespace(None, "f", true).unwrap(), "team-b");
    }
}
