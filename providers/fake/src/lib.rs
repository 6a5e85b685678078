//! ESO's fake provider: secrets declared inline in the store (`spec.provider.fake.data`), for
//! demos and for benchmarks that measure lockstep's own cost without a network.
//!
//! As in ESO (`providers/v1/fake`):
//! - an entry is found by its key and its version together: a read without a version finds only
//!   the entry without one, and a read with a version only the entry with exactly that version;
//!   anything else is `NotFound`;
//! - `remoteRef.property` is applied by the controller (a gjson path), as for every provider;
//! - `dataFrom.extract` splits a JSON object into keys;
//! - `dataFrom.find` takes `name.regexp` (unanchored) and returns, for each matching key, the
//!   value of its highest version, versions compared as strings (so `v10` sorts before `v9`, and
//!   the entry without a version is the lowest);
//! - `validationResult` forces the store's validation: 0 Ready, 1 Unknown, 2 an error.
//!
//! Where lockstep differs from ESO, and why:
//! - `find.path` keeps only keys that start with it (ESO ignores it), and `find.tags` is refused
//!   (ESO ignores it when a name is given): fake entries have no tags, and a filter the user wrote
//!   is never silently dropped.
//! - ESO finds an entry by the concatenation of key and version, so key `ab` without a version
//!   and key `a` at version `b` collide; lockstep keeps them apart.
//! - ESO keeps PushSecret values in memory; here the provider is read-only (lockstep has no
//!   PushSecret controller yet), and writes are refused.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use lockstep_provider_api::{
    Capabilities, ErrorClass, Fetched, FindQuery, ProviderError, RemoteRef, SecretProvider,
    SecretValue, Validation, VersionInfo,
};
use regex::Regex;

/// One entry of `spec.provider.fake.data`.
#[derive(Debug, Clone)]
pub struct FakeEntry {
    pub key: String,
    pub value: SecretValue,
    pub version: Option<String>,
}

/// What `spec.provider.fake.validationResult` makes validation report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForcedValidation {
    /// 0, or unset.
    #[default]
    Ready,
    /// 1.
    Unknown,
    /// 2.
    Error,
}

impl ForcedValidation {
    /// ESO's `ValidationResult` number; `None` for a number it does not define.
    pub fn from_eso(result: u8) -> Option<Self> {
        match result {
            0 => Some(Self::Ready),
            1 => Some(Self::Unknown),
            2 => Some(Self::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
pub struct FakeProvider {
    /// Keyed like ESO: the key and the version together (`""` for no version), so a read needs
    /// the exact version. A later entry with the same key and version wins, as in ESO.
    entries: BTreeMap<(String, String), SecretValue>,
    validation: ForcedValidation,
}

impl FakeProvider {
    pub fn new(entries: impl IntoIterator<Item = FakeEntry>) -> Self {
        let entries = entries
            .into_iter()
            .map(|e| ((e.key, e.version.unwrap_or_default()), e.value))
            .collect();
        Self {
            entries,
            validation: ForcedValidation::Ready,
        }
    }

    /// Makes [`SecretProvider::validate`] report `validation`.
    pub fn with_validation(mut self, validation: ForcedValidation) -> Self {
        self.validation = validation;
        self
    }

    fn lookup(&self, remote: &RemoteRef) -> Result<&SecretValue, ProviderError> {
        let version = remote.version.clone().unwrap_or_default();
        self.entries
            .get(&(remote.key.clone(), version))
            .ok_or_else(|| ProviderError::not_found(not_found_message(remote)))
    }
}

fn not_found_message(remote: &RemoteRef) -> String {
    match remote.version.as_deref().filter(|v| !v.is_empty()) {
        None => format!(
            "secret {:?} does not exist in the store's spec.provider.fake.data (without a version)",
            remote.key
        ),
        Some(v) => format!(
            "secret {:?} at version {v:?} does not exist in the store's spec.provider.fake.data; \
             a fake entry is read only with exactly its own version",
            remote.key
        ),
    }
}

#[async_trait::async_trait]
impl SecretProvider for FakeProvider {
    async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError> {
        let value = self.lookup(remote)?.clone();
        Ok(Fetched {
            value,
            version: VersionInfo {
                id: remote.version.clone().filter(|v| !v.is_empty()),
                stages: Vec::new(),
            },
        })
    }

    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let value = self.lookup(remote)?;
        lockstep_provider_api::json_object(&format!("secret {:?}", remote.key), value)
    }

    /// Keyed by entry key; the value of each key's highest version.
    async fn find(
        &self,
        query: &FindQuery,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        if !query.tags.is_empty() {
            return Err(ProviderError::invalid(
                "the fake provider has no tags, so dataFrom.find.tags cannot match anything: \
                 find by name.regexp (and path) instead",
            ));
        }
        let Some(pattern) = &query.name_regexp else {
            return Err(ProviderError::invalid(
                "unsupported find operator: the fake provider finds by name.regexp only; add \
                 name.regexp (\".*\" takes every key)",
            ));
        };
        let name = Regex::new(pattern).map_err(|e| {
            ProviderError::invalid(format!(
                "could not compile find.name.regexp {pattern:?}: {e}; write an RE2 regular \
                 expression such as ^db-"
            ))
        })?;
        let path = query.path.as_deref().unwrap_or_default();
        // Entries are ordered by key, then version: the last one seen per key is its highest.
        let mut found = BTreeMap::new();
        for ((key, _version), value) in &self.entries {
            if key.starts_with(path) && name.is_match(key) {
                found.insert(key.clone(), value.clone());
            }
        }
        Ok(found)
    }

    async fn put(&self, _remote: &RemoteRef, _value: &SecretValue) -> Result<(), ProviderError> {
        Err(ProviderError::invalid(
            "the fake provider is read-only in lockstep: declare values in the store's \
             spec.provider.fake.data",
        ))
    }

    async fn delete(&self, _remote: &RemoteRef) -> Result<(), ProviderError> {
        Err(ProviderError::invalid(
            "the fake provider is read-only in lockstep: remove values from the store's \
             spec.provider.fake.data",
        ))
    }

    async fn validate(&self) -> Result<Validation, ProviderError> {
        match self.validation {
            ForcedValidation::Ready => Ok(Validation::Ready),
            ForcedValidation::Unknown => Ok(Validation::Unknown),
            ForcedValidation::Error => Err(ProviderError::new(
                ErrorClass::Invalid,
                "unable to validate: spec.provider.fake.validationResult is 2 (Error); set it to \
                 0 or remove it",
            )),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str, version: Option<&str>) -> FakeEntry {
        FakeEntry {
            key: key.into(),
            value: value.to_string().into(),
            version: version.map(str::to_owned),
        }
    }

    fn provider() -> FakeProvider {
        FakeProvider::new([
            entry("db", r#"{"user":"app","port":5432,"none":null}"#, None),
            entry("db", "old", Some("v1")),
            entry("db", "older", Some("v0")),
            entry("api-key", "k1", Some("v9")),
            entry("api-key", "k2", Some("v10")),
            entry("team/cache", "c", None),
            entry("ab", "no version", None),
            entry("a", "version b", Some("b")),
        ])
    }

    fn at(key: &str, version: Option<&str>) -> RemoteRef {
        RemoteRef {
            key: key.into(),
            version: version.map(str::to_owned),
            ..Default::default()
        }
    }

    fn text(map: &BTreeMap<String, SecretValue>) -> Vec<(String, String)> {
        map.iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v.expose()).into_owned()))
            .collect()
    }

    fn find(name: Option<&str>, path: Option<&str>) -> FindQuery {
        FindQuery {
            name_regexp: name.map(str::to_owned),
            path: path.map(str::to_owned),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn reads_need_the_exact_version() {
        let p = provider();
        let v1 = p.get(&at("db", Some("v1"))).await.unwrap();
        assert_eq!(v1.value.expose(), b"old");
        assert_eq!(v1.version.id.as_deref(), Some("v1"));
        let err = p.get(&at("db", Some("v2"))).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::NotFound);
        assert!(err.message.contains("exactly its own version"), "{}", err);
        // The entry without a version is not "the latest": only a read without a version finds it.
        assert_eq!(
            p.get(&at("api-key", None)).await.unwrap_err().class,
            ErrorClass::NotFound
        );
        // Key and version are kept apart (ESO's concatenated key would mix these two up).
        assert_eq!(
            p.get(&at("ab", None)).await.unwrap().value.expose(),
            b"no version"
        );
        assert_eq!(
            p.get(&at("a", Some("b"))).await.unwrap().value.expose(),
            b"version b"
        );
    }

    #[tokio::test]
    async fn maps_unquote_strings_and_keep_other_json() {
        let map = provider().get_map(&at("db", None)).await.unwrap();
        assert_eq!(
            text(&map),
            [
                ("none".to_string(), String::new()),
                ("port".into(), "5432".into()),
                ("user".into(), "app".into())
            ]
        );
        let err = provider().get_map(&at("db", Some("v1"))).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(!err.message.contains("old"));
    }

    #[tokio::test]
    async fn find_returns_the_highest_version_of_each_matching_key() {
        let p = provider();
        let found = p.find(&find(Some("^(db|api)"), None)).await.unwrap();
        // Versions compare as strings, as in ESO: "v9" > "v10", and "v1" > "v0" > none.
        assert_eq!(
            text(&found),
            [
                ("api-key".to_string(), "k1".to_string()),
                ("db".into(), "old".into())
            ]
        );
        // Unanchored, and an empty pattern takes everything.
        assert_eq!(p.find(&find(Some("cache"), None)).await.unwrap().len(), 1);
        assert_eq!(p.find(&find(Some(""), None)).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn find_keeps_keys_under_the_path() {
        let found = provider()
            .find(&find(Some("."), Some("team/")))
            .await
            .unwrap();
        assert_eq!(text(&found), [("team/cache".to_string(), "c".to_string())]);
    }

    #[tokio::test]
    async fn find_refuses_what_it_cannot_honour() {
        let p = provider();
        let err = p.find(&find(None, Some("team/"))).await.unwrap_err();
        assert!(err.message.contains("name.regexp"), "{err}");
        let tags = FindQuery {
            name_regexp: Some(".".into()),
            tags: BTreeMap::from([("env".into(), "prod".into())]),
            ..Default::default()
        };
        let err = p.find(&tags).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(err.message.contains("no tags"), "{err}");
        let err = p.find(&find(Some("(unclosed"), None)).await.unwrap_err();
        assert!(err.message.contains("\"(unclosed\""), "{err}");
    }

    #[tokio::test]
    async fn validation_is_forced_by_validation_result() {
        assert_eq!(provider().validate().await.unwrap(), Validation::Ready);
        let unknown = provider().with_validation(ForcedValidation::Unknown);
        assert_eq!(unknown.validate().await.unwrap(), Validation::Unknown);
        let error = provider().with_validation(ForcedValidation::Error);
        let err = error.validate().await.unwrap_err();
        assert!(err.message.contains("validationResult is 2"), "{err}");
        assert_eq!(ForcedValidation::from_eso(3), None);
    }

    #[tokio::test]
    async fn writes_are_refused_with_what_to_do() {
        let p = provider();
        let err = p
            .put(&at("x", None), &SecretValue::from("v".to_string()))
            .await
            .unwrap_err();
        assert!(err.message.contains("spec.provider.fake.data"), "{err}");
        assert_eq!(p.capabilities(), Capabilities::ReadOnly);
    }
}
