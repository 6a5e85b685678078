//! AWS Secrets Manager behind lockstep's provider trait, as ESO's AWS provider reads it
//! (eso-compatibility.md 4): one secret by staging label or `uuid/<VersionId>`, its tags with
//! `metadataPolicy: Fetch`, and many secrets with `dataFrom.find`. Errors are classified and say
//! which call failed on which secret and what to do, never a value.
//!
//! Parameter Store (`service: ParameterStore`) is in [`parameter_store`], on the same
//! credentials, region and retry code.
#![forbid(unsafe_code)]

mod batch;
mod classify;
pub mod credentials;
mod errors;
mod find;
pub mod parameter_store;
mod read;
mod region;
mod retry;

pub use classify::classify_error_code;
pub use parameter_store::ParameterStore;
pub use region::validate_region;
pub use retry::RetrySettings;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use aws_sdk_secretsmanager::Client;
use lockstep_provider_api::{
    Capabilities, Fetched, FindQuery, ProviderError, RemoteRef, SecretProvider, SecretValue,
    Validation,
};

use crate::errors::{Call, call_error};

#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: Client,
    sts: aws_sdk_sts::Client,
    /// Prepended verbatim to every remote key (`spec.provider.aws.prefix`), not to find queries.
    prefix: String,
    /// Set once this identity was refused BatchGetSecretValue: it then reads one by one.
    batch_denied: Arc<AtomicBool>,
}

impl SecretsManager {
    /// Clients for one identity: `config` carries its region, endpoint, credentials and retries.
    pub fn new(config: &aws_config::SdkConfig, prefix: Option<String>) -> Self {
        Self {
            client: Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            prefix: prefix.unwrap_or_default(),
            batch_denied: Arc::default(),
        }
    }

    fn id(&self, remote: &RemoteRef) -> String {
        format!("{}{}", self.prefix, remote.key)
    }
}

/// A store's validation for both AWS services: GetCallerIdentity needs no permission, so it
/// proves the credentials without assuming what the identity may read (ESO only resolves them).
pub(crate) async fn validate_credentials(
    sts: &aws_sdk_sts::Client,
) -> Result<Validation, ProviderError> {
    sts.get_caller_identity()
        .send()
        .await
        .map_err(|e| call_error(Call::GetCallerIdentity, "the store's credentials", e))?;
    Ok(Validation::Ready)
}

#[async_trait::async_trait]
impl SecretProvider for SecretsManager {
    /// The value at `remote.version`, or with `fetch_metadata` the tags as a JSON object.
    /// `remote.property` is not applied here: the controller applies it to these bytes.
    async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError> {
        let id = self.id(remote);
        if remote.fetch_metadata {
            read::tags(&self.client, &id).await
        } else {
            read::value(&self.client, &id, remote.version.as_deref()).await
        }
    }

    /// Current values of explicit keys come from BatchGetSecretValue, 20 per call; other
    /// versions and metadata, and whatever a batch did not answer, are read one by one.
    async fn get_many(&self, remotes: &[RemoteRef]) -> Vec<Result<Fetched, ProviderError>> {
        let batched: Vec<usize> = (0..remotes.len())
            .filter(|&i| batch::batchable(remotes[i].version.as_deref(), remotes[i].fetch_metadata))
            .collect();
        let ids: Vec<String> = batched.iter().map(|&i| self.id(&remotes[i])).collect();
        let mut answers: Vec<Option<Result<Fetched, ProviderError>>> =
            (0..remotes.len()).map(|_| None).collect();
        // One secret alone costs one call either way; GetSecretValue needs no extra permission.
        if ids.len() > 1 {
            let values = batch::current_values(&self.client, &ids, &self.batch_denied).await;
            for (i, answer) in batched.into_iter().zip(values) {
                answers[i] = answer;
            }
        }
        let reads = remotes
            .iter()
            .zip(answers)
            .map(|(remote, answer)| async move {
                match answer {
                    Some(answer) => answer,
                    None => self.get(remote).await,
                }
            });
        futures::future::join_all(reads).await
    }

    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let value = self.get(remote).await?.value;
        lockstep_provider_api::json_object(&format!("secret {:?}", self.id(remote)), &value)
    }

    async fn find(
        &self,
        query: &FindQuery,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let plan = find::FindPlan::new(query)?;
        find::find(&self.client, &plan).await
    }

    async fn put(&self, _remote: &RemoteRef, _value: &SecretValue) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("PushSecret is not implemented yet"))
    }

    async fn delete(&self, _remote: &RemoteRef) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("PushSecret is not implemented yet"))
    }

    async fn validate(&self) -> Result<Validation, ProviderError> {
        validate_credentials(&self.sts).await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}
