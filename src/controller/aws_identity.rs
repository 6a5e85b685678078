//! The Kubernetes half of AWS authentication: which Secret keys or which ServiceAccount a store's
//! `auth` points at, resolved into an [`Identity`] the AWS provider can use. ESO's namespace rules
//! apply: a SecretStore only reads its own namespace; a ClusterSecretStore reads the namespace its
//! selector names, or else the ExternalSecret's ("referent auth").
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use lockstep_provider_api::SecretValue;
use lockstep_provider_aws::credentials::{
    BaseCredentials, DEFAULT_SESSION_NAME, Identity, RoleToAssume,
};

use crate::api::meta::{SecretKeySelector, StoreKind};
use crate::api::provider_aws::{AwsProvider, SessionTagsPolicy};

/// The ServiceAccount annotation naming the IAM role (IRSA's).
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The ServiceAccount annotation overriding the token audience (IRSA's).
pub const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// The audience STS expects by default.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// Tokens only live long enough for the exchange: the shortest lifetime the API server grants.
const TOKEN_SECONDS: i64 = 600;

/// Where a store is used from.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub store_kind: StoreKind,
    pub store_name: &'a str,
    /// The SecretStore's namespace; `None` for a ClusterSecretStore.
    pub store_namespace: Option<&'a str>,
    /// The ExternalSecret's namespace; `None` when validating a store on its own.
    pub consumer_namespace: Option<&'a str>,
}

impl Scope<'_> {
    /// The namespace the reference `field`, with an optional explicit namespace, resolves to.
    ///
    /// A SecretStore reads only its own namespace. ESO's webhook refuses a SecretStore whose
    /// selector names another one (and its controller then ignores the namespace); the CRD schema
    /// cannot compare a field with `metadata.namespace`, so lockstep refuses it here, whenever the
    /// store is used, instead of silently reading somewhere else than the user wrote.
    fn namespace_for(
        &self,
        explicit: Option<&str>,
        field: &'static str,
    ) -> Result<String, AuthError> {
        let explicit = explicit.filter(|n| !n.is_empty());
        let resolved = match self.store_kind {
            StoreKind::SecretStore => {
                let own = self.store_namespace.or(self.consumer_namespace);
                if let (Some(named), Some(own)) = (explicit, own)
                    && named != own
                {
                    return Err(AuthError::ForeignNamespace {
                        field,
                        named: named.to_owned(),
                        own: own.to_owned(),
                    });
                }
                own
            }
            StoreKind::ClusterSecretStore => explicit.or(self.consumer_namespace),
        };
        resolved
            .map(str::to_owned)
            .ok_or_else(|| AuthError::Referent {
                what: field,
                kind: self.store_kind.as_str(),
                store: self.store_name.to_owned(),
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "{what} of {kind} {store:?} names no namespace, and a ClusterSecretStore can only be validated against one: it is checked when an ExternalSecret uses it"
    )]
    Referent {
        what: &'static str,
        kind: &'static str,
        store: String,
    },
    #[error(
        "{field} names namespace {named:?}, but a SecretStore may only use its own namespace {own:?}: remove the namespace, or use a ClusterSecretStore to read from another namespace"
    )]
    ForeignNamespace {
        field: &'static str,
        named: String,
        own: String,
    },
    #[error("{0} must name both a Secret and a key")]
    IncompleteSelector(&'static str),
    #[error(
        "Secret {namespace}/{name} does not exist: create it, or fix the store's auth.secretRef"
    )]
    SecretMissing { namespace: String, name: String },
    #[error(
        "cannot find secret data for key: {key:?} in Secret {namespace}/{name}: add the key to the Secret, or fix the key in the store's auth.secretRef"
    )]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error(
        "ServiceAccount {namespace}/{name} does not exist: create it, or fix the store's auth.jwt.serviceAccountRef"
    )]
    ServiceAccountMissing { namespace: String, name: String },
    #[error(
        "an IAM role must be associated with service account {name} (namespace: {namespace}): annotate it with {ROLE_ARN_ANNOTATION}"
    )]
    NoRole { namespace: String, name: String },
    #[error(
        "requesting a token for ServiceAccount {namespace}/{name}: {source}; lockstep needs RBAC create on serviceaccounts/token"
    )]
    TokenRequest {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("reading {what}: {source}")]
    Kube { what: String, source: kube::Error },
}

/// What the identity was derived from: when any of it changes, cached credentials are stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IdentitySource {
    /// `namespace/name@resourceVersion` of every Secret or ServiceAccount read.
    pub objects: Vec<String>,
}

/// The parts of an identity that decide whether cached credentials can be reused, without any
/// credential material. A web identity token is fetched only after a cache miss.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub source: IdentitySource,
    plan: Plan,
    region: String,
    additional_roles: Vec<String>,
    role: Option<RoleToAssume>,
}

#[derive(Debug, Clone)]
enum Plan {
    Static {
        access_key_id: SecretValue,
        secret_access_key: SecretValue,
        session_token: Option<SecretValue>,
    },
    WebIdentity {
        namespace: String,
        name: String,
        role_arn: String,
        audiences: Vec<String>,
    },
    DefaultChain,
}

/// Reads what the store's `auth` points at (Secrets, a ServiceAccount) without calling AWS.
pub async fn resolve(
    client: &Client,
    aws: &AwsProvider,
    scope: Scope<'_>,
) -> Result<Resolved, AuthError> {
    let mut source = IdentitySource::default();
    let auth = aws.auth.as_ref();
    let plan = if let Some(refs) = auth.and_then(|a| a.secret_ref.as_ref()) {
        let access = required(
            refs.access_key_id_secret_ref.as_ref(),
            "auth.secretRef.accessKeyIDSecretRef",
        )?;
        let secret = required(
            refs.secret_access_key_secret_ref.as_ref(),
            "auth.secretRef.secretAccessKeySecretRef",
        )?;
        Plan::Static {
            access_key_id: read_key(client, access, scope, &mut source).await?,
            secret_access_key: read_key(client, secret, scope, &mut source).await?,
            session_token: match &refs.session_token_secret_ref {
                Some(sel) => Some(read_key(client, sel, scope, &mut source).await?),
                None => None,
            },
        }
    } else if let Some(sa_ref) = auth
        .and_then(|a| a.jwt.as_ref())
        .and_then(|j| j.service_account_ref.as_ref())
    {
        let namespace =
            scope.namespace_for(sa_ref.namespace.as_deref(), "auth.jwt.serviceAccountRef")?;
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
        let sa = api
            .get_opt(&sa_ref.name)
            .await
            .map_err(|source| AuthError::Kube {
                what: format!("ServiceAccount {namespace}/{}", sa_ref.name),
                source,
            })?
            .ok_or_else(|| AuthError::ServiceAccountMissing {
                namespace: namespace.clone(),
                name: sa_ref.name.clone(),
            })?;
        source.objects.push(format!(
            "sa:{namespace}/{}@{}",
            sa_ref.name,
            sa.resource_version().unwrap_or_default()
        ));
        let annotations = sa.annotations();
        let role_arn = annotations
            .get(ROLE_ARN_ANNOTATION)
            .filter(|a| !a.is_empty())
            .cloned()
            .ok_or_else(|| AuthError::NoRole {
                namespace: namespace.clone(),
                name: sa_ref.name.clone(),
            })?;
        let mut audiences = vec![
            annotations
                .get(AUDIENCE_ANNOTATION)
                .cloned()
                .unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
        ];
        audiences.extend(sa_ref.audiences.iter().cloned());
        Plan::WebIdentity {
            namespace,
            name: sa_ref.name.clone(),
            role_arn,
            audiences,
        }
    } else {
        Plan::DefaultChain
    };

    Ok(Resolved {
        source,
        plan,
        region: aws.region.clone(),
        additional_roles: aws.additional_roles.clone(),
        role: aws.role.as_ref().map(|arn| RoleToAssume {
            arn: arn.clone(),
            external_id: aws.external_id.clone(),
            session_tags: session_tags(aws, scope),
            transitive_tag_keys: aws.transitive_tag_keys.clone(),
        }),
    })
}

impl Resolved {
    /// The identity, requesting a ServiceAccount token if the store uses web identity.
    pub async fn identity(self, client: &Client) -> Result<Identity, AuthError> {
        let base = match self.plan {
            Plan::Static {
                access_key_id,
                secret_access_key,
                session_token,
            } => BaseCredentials::Static {
                access_key_id,
                secret_access_key,
                session_token,
            },
            Plan::WebIdentity {
                namespace,
                name,
                role_arn,
                audiences,
            } => {
                let token = request_token(client, &namespace, &name, audiences).await?;
                BaseCredentials::WebIdentity {
                    role_arn,
                    token,
                    session_name: session_name(&namespace, &name),
                }
            }
            Plan::DefaultChain => BaseCredentials::DefaultChain,
        };
        Ok(Identity {
            region: self.region,
            base,
            additional_roles: self.additional_roles,
            role: self.role,
            session_name: DEFAULT_SESSION_NAME.into(),
            // Filled by the caller from the store's retrySettings.
            retry: None,
        })
    }

    /// Who lockstep becomes for the tenant, for the audit log: no credential material.
    pub fn tenant(&self, assumed_session: &str) -> crate::audit::record::Tenant {
        let last_role = self
            .role
            .as_ref()
            .map(|r| r.arn.clone())
            .or_else(|| self.additional_roles.last().cloned());
        let (service_account, web_role, session, credentials) = match &self.plan {
            Plan::WebIdentity {
                namespace,
                name,
                role_arn,
                ..
            } => (
                Some(format!("{namespace}/{name}")),
                Some(role_arn.clone()),
                Some(session_name(namespace, name)),
                "web-identity",
            ),
            Plan::Static { .. } => (None, None, None, "static"),
            Plan::DefaultChain => (None, None, None, "default-chain"),
        };
        let chained = last_role.is_some();
        crate::audit::record::Tenant {
            service_account,
            role_arn: last_role.or(web_role),
            role_session_name: if chained {
                Some(assumed_session.to_owned())
            } else {
                session
            },
            credentials: credentials.into(),
        }
    }

    /// The calls a credential exchange makes, in order.
    pub fn exchange_calls(&self) -> Vec<String> {
        let mut calls: Vec<String> = match &self.plan {
            Plan::WebIdentity { .. } => {
                vec!["TokenRequest".into(), "AssumeRoleWithWebIdentity".into()]
            }
            Plan::Static { .. } => vec![],
            Plan::DefaultChain => vec!["DefaultCredentialsChain".into()],
        };
        let roles = self.additional_roles.len() + usize::from(self.role.is_some());
        calls.extend(std::iter::repeat_n("AssumeRole".to_string(), roles));
        calls
    }

    /// The web identity's role, when the store uses one.
    pub fn web_identity_role(&self) -> Option<&str> {
        match &self.plan {
            Plan::WebIdentity { role_arn, .. } => Some(role_arn),
            _ => None,
        }
    }
}

/// A role session name that says which tenant the credentials are for, so CloudTrail shows it.
/// STS allows 64 characters of `[\w+=,.@-]`.
pub fn session_name(namespace: &str, service_account: &str) -> String {
    let raw = format!("lockstep@{namespace}.{service_account}");
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
        .take(64)
        .collect()
}

/// ESO's `sessionTagsPolicy`: Simple and Custom replace `sessionTags` with where the request comes from.
fn session_tags(aws: &AwsProvider, scope: Scope<'_>) -> Vec<(String, String)> {
    let explicit = || {
        aws.session_tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect()
    };
    let mut tags: Vec<(String, String)> = match aws.session_tags_policy {
        SessionTagsPolicy::None => return explicit(),
        SessionTagsPolicy::Simple | SessionTagsPolicy::Custom => vec![
            (
                "esoNamespace".into(),
                scope
                    .consumer_namespace
                    .or(scope.store_namespace)
                    .unwrap_or_default()
                    .into(),
            ),
            ("esoStoreName".into(), scope.store_name.into()),
            ("esoStoreKind".into(), scope.store_kind.as_str().into()),
        ],
    };
    if aws.session_tags_policy == SessionTagsPolicy::Custom {
        tags.extend(
            aws.custom_session_tags
                .iter()
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    tags
}

fn required<'a>(
    sel: Option<&'a SecretKeySelector>,
    field: &'static str,
) -> Result<&'a SecretKeySelector, AuthError> {
    sel.filter(|s| s.name.is_some() && s.key.is_some())
        .ok_or(AuthError::IncompleteSelector(field))
}

async fn read_key(
    client: &Client,
    sel: &SecretKeySelector,
    scope: Scope<'_>,
    source: &mut IdentitySource,
) -> Result<SecretValue, AuthError> {
    let (name, key) = (
        sel.name.clone().unwrap_or_default(),
        sel.key.clone().unwrap_or_default(),
    );
    let namespace = scope.namespace_for(sel.namespace.as_deref(), "auth.secretRef")?;
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = api
        .get_opt(&name)
        .await
        .map_err(|source| AuthError::Kube {
            what: format!("Secret {namespace}/{name}"),
            source,
        })?
        .ok_or_else(|| AuthError::SecretMissing {
            namespace: namespace.clone(),
            name: name.clone(),
        })?;
    source.objects.push(format!(
        "secret:{namespace}/{name}@{}",
        secret.resource_version().unwrap_or_default()
    ));
    let bytes = secret.data.and_then(|mut d| d.remove(&key)).map(|b| b.0);
    let bytes = bytes.ok_or(AuthError::KeyMissing {
        namespace,
        name,
        key,
    })?;
    // Keys copied into Secrets by hand often carry a trailing newline; AWS never wants it.
    let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
    Ok(SecretValue::new(trimmed))
}

async fn request_token(
    client: &Client,
    namespace: &str,
    name: &str,
    audiences: Vec<String>,
) -> Result<SecretValue, AuthError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(audiences),
            expiration_seconds: Some(TOKEN_SECONDS),
            ..Default::default()
        }),
        ..Default::default()
    };
    let answer = api
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|source| AuthError::TokenRequest {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })?;
    let token = answer.status.and_then(|s| s.token).unwrap_or_default();
    Ok(SecretValue::from(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_and_the_calls_of_an_exchange_are_named_for_the_audit_log() {
        let web = Resolved {
            source: IdentitySource::default(),
            plan: Plan::WebIdentity {
                namespace: "team".into(),
                name: "app".into(),
                role_arn: "arn:aws:iam::1:role/web".into(),
                audiences: vec![],
            },
            region: "us-east-1".into(),
            additional_roles: vec![],
            role: None,
        };
        let tenant = web.tenant("lockstep@team.aws");
        assert_eq!(tenant.service_account.as_deref(), Some("team/app"));
        assert_eq!(tenant.role_arn.as_deref(), Some("arn:aws:iam::1:role/web"));
        assert_eq!(
            tenant.role_session_name.as_deref(),
            Some("lockstep@team.app")
        );
        assert_eq!(
            web.exchange_calls(),
            ["TokenRequest", "AssumeRoleWithWebIdentity"]
        );
        let chained = Resolved {
            role: Some(RoleToAssume {
                arn: "arn:aws:iam::1:role/final".into(),
                external_id: None,
                session_tags: vec![],
                transitive_tag_keys: vec![],
            }),
            additional_roles: vec!["arn:aws:iam::1:role/hop".into()],
            ..web
        };
        let tenant = chained.tenant("lockstep@team.aws");
        assert_eq!(
            tenant.role_arn.as_deref(),
            Some("arn:aws:iam::1:role/final")
        );
        assert_eq!(
            tenant.role_session_name.as_deref(),
            Some("lockstep@team.aws"),
            "the last role's session, as CloudTrail shows it"
        );
        assert_eq!(
            chained.exchange_calls(),
            [
                "TokenRequest",
                "AssumeRoleWithWebIdentity",
                "AssumeRole",
                "AssumeRole"
            ]
        );
        let static_keys = Resolved {
            plan: Plan::DefaultChain,
            role: None,
            additional_roles: vec![],
            ..chained
        };
        assert_eq!(static_keys.tenant("x").credentials, "default-chain");
        assert_eq!(static_keys.tenant("x").role_arn, None);
        assert_eq!(static_keys.exchange_calls(), ["DefaultCredentialsChain"]);
    }

    #[test]
    fn session_names_fit_sts_rules() {
        assert_eq!(session_name("team-a", "app"), "lockstep@team-a.app");
        let long = session_name(&"n".repeat(63), "sa");
        assert_eq!(long.len(), 64);
    }

    #[test]
    fn a_secret_store_never_reads_another_namespace() {
        let scope = Scope {
            store_kind: StoreKind::SecretStore,
            store_name: "s",
            store_namespace: Some("team-a"),
            consumer_namespace: Some("team-a"),
        };
        let field = "auth.secretRef";
        assert_eq!(scope.namespace_for(None, field).unwrap(), "team-a");
        assert_eq!(
            scope.namespace_for(Some("team-a"), field).unwrap(),
            "team-a",
            "naming its own namespace is fine"
        );
        assert_eq!(scope.namespace_for(Some(""), field).unwrap(), "team-a");
        let err = scope.namespace_for(Some("kube-system"), field).unwrap_err();
        assert!(
            matches!(&err, AuthError::ForeignNamespace { named, own, .. } if named == "kube-system" && own == "team-a"),
            "{err}"
        );
        assert!(err.to_string().contains("ClusterSecretStore"), "{err}");
    }

    #[test]
    fn a_cluster_store_reads_the_named_namespace_or_the_consumers() {
        let cluster = Scope {
            store_kind: StoreKind::ClusterSecretStore,
            store_name: "s",
            store_namespace: None,
            consumer_namespace: Some("team-a"),
        };
        let field = "auth.secretRef";
        assert_eq!(
            cluster.namespace_for(Some("shared"), field).unwrap(),
            "shared"
        );
        assert_eq!(cluster.namespace_for(None, field).unwrap(), "team-a");
        let validating = Scope {
            consumer_namespace: None,
            ..cluster
        };
        assert!(matches!(
            validating.namespace_for(None, field),
            Err(AuthError::Referent { .. })
        ));
    }
}
