//! AWS Secrets Manager behind lockstep's provider trait.
//!
//! Thin for now: reads by stage or `uuid/<VersionId>`, JSON maps, and the classification of AWS
//! errors. Credentials, roles, batching and find arrive with the sync controller.
#![forbid(unsafe_code)]

mod classify;
pub mod credentials;

pub use classify::classify_error_code;

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use lockstep_provider_api::{
    Capabilities, FindQuery, ProviderError, RemoteRef, SecretProvider, SecretValue, Validation,
};

/// The `version` prefix that selects a VersionId instead of a stage (ESO's convention).
const VERSION_ID_PREFIX: &str = "uuid/";

#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: Client,
    sts: aws_sdk_sts::Client,
    /// Prepended verbatim to every remote key (`spec.provider.aws.prefix`).
    prefix: String,
}

impl SecretsManager {
    /// Clients for one identity: `config` carries its region, endpoint and credentials.
    pub fn new(config: &aws_config::SdkConfig, prefix: Option<String>) -> Self {
        Self {
            client: Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            prefix: prefix.unwrap_or_default(),
        }
    }

    async fn fetch(&self, remote: &RemoteRef) -> Result<SecretValue, ProviderError> {
        let id = format!("{}{}", self.prefix, remote.key);
        let mut req = self.client.get_secret_value().secret_id(&id);
        req = match remote.version.as_deref() {
            Some(v) if v.starts_with(VERSION_ID_PREFIX) => {
                req.version_id(&v[VERSION_ID_PREFIX.len()..])
            }
            Some(stage) if !stage.is_empty() => req.version_stage(stage),
            _ => req.version_stage("AWSCURRENT"),
        };
        let out = req.send().await.map_err(|e| {
            let err = e.into_service_error();
            let class = classify_error_code(err.code());
            ProviderError::new(
                class,
                format!(
                    "reading secret {id:?}: {}",
                    err.message().unwrap_or("unknown error")
                ),
            )
        })?;
        if let Some(s) = out.secret_string {
            return Ok(SecretValue::from(s));
        }
        if let Some(b) = out.secret_binary {
            return Ok(SecretValue::new(b.into_inner()));
        }
        Err(ProviderError::not_found(format!(
            "secret {id:?} has no value"
        )))
    }
}

#[async_trait::async_trait]
impl SecretProvider for SecretsManager {
    async fn get(&self, remote: &RemoteRef) -> Result<SecretValue, ProviderError> {
        self.fetch(remote).await
    }

    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let value = self.fetch(remote).await?;
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(value.expose()).map_err(|_| {
                ProviderError::invalid(format!("secret {:?} is not a JSON object", remote.key))
            })?;
        Ok(object
            .into_iter()
            .map(|(k, v)| {
                let bytes = match v {
                    serde_json::Value::String(s) => s.into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                (k, SecretValue::new(bytes))
            })
            .collect())
    }

    async fn find(
        &self,
        _query: &FindQuery,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        Err(ProviderError::invalid("find is not implemented yet"))
    }

    async fn put(&self, _remote: &RemoteRef, _value: &SecretValue) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("PushSecret is not implemented yet"))
    }

    async fn delete(&self, _remote: &RemoteRef) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("PushSecret is not implemented yet"))
    }

    /// GetCallerIdentity needs no permission, so it proves the credentials without assuming what
    /// the identity may read.
    async fn validate(&self) -> Result<Validation, ProviderError> {
        self.sts.get_caller_identity().send().await.map_err(|e| {
            let err = e.into_service_error();
            ProviderError::new(
                classify_error_code(err.code()),
                format!(
                    "the credentials were refused by STS GetCallerIdentity: {}",
                    err.message().unwrap_or("no details")
                ),
            )
        })?;
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}
