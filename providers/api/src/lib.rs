//! The provider plug-in point of lockstep.
//!
//! A provider receives resolved configuration and credentials (never Kubernetes objects) and
//! returns bytes or a classified [`ProviderError`]. Values travel as [`SecretValue`], which never
//! prints its content and wipes its memory on drop.
//!
//! # The contract every [`SecretProvider`] keeps
//!
//! - **Bytes, not Secrets.** A read returns the value as the provider stores it. The controller
//!   applies `remoteRef.property` (a gjson path), explodes JSON for `dataFrom.extract`, converts
//!   and decodes keys, and writes the Secret, the same way for every provider.
//! - **Names as the user wrote them.** [`RemoteRef::key`] is `remoteRef.key` unchanged; a provider
//!   adds its own store-level prefix (AWS `spec.provider.aws.prefix`) itself. [`find`] results are
//!   keyed by the provider's full names, unconverted.
//! - **Classified errors.** [`ErrorClass::NotFound`] means the secret does not exist (for ESO, a
//!   `NoSecretErr`): the controller then drops the key under `deletionPolicy: Delete` or `Merge`.
//!   Anything that should not empty a Secret (a bad version selector, a denied call, a filter that
//!   cannot be honoured) is another class. [`ErrorClass::Throttled`] and
//!   [`ErrorClass::Unavailable`] are retried with backoff; the others wait for a change.
//! - **Messages say what to do, and never hold a value.** Name the call, the secret (and version)
//!   and the setting or permission to fix. Never quote a value, a credential, or a provider message
//!   that can contain one.
//! - **Nothing silently ignored.** A query field the provider cannot honour (a `find.tags` on a
//!   provider without tags) is an [`ErrorClass::Invalid`] error naming the field.
//!
//! [`find`]: SecretProvider::find
#![forbid(unsafe_code)]

mod error;
pub mod go_json;
mod json_map;
mod value;

pub use error::{ErrorClass, ProviderError};
pub use json_map::json_object;
pub use value::SecretValue;

use std::collections::BTreeMap;

/// Which secret, and which version of it, to read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct RemoteRef {
    /// The provider's key (name, ARN, path...), as `remoteRef.key` says it.
    pub key: String,
    /// A sub-selection inside the value (a gjson path). The controller applies it to the bytes a
    /// read returns and passes `None`; providers ignore it.
    pub property: Option<String>,
    /// A provider-specific version selector, never empty (`None` for the current version): for
    /// Secrets Manager a staging label or `uuid/<VersionId>`, for Parameter Store a version
    /// number or label, for the fake provider the entry's exact `version`.
    pub version: Option<String>,
    /// Return the secret's metadata (`metadataPolicy: Fetch`: for AWS the tags as a JSON object
    /// of keys to values) instead of its value.
    pub fetch_metadata: bool,
}

/// Filters for finding many secrets at once (`dataFrom.find`). Every filter that is set applies;
/// a provider refuses (`Invalid`) a filter it cannot honour rather than ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindQuery {
    /// Only secrets under this path / name prefix (never empty: `None` when unset). What "under"
    /// means is the provider's: a name prefix (Secrets Manager, fake), a hierarchy (Parameter
    /// Store).
    pub path: Option<String>,
    /// Only secrets whose full name matches this RE2 regular expression, unanchored; an empty
    /// pattern matches every name.
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

/// The outcome of validating a store's configuration and credentials. A failure is an `Err`:
/// the store is then not Ready, with the error's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Credentials resolve and the provider answered: the store is Ready (`Valid`).
    Ready,
    /// Validation could not tell (for example credentials depend on the ExternalSecret's
    /// namespace): the store is Ready with reason `ValidationUnknown`, as in ESO.
    Unknown,
}

/// One secret manager behind one store identity. The controller keeps one per store identity
/// and shares it between reconciles, so implementations hold clients, not per-request state.
#[async_trait::async_trait]
pub trait SecretProvider: Send + Sync {
    /// Reads one secret: its value at `remote.version`, or its metadata with
    /// `remote.fetch_metadata`. `NotFound` only when the secret does not exist.
    async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError>;

    /// Reads several secrets; the result has one entry per request, in order, and the entry at
    /// position `i` answers `remotes[i]`, so one secret's error reaches only the callers that
    /// asked for it (a missing secret is `NotFound` for its own entry, never for the batch).
    /// Requests may repeat. Providers with a batch API override this to spend fewer calls; the
    /// default reads one by one.
    async fn get_many(&self, remotes: &[RemoteRef]) -> Vec<Result<Fetched, ProviderError>> {
        let mut out = Vec::with_capacity(remotes.len());
        for remote in remotes {
            out.push(self.get(remote).await);
        }
        out
    }

    /// Reads one secret and explodes its JSON object into keys, as ESO's `GetSecretMap`: string
    /// members unquoted, `null` empty, anything else as its JSON text. A value that is not a
    /// JSON object is `Invalid`. (The controller's `dataFrom.extract` uses [`get`] and its own
    /// exploding; this is for callers that want the provider's map directly.)
    ///
    /// [`get`]: SecretProvider::get
    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError>;

    /// Finds many secrets by name, path or tags (`dataFrom.find`): each secret's current value,
    /// keyed by its full name. A query with neither `name_regexp` nor `tags` is `Invalid` (ESO's
    /// "unexpected find operator"). A secret that disappears between listing and reading is left
    /// out; any other failure fails the whole find, so the Secret keeps its last good data.
    async fn find(&self, query: &FindQuery)
    -> Result<BTreeMap<String, SecretValue>, ProviderError>;

    /// Writes a value (PushSecret). Read-only providers return an `Invalid` error that says so.
    async fn put(&self, remote: &RemoteRef, value: &SecretValue) -> Result<(), ProviderError>;

    /// Deletes a value that lockstep wrote (PushSecret with `deletionPolicy: Delete`); a value
    /// that is already gone is not an error. Read-only providers return an `Invalid` error.
    async fn delete(&self, remote: &RemoteRef) -> Result<(), ProviderError>;

    /// Checks that the configuration and credentials work, as cheaply as the provider allows
    /// (AWS: STS GetCallerIdentity, which needs no permission).
    async fn validate(&self) -> Result<Validation, ProviderError>;

    /// What this provider supports, reported in the store's `status.capabilities`.
    fn capabilities(&self) -> Capabilities;
}
