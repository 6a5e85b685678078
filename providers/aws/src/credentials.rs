//! Credentials for one store identity: the base credentials (static keys, a web identity token,
//! or the operator's own default chain), then the chain of roles to assume on top of them.
//!
//! The caller (lockstep's fetch layer) caches the result per store identity and asks again before
//! [`Connected::expires_at`], so there is no STS call per reconcile.
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::types::Tag;
use lockstep_provider_api::{ErrorClass, ProviderError, SecretValue};

use crate::RetrySettings;
use crate::errors::{Call, call_error};
use crate::region::validate_region;

/// The session name lockstep uses for every role it assumes, so CloudTrail entries can be joined
/// to lockstep's own records.
pub const DEFAULT_SESSION_NAME: &str = "lockstep";

/// Where the first credentials come from.
#[derive(Debug, Clone)]
pub enum BaseCredentials {
    /// `auth.secretRef`: keys read from Kubernetes Secrets.
    Static {
        access_key_id: SecretValue,
        secret_access_key: SecretValue,
        session_token: Option<SecretValue>,
    },
    /// `auth.jwt`: a ServiceAccount token exchanged with AssumeRoleWithWebIdentity.
    WebIdentity {
        role_arn: String,
        token: SecretValue,
        session_name: String,
    },
    /// No `auth`: the operator's own chain (environment, web identity file, container credentials).
    DefaultChain,
}

/// `spec.provider.aws.role` with its options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleToAssume {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
}

/// Everything needed to build clients for one store identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub region: String,
    pub base: BaseCredentials,
    /// Assumed in order before `role`.
    pub additional_roles: Vec<String>,
    pub role: Option<RoleToAssume>,
    pub session_name: String,
    /// `spec.retrySettings` for Secrets Manager calls; the SDK's defaults when `None`.
    pub retry: Option<RetrySettings>,
}

/// An AWS configuration with resolved credentials.
#[derive(Debug, Clone)]
pub struct Connected {
    pub config: SdkConfig,
    /// When the credentials stop working; `None` for long-lived keys.
    pub expires_at: Option<SystemTime>,
    /// The last role assumed, for the record.
    pub role_arn: Option<String>,
}

/// Resolves the identity's credentials, calling STS as few times as the chain needs.
pub async fn connect(identity: &Identity) -> Result<Connected, ProviderError> {
    validate_region(&identity.region)?;
    // `from_env` honours AWS_ENDPOINT_URL and friends: how users reach a VPC endpoint (and tests, moto).
    let base_config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(identity.region.clone()))
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&base_config);

    let (mut creds, mut role_arn) = match &identity.base {
        BaseCredentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let creds = Credentials::new(
                utf8(access_key_id, "access key ID")?,
                utf8(secret_access_key, "secret access key")?,
                session_token
                    .as_ref()
                    .map(|t| utf8(t, "session token"))
                    .transpose()?,
                None,
                "lockstep-secret-ref",
            );
            (creds, None)
        }
        BaseCredentials::WebIdentity {
            role_arn,
            token,
            session_name,
        } => {
            let out = sts
                .assume_role_with_web_identity()
                .role_arn(role_arn)
                .role_session_name(session_name)
                .web_identity_token(utf8(token, "ServiceAccount token")?)
                .send()
                .await
                .map_err(|e| {
                    call_error(
                        Call::AssumeRoleWithWebIdentity,
                        &format!("role {role_arn}"),
                        e,
                    )
                })?;
            (
                to_credentials(out.credentials, role_arn)?,
                Some(role_arn.clone()),
            )
        }
        BaseCredentials::DefaultChain => {
            let provider = base_config.credentials_provider().ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::AccessDenied,
                    "no AWS credentials: the store has no auth and the operator has none",
                )
            })?;
            let creds = provider.provide_credentials().await.map_err(|e| {
                ProviderError::new(
                    ErrorClass::AccessDenied,
                    format!("the operator's default AWS credentials do not resolve: {e}"),
                )
            })?;
            (creds, None)
        }
    };

    let chain = identity.additional_roles.iter().map(|arn| RoleToAssume {
        arn: arn.clone(),
        ..Default::default()
    });
    for role in chain.chain(identity.role.clone()) {
        let config = with_credentials(&base_config, creds);
        let mut req = aws_sdk_sts::Client::new(&config)
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(&identity.session_name);
        if let Some(id) = &role.external_id {
            req = req.external_id(id);
        }
        for (key, value) in &role.session_tags {
            let tag = Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| ProviderError::invalid(e.to_string()))?;
            req = req.tags(tag);
        }
        // STS only accepts transitive keys among the session's tags, as ESO applies them.
        if !role.session_tags.is_empty() {
            for key in &role.transitive_tag_keys {
                req = req.transitive_tag_keys(key);
            }
        }
        let out = req
            .send()
            .await
            .map_err(|e| call_error(Call::AssumeRole, &format!("role {}", role.arn), e))?;
        creds = to_credentials(out.credentials, &role.arn)?;
        role_arn = Some(role.arn.clone());
    }

    let expires_at = creds.expiry();
    let mut config = with_credentials(&base_config, creds);
    // As in ESO the retry settings apply to the calls made with the credentials, not to the STS
    // exchanges above.
    if let Some(retry) = identity.retry {
        config = config
            .to_builder()
            .retry_config(retry.retry_config())
            .build();
    }
    Ok(Connected {
        config,
        expires_at,
        role_arn,
    })
}

fn with_credentials(base: &SdkConfig, creds: Credentials) -> SdkConfig {
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .build()
}

fn to_credentials(
    out: Option<aws_sdk_sts::types::Credentials>,
    role_arn: &str,
) -> Result<Credentials, ProviderError> {
    let c = out.ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Unavailable,
            format!("STS returned no credentials for {role_arn}"),
        )
    })?;
    let expiry = SystemTime::try_from(c.expiration).ok();
    Ok(Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        expiry,
        "lockstep-sts",
    ))
}

fn utf8(value: &SecretValue, what: &str) -> Result<String, ProviderError> {
    String::from_utf8(value.expose().to_vec())
        .map_err(|_| ProviderError::invalid(format!("the {what} is not UTF-8 text")))
}
