//! Turning a store into a connected provider, through the shared client cache.
use std::sync::Arc;

use kube::Client;
use lockstep_provider_api::{ErrorClass, ProviderError, SecretProvider, SecretValue};
use lockstep_provider_aws::credentials::BaseCredentials;
use lockstep_provider_aws::{ParameterStore, RetrySettings as AwsRetry, SecretsManager};
use lockstep_provider_fake::{FakeEntry, FakeProvider, ForcedValidation};
use lockstep_provider_kubernetes::KubernetesSecrets;
use lockstep_provider_webhook::Webhook;

use super::aws_identity::{self, AuthError, Scope};
use super::store_refs::RefError;
use super::stores::Store;
use super::{kubernetes_store, webhook_store};
use crate::api::provider::Provider;
use crate::api::provider_aws::{AwsProvider, AwsService};
use crate::api::secret_store::RetrySettings;
use crate::audit::record::{Draft, ObjectRef, Remote, ResponseStatus, Tenant, Trigger, Verb};
use crate::fetch::{CacheKey, ClientCache, Reader};

/// Who asked for the connection, for the audit record of a credential exchange.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub auditor: &'a crate::audit::Auditor,
    /// The ExternalSecret being synced; `None` when a store is validated on its own.
    pub object: Option<&'a ObjectRef>,
    pub trigger: Trigger,
}

/// A connected provider (behind the shared fetch layer), and the identity it acts with (for the
/// audit log).
pub struct Connected {
    pub reader: Reader,
    pub tenant: Option<Tenant>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Selection(#[from] crate::api::provider::ProviderSelectionError),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Reference(#[from] RefError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// The connected provider of `store` for a consumer in `consumer_namespace` (`None` when the
/// store is validated on its own).
pub async fn provider(
    client: &Client,
    cache: &ClientCache,
    store: &Store,
    consumer_namespace: Option<&str>,
    audit: Audit<'_>,
) -> Result<Connected, ConnectError> {
    match store.spec.provider.single()? {
        Provider::Aws(aws) => {
            aws_provider(client, cache, store, aws, consumer_namespace, audit).await
        }
        Provider::Fake(fake) => {
            // Its values are the store's own spec, which the watch cache holds anyway.
            let key = CacheKey {
                store: store.id(),
                generation: store.generation,
                consumer_namespace: String::new(),
                sources: Vec::new(),
            };
            let build = || {
                let entries = fake.data.iter().map(|d| FakeEntry {
                    key: d.key.clone(),
                    value: SecretValue::from(d.value.clone()),
                    version: d.version.clone(),
                });
                // The schema allows 0 to 2; anything else cannot pass it, and would fail validation.
                let validation = fake.validation_result.map_or(ForcedValidation::Ready, |n| {
                    ForcedValidation::from_eso(n).unwrap_or(ForcedValidation::Error)
                });
                Arc::new(FakeProvider::new(entries).with_validation(validation))
                    as Arc<dyn SecretProvider>
            };
            Ok(Connected {
                reader: cache.get_or_build(key, build).await,
                tenant: None,
            })
        }
        Provider::Kubernetes(spec) => {
            let scope = scope_of(store, consumer_namespace);
            let plan = kubernetes_store::plan(client, spec, scope).await?;
            let key = cache_key(store, consumer_namespace, plan.sources.clone());
            let connected = cache.get_or_connect(key, || async move {
                let (connection, expires_at) = plan.connection(client).await?;
                let provider: Arc<dyn SecretProvider> =
                    Arc::new(KubernetesSecrets::connect(&connection).await?);
                Ok::<_, ConnectError>((provider, expires_at))
            });
            Ok(Connected {
                reader: connected.await?,
                tenant: None,
            })
        }
        Provider::Webhook(spec) => {
            let scope = scope_of(store, consumer_namespace);
            let (config, sources) = webhook_store::config(client, spec, scope).await?;
            let key = cache_key(store, consumer_namespace, sources);
            let connected = cache.get_or_connect(key, || async move {
                let provider: Arc<dyn SecretProvider> = Arc::new(Webhook::new(
                    config,
                    Arc::new(webhook_store::EngineRenderer),
                )?);
                Ok::<_, ConnectError>((provider, None))
            });
            Ok(Connected {
                reader: connected.await?,
                tenant: None,
            })
        }
    }
}

fn scope_of<'a>(store: &'a Store, consumer_namespace: Option<&'a str>) -> Scope<'a> {
    Scope {
        store_kind: store.kind,
        store_name: &store.name,
        store_namespace: store.namespace.as_deref(),
        consumer_namespace,
    }
}

/// The cache entry of a store used from `consumer_namespace`, valid while the objects its
/// configuration was read from (`sources`) are unchanged.
fn cache_key(store: &Store, consumer_namespace: Option<&str>, sources: Vec<String>) -> CacheKey {
    CacheKey {
        store: store.id(),
        generation: store.generation,
        consumer_namespace: consumer_namespace.unwrap_or_default().to_owned(),
        sources,
    }
}

async fn aws_provider(
    client: &Client,
    cache: &ClientCache,
    store: &Store,
    aws: &AwsProvider,
    consumer_namespace: Option<&str>,
    audit: Audit<'_>,
) -> Result<Connected, ConnectError> {
    if aws.service == AwsService::CertificateManager {
        return Err(ConnectError::Unsupported(
            "AWS service CertificateManager is not implemented yet; use service: SecretsManager \
             or ParameterStore"
                .into(),
        ));
    }
    // Before auth, so a ClusterSecretStore whose auth waits for an ExternalSecret's namespace
    // still reports a wrong region at once.
    lockstep_provider_aws::validate_region(&aws.region)?;
    let retry = retry_settings(store.spec.retry_settings.as_ref())?;
    let scope = Scope {
        store_kind: store.kind,
        store_name: &store.name,
        store_namespace: store.namespace.as_deref(),
        consumer_namespace,
    };
    let resolved = aws_identity::resolve(client, aws, scope).await?;
    let key = CacheKey {
        store: store.id(),
        generation: store.generation,
        consumer_namespace: consumer_namespace.unwrap_or_default().to_owned(),
        sources: resolved.source.objects.clone(),
    };
    // Roles assumed after the base credentials name the tenant too, so CloudTrail can be joined
    // with the audit log's roleSessionName.
    let assumed_session = aws_identity::session_name(
        consumer_namespace
            .or(store.namespace.as_deref())
            .unwrap_or("cluster"),
        &store.name,
    );
    let tenant = resolved.tenant(&assumed_session);
    let exchange = &exchange_draft(store, aws, &resolved, &tenant, audit);
    let record_failure = |e: ConnectError| {
        let mut draft = exchange.clone();
        draft.response_status = ResponseStatus::failure(class_of(&e).as_str(), e.to_string());
        audit.auditor.emit(draft);
        e
    };
    let prefix = aws.prefix.clone();
    let service = aws.service;
    let store_id = store.id();
    let metrics = cache.metrics().clone();
    cache
        .get_or_connect(key, || async move {
            let mut identity = resolved
                .identity(client)
                .await
                .map_err(|e| record_failure(e.into()))?;
            identity.retry = retry;
            identity.session_name = assumed_session;
            let connected = lockstep_provider_aws::credentials::connect(&identity)
                .await
                .map_err(|e| record_failure(e.into()))?;
            // One line per credential exchange (never per reconcile): who lockstep became, for whom.
            tracing::info!(
                store = %store_id,
                for_namespace = %consumer_namespace.unwrap_or_default(),
                role = %connected.role_arn.as_deref().unwrap_or("(base credentials)"),
                session = %match &identity.base {
                    BaseCredentials::WebIdentity { session_name, .. } => session_name.as_str(),
                    _ => identity.session_name.as_str(),
                },
                "exchanged AWS credentials"
            );
            audit.auditor.emit(exchange.clone());
            let config = crate::telemetry::aws::counted(connected.config, metrics, store_id);
            let provider: Arc<dyn SecretProvider> = match service {
                AwsService::ParameterStore => Arc::new(ParameterStore::new(&config, prefix)),
                _ => Arc::new(SecretsManager::new(&config, prefix)),
            };
            Ok::<_, ConnectError>((provider, connected.expires_at))
        })
        .await
        .map(|reader| Connected {
            reader,
            tenant: Some(tenant),
        })
}

/// The audit record of one credential exchange, before its outcome.
fn exchange_draft(
    store: &Store,
    aws: &AwsProvider,
    resolved: &aws_identity::Resolved,
    tenant: &Tenant,
    audit: Audit<'_>,
) -> Draft {
    let mut draft = Draft::new(Verb::Exchange, audit.trigger);
    draft.tenant = Some(tenant.clone());
    draft.object_ref = audit.object.cloned();
    draft.store = Some(super::audited::store_ref(store, "aws", Some(&aws.region)));
    draft.remote = Some(Remote {
        key: tenant.role_arn.clone(),
        calls: resolved.exchange_calls(),
        ..Default::default()
    });
    draft
}

/// `spec.retrySettings` as the AWS provider takes it; `None` keeps the SDK's defaults.
fn retry_settings(spec: Option<&RetrySettings>) -> Result<Option<AwsRetry>, ProviderError> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let interval = spec
        .retry_interval
        .as_ref()
        .map(|d| d.to_std())
        .transpose()
        .map_err(|e| ProviderError::invalid(format!("spec.retrySettings.retryInterval {e}")))?;
    Ok(Some(AwsRetry::from_spec(spec.max_retries, interval)))
}

/// A short, stable name for an error's class, for logs and metrics.
pub fn class_of(err: &ConnectError) -> ErrorClass {
    match err {
        ConnectError::Provider(e) => e.class,
        ConnectError::Auth(AuthError::Kube { .. } | AuthError::TokenRequest { .. }) => {
            ErrorClass::Unavailable
        }
        ConnectError::Reference(e) if e.is_transient() => ErrorClass::Unavailable,
        _ => ErrorClass::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::meta::GoDuration;

    #[test]
    fn retry_settings_follow_the_store_spec() {
        assert_eq!(retry_settings(None).unwrap(), None);
        let defaults = retry_settings(Some(&RetrySettings::default())).unwrap();
        assert_eq!(
            defaults,
            Some(AwsRetry {
                max_attempts: 3,
                interval: None
            })
        );
        let spec = RetrySettings {
            max_retries: Some(5),
            retry_interval: Some(GoDuration::new("1m30s")),
        };
        assert_eq!(
            retry_settings(Some(&spec)).unwrap(),
            Some(AwsRetry {
                max_attempts: 5,
                interval: Some(Duration::from_secs(90))
            })
        );
        let bad = RetrySettings {
            max_retries: None,
            retry_interval: Some(GoDuration::new("soon")),
        };
        let err = retry_settings(Some(&bad)).unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(
            err.message.contains("retryInterval \"soon\""),
            "{}",
            err.message
        );
    }
}
