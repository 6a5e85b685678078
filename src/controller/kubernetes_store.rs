//! A kubernetes store's connection: its `server` and `auth` (or `authRef`) resolved from the
//! Kubernetes objects they name, and handed to the provider crate as material only.
use std::time::{Duration, SystemTime};

use kube::Client;
use lockstep_provider_kubernetes::{Connection, Credential, DEFAULT_SERVER_URL};

use super::aws_identity::Scope;
use super::connect::ConnectError;
use super::store_refs::{Refs, TOKEN_SECONDS, TokenSource};
use crate::api::provider_kubernetes::KubernetesProvider;

const FIELD: &str = "spec.provider.kubernetes";

/// What a connection needs, read from the cluster; a ServiceAccount's token is requested only
/// when a connection is made ([`Plan::connection`]).
#[derive(Debug)]
pub struct Plan {
    url: String,
    ca_pem: Option<Vec<u8>>,
    credential: PlannedCredential,
    namespace: String,
    /// `kind:namespace/name@resourceVersion` of every object read.
    pub sources: Vec<String>,
}

#[derive(Debug)]
enum PlannedCredential {
    Ready(Credential),
    ServiceAccount(TokenSource),
}

/// Reads the Secrets, ConfigMap and ServiceAccount the store names.
pub async fn plan(
    client: &Client,
    spec: &KubernetesProvider,
    scope: Scope<'_>,
) -> Result<Plan, ConnectError> {
    let mut refs = Refs::new(client, scope);
    let server = spec.server.as_ref();
    let credential = match (&spec.auth, &spec.auth_ref) {
        (Some(_), Some(_)) => {
            return Err(ConnectError::Unsupported(format!(
                "{FIELD}: set either auth or authRef, not both"
            )));
        }
        (None, Some(kubeconfig)) => {
            let field = format!("{FIELD}.authRef");
            PlannedCredential::Ready(Credential::Kubeconfig(
                refs.secret_key(kubeconfig, &field, true).await?,
            ))
        }
        (Some(auth), None) => match (&auth.token, &auth.service_account, &auth.cert) {
            (Some(token), None, None) => {
                let field = format!("{FIELD}.auth.token.bearerToken");
                PlannedCredential::Ready(Credential::Token(
                    refs.secret_key(&token.bearer_token, &field, true).await?,
                ))
            }
            (None, Some(sa), None) => {
                let field = format!("{FIELD}.auth.serviceAccount");
                PlannedCredential::ServiceAccount(refs.service_account(sa, &field).await?)
            }
            (None, None, Some(cert)) => {
                let base = format!("{FIELD}.auth.cert");
                let cert_pem = refs
                    .secret_key(&cert.client_cert, &format!("{base}.clientCert"), true)
                    .await?;
                let key_pem = refs
                    .secret_key(&cert.client_key, &format!("{base}.clientKey"), true)
                    .await?;
                PlannedCredential::Ready(Credential::ClientCertificate { cert_pem, key_pem })
            }
            _ => {
                return Err(ConnectError::Unsupported(format!(
                    "{FIELD}.auth must set exactly one of token, serviceAccount or cert"
                )));
            }
        },
        (None, None) => {
            return Err(ConnectError::Unsupported(format!(
                "{FIELD} needs auth (token, serviceAccount or cert) or authRef: the store reads with its own identity, never lockstep's"
            )));
        }
    };
    let ca_pem = match server {
        Some(s) => {
            refs.ca(
                s.ca_bundle.as_ref(),
                s.ca_provider.as_ref(),
                &format!("{FIELD}.server"),
            )
            .await?
        }
        None => None,
    };
    Ok(Plan {
        url: server
            .map(|s| s.url.clone())
            .unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned()),
        ca_pem,
        credential,
        namespace: spec.remote_namespace.clone(),
        sources: refs.sources,
    })
}

impl Plan {
    /// The connection, requesting a ServiceAccount token if the store uses one; and when the
    /// credential expires (so the cached client is replaced before).
    pub async fn connection(
        self,
        client: &Client,
    ) -> Result<(Connection, Option<SystemTime>), ConnectError> {
        let (credential, expires_at) = match self.credential {
            PlannedCredential::Ready(c) => (c, None),
            PlannedCredential::ServiceAccount(source) => {
                let asked = SystemTime::now();
                let token = source.request(client).await?;
                let lifetime = Duration::from_secs(TOKEN_SECONDS.unsigned_abs());
                (Credential::Token(token), Some(asked + lifetime))
            }
        };
        Ok((
            Connection {
                url: self.url,
                ca_pem: self.ca_pem,
                credential,
                namespace: self.namespace,
            },
            expires_at,
        ))
    }
}
