//! The provider plug-in point of lockstep.
//!
//! A provider receives resolved configuration and credentials (never Kubernetes objects) and
//! returns bytes or a classified [`ProviderError`]. Values travel as [`SecretValue`], which never
//! prints its content and wipes its memory on drop.
#![forbid(unsafe_code)]

mod error;
mod value;

pub use error::{ErrorClass, ProviderError};
pub use value::SecretValue;

use std::collections::BTreeMap;

/// Which secret, and which version of it, to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RemoteRef {
    /// The provider's key (name, ARN, path...).
    pub key: String,
    /// A sub-selection inside the value (for AWS a gjson path), if any.
    pub property: Option<String>,
    /// A provider-specific version selector (for AWS a stage, or `uuid/<VersionId>`).
    pub version: Option<String>,
    /// Return the secret's metadata (tags) instead of its value.
    pub fetch_metadata: bool,
}

/// Filters for finding many secrets at once (`dataFrom.find`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindQuery {
    /// Only secrets under this path / name prefix.
    pub path: Option<String>,
    /// Only secrets whose name matches this regular expression.
    pub name_regexp: Option<String>,
    /// Only secrets carrying all of these tags.
    pub tags: BTreeMap<String, String>,
}

/// Which version a read returned, as the provider reports it (for the audit record).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionInfo {
    /// The provider's identifier of the version read (AWS: the VersionId), when it has one.
    pub id: Option<String>,
    /// The labels the version carries (AWS: staging labels such as `AWSCURRENT`).
    pub stages: Vec<String>,
}

/// One value read, and which version of the secret it came from.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub value: SecretValue,
    pub version: VersionInfo,
}

impl Fetched {
    /// A value whose provider has no notion of versions.
    pub fn unversioned(value: SecretValue) -> Self {
        Self {
            value,
            version: VersionInfo::default(),
        }
    }
}

/// What a store can do, reported in the store's `status.capabilities`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capabilities {
    ReadOnly,
    WriteOnly,
    ReadWrite,
}

/// The outcome of validating a store's configuration and credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Credentials resolve and the provider answered.
    Ready,
    /// Validation could not tell (for example credentials depend on the ExternalSecret's namespace).
    Unknown,
}

/// One secret manager behind one store identity.
#[async_trait::async_trait]
pub trait SecretProvider: Send + Sync {
    /// Reads one secret (the controller applies `property` to the bytes returned).
    async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError>;

    /// Reads several secrets; the result at position `i` answers `remotes[i]`, so one secret's
    /// error reaches only the callers that asked for it. Providers with a batch API override this
    /// to spend fewer calls; the default reads one by one.
    async fn get_many(&self, remotes: &[RemoteRef]) -> Vec<Result<Fetched, ProviderError>> {
        let mut out = Vec::with_capacity(remotes.len());
        for remote in remotes {
            out.push(self.get(remote).await);
        }
        out
    }

    /// Reads one secret and explodes its JSON object into keys (`dataFrom.extract`).
    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError>;

    /// Finds many secrets by name, path or tags (`dataFrom.find`).
    async fn find(&self, query: &FindQuery)
    -> Result<BTreeMap<String, SecretValue>, ProviderError>;

    /// Writes a value (PushSecret). Read-only providers return an `Invalid` error.
    async fn put(&self, remote: &RemoteRef, value: &SecretValue) -> Result<(), ProviderError>;

    /// Deletes a value that lockstep wrote (PushSecret with `deletionPolicy: Delete`).
    async fn delete(&self, remote: &RemoteRef) -> Result<(), ProviderError>;

    /// Checks that the configuration and credentials work.
    async fn validate(&self) -> Result<Validation, ProviderError>;

    /// What this provider supports.
    fn capabilities(&self) -> Capabilities;
}
