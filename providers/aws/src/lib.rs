//! AWS Secrets Manager behind lockstep's provider trait, as ESO's AWS provider reads it
//! (eso-compatibility.md 4): one secret by staging label or `uuid/<VersionId>`, its tags with
//! `metadataPolicy: Fetch`, and many secrets with `dataFrom.find`. Errors are classified and say
//! which call failed on which secret and what to do, never a value.
//!
//! Parameter Store (`service: ParameterStore`) is in [`parameter_store`], on the same
//! credentials, region and retry code.
#![forbid(unsafe_code)]

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
}

impl SecretsManager {
    /// Clients for one identity: `config` carries its region, endpoint, credentials and retries.
    pub fn new(config: &aws_config::SdkConfig, prefix: Option<String>) -> Self {
        Self {
            client: Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            prefix: prefix.unwrap_or_default(),
        }
    }

    fn id(&self, remote: &RemoteRef) -> String {
        format!("{}{}", self.prefix, remote.key)
    }
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

    /// GetCallerIdentity needs no permission, so it proves the credentials without assuming what
    /// the identity may read.
    async fn validate(&self) -> Result<Validation, ProviderError> {
        self.sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| call_error(Call::GetCallerIdentity, "the store's credentials", e))?;
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}
