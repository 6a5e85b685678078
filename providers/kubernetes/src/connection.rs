//! Where the Secrets are and who reads them: a resolved `server` and `auth`, turned into a kube
//! client of its own. The controller resolves the store's references (Secrets, ServiceAccount
//! tokens, CA bundles) and hands over only the material.
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use lockstep_provider_api::{ProviderError, SecretValue};

/// ESO's default `server.url`: the API server as seen from inside the cluster.
pub const DEFAULT_SERVER_URL: &str = "kubernetes.default";

/// How long one call to the API server may take; a hung server must not hang a reconcile.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The API server and the namespace the Secrets are read from.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `server.url`; `https://` is assumed when it names no scheme, as client-go does.
    pub url: String,
    /// PEM certificates trusted for the server (`server.caBundle` or `caProvider`); the system
    /// roots when `None`.
    pub ca_pem: Option<Vec<u8>>,
    pub credential: Credential,
    /// `remoteNamespace`.
    pub namespace: String,
}

/// One way to authenticate (`auth.token`, `auth.serviceAccount`, `auth.cert`, or `authRef`).
#[derive(Clone)]
pub enum Credential {
    /// A bearer token: from a Secret, or requested for a ServiceAccount.
    Token(SecretValue),
    /// A client certificate and its key, both PEM.
    ClientCertificate {
        cert_pem: SecretValue,
        key_pem: SecretValue,
    },
    /// A whole kubeconfig (`authRef`); its server replaces `url` and `ca_pem`.
    Kubeconfig(SecretValue),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Token(_) => "Token(<redacted>)",
            Credential::ClientCertificate { .. } => "ClientCertificate(<redacted>)",
            Credential::Kubeconfig(_) => "Kubeconfig(<redacted>)",
        })
    }
}

impl Connection {
    /// The server as messages name it (never a credential).
    pub fn server_label(&self) -> String {
        match self.credential {
            Credential::Kubeconfig(_) => "the server of the store's authRef kubeconfig".into(),
            _ => format!("the API server {}", with_scheme(&self.url)),
        }
    }

    /// A kube configuration for this connection alone: nothing is read from the environment or
    /// from files, and nothing is executed.
    pub async fn kube_config(&self) -> Result<kube::Config, ProviderError> {
        let kubeconfig = match &self.credential {
            Credential::Kubeconfig(text) => parse_kubeconfig(text)?,
            Credential::Token(token) => {
                let token = String::from_utf8_lossy(token.expose()).trim().to_owned();
                if token.is_empty() {
                    return Err(ProviderError::invalid(
                        "the bearer token of the store is empty: put the token in the Secret the store names",
                    ));
                }
                self.inline(AuthInfo {
                    token: Some(token.into()),
                    ..Default::default()
                })
            }
            Credential::ClientCertificate { cert_pem, key_pem } => self.inline(AuthInfo {
                client_certificate_data: Some(STANDARD.encode(cert_pem.expose())),
                client_key_data: Some(STANDARD.encode(key_pem.expose()).into()),
                ..Default::default()
            }),
        };
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    ProviderError::invalid(format!(
                        "cannot use the store's connection to {}: {e}",
                        self.server_label()
                    ))
                })?;
        config.read_timeout = Some(READ_TIMEOUT);
        config.default_namespace = self.namespace.clone();
        Ok(config)
    }

    fn inline(&self, user: AuthInfo) -> Kubeconfig {
        const NAME: &str = "store";
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: NAME.into(),
                cluster: Some(Cluster {
                    server: Some(with_scheme(&self.url)),
                    certificate_authority_data: self
                        .ca_pem
                        .as_ref()
                        .map(|pem| STANDARD.encode(pem)),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: NAME.into(),
                auth_info: Some(user),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: NAME.into(),
                context: Some(Context {
                    cluster: NAME.into(),
                    user: Some(NAME.into()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            current_context: Some(NAME.into()),
            ..Default::default()
        }
    }
}

/// `https://` in front of a URL without a scheme (ESO's default `kubernetes.default`).
fn with_scheme(url: &str) -> String {
    let url = if url.is_empty() {
        DEFAULT_SERVER_URL
    } else {
        url
    };
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("https://{url}")
    }
}

/// Parses an `authRef` kubeconfig, refusing everything that would make lockstep read its own
/// files or run a command: a tenant's kubeconfig must not reach lockstep's ServiceAccount token
/// or its file system.
fn parse_kubeconfig(text: &SecretValue) -> Result<Kubeconfig, ProviderError> {
    let text = std::str::from_utf8(text.expose()).map_err(|_| {
        ProviderError::invalid("the kubeconfig of the store's authRef is not UTF-8 text")
    })?;
    // kube's parse errors quote YAML positions, not values; still, only the kind is reported.
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|_| {
        ProviderError::invalid(
            "the kubeconfig of the store's authRef is not a valid kubeconfig: check the Secret key authRef names",
        )
    })?;
    for user in &kubeconfig.auth_infos {
        let Some(auth) = &user.auth_info else {
            continue;
        };
        let refused = [
            ("exec", auth.exec.is_some()),
            ("auth-provider", auth.auth_provider.is_some()),
            ("tokenFile", auth.token_file.is_some()),
            ("client-certificate", auth.client_certificate.is_some()),
            ("client-key", auth.client_key.is_some()),
        ];
        if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(local_reference(&format!(
                "user {:?} sets {field}",
                user.name
            )));
        }
    }
    for cluster in &kubeconfig.clusters {
        if cluster
            .cluster
            .as_ref()
            .is_some_and(|c| c.certificate_authority.is_some())
        {
            return Err(local_reference(&format!(
                "cluster {:?} sets certificate-authority",
                cluster.name
            )));
        }
    }
    Ok(kubeconfig)
}

fn local_reference(what: &str) -> ProviderError {
    ProviderError::invalid(format!(
        "the kubeconfig of the store's authRef {what}, which would read a file or run a command \
         on lockstep's host: use inline data only (token, client-certificate-data, \
         client-key-data, certificate-authority-data)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(user: &str) -> SecretValue {
        SecretValue::from(format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://example.test:6443\n\
             users:\n- name: u\n  user:\n{user}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n"
        ))
    }

    #[test]
    fn urls_without_a_scheme_are_https() {
        assert_eq!(
            with_scheme("kubernetes.default"),
            "https://kubernetes.default"
        );
        assert_eq!(with_scheme(""), "https://kubernetes.default");
        assert_eq!(
            with_scheme("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_kubeconfig_may_not_run_commands_or_read_files() {
        for (user, field) in [
            (
                "    exec:\n      command: /bin/sh\n      apiVersion: client.authentication.k8s.io/v1",
                "exec",
            ),
            (
                "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
                "tokenFile",
            ),
            (
                "    client-certificate: /etc/cert.pem\n    client-key: /etc/key.pem",
                "client-certificate",
            ),
        ] {
            let err = parse_kubeconfig(&kubeconfig(user)).unwrap_err();
            assert!(err.message.contains(field), "{}", err.message);
            assert!(err.message.contains("inline data only"), "{}", err.message);
        }
        assert!(parse_kubeconfig(&kubeconfig("    token: abc")).is_ok());
    }

    #[test]
    fn a_broken_kubeconfig_is_named_without_its_content() {
        let err =
            parse_kubeconfig(&SecretValue::from("clusters: [hunter2".to_string())).unwrap_err();
        assert!(!err.message.contains("hunter2"), "{}", err.message);
        assert!(
            err.message.contains("not a valid kubeconfig"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn credentials_never_print() {
        let c = Connection {
            url: "https://example.test".into(),
            ca_pem: None,
            credential: Credential::Token(SecretValue::from("hunter2".to_string())),
            namespace: "default".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let config = c.kube_config().await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://example.test/");
        assert_eq!(config.default_namespace, "default");
    }
}
