//! ESO's fake provider: secrets declared inline in the store (`spec.provider.fake.data`).
//!
//! Thin for now: exact-version reads and JSON-object maps. Property paths and `find` arrive with
//! the materialize layer.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use lockstep_provider_api::{
    Capabilities, Fetched, FindQuery, ProviderError, RemoteRef, SecretProvider, SecretValue,
    Validation, VersionInfo,
};

/// One entry of `spec.provider.fake.data`.
#[derive(Debug, Clone)]
pub struct FakeEntry {
    pub key: String,
    pub value: SecretValue,
    pub version: Option<String>,
}

#[derive(Debug, Default)]
pub struct FakeProvider {
    // Keyed like ESO: the key and the version together, so a read needs the exact version.
    entries: BTreeMap<(String, String), SecretValue>,
}

impl FakeProvider {
    pub fn new(entries: impl IntoIterator<Item = FakeEntry>) -> Self {
        let entries = entries
            .into_iter()
            .map(|e| ((e.key, e.version.unwrap_or_default()), e.value))
            .collect();
        Self { entries }
    }

    fn lookup(&self, remote: &RemoteRef) -> Result<&SecretValue, ProviderError> {
        let version = remote.version.clone().unwrap_or_default();
        self.entries
            .get(&(remote.key.clone(), version))
            .ok_or_else(|| {
                ProviderError::not_found(format!("secret {:?} does not exist", remote.key))
            })
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
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(value.expose()).map_err(|_| {
                ProviderError::invalid(format!("secret {:?} is not a JSON object", remote.key))
            })?;
        Ok(object
            .into_iter()
            .map(|(k, v)| {
                // Strings are unquoted; anything else keeps its JSON text, as in ESO.
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
        Err(ProviderError::invalid(
            "the fake provider does not support find yet",
        ))
    }

    async fn put(&self, _remote: &RemoteRef, _value: &SecretValue) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("the fake provider is read-only"))
    }

    async fn delete(&self, _remote: &RemoteRef) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("the fake provider is read-only"))
    }

    async fn validate(&self) -> Result<Validation, ProviderError> {
        Ok(Validation::Ready)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_provider_api::ErrorClass;

    fn provider() -> FakeProvider {
        FakeProvider::new([
            FakeEntry {
                key: "db".into(),
                value: r#"{"user":"app","port":5432}"#.to_string().into(),
                version: None,
            },
            FakeEntry {
                key: "db".into(),
                value: "old".to_string().into(),
                version: Some("v1".into()),
            },
        ])
    }

    #[tokio::test]
    async fn reads_need_the_exact_version() {
        let p = provider();
        let v1 = RemoteRef {
            key: "db".into(),
            version: Some("v1".into()),
            ..Default::default()
        };
        assert_eq!(
            p.get(&v1).await.map(|v| v.value.expose().to_vec()).ok(),
            Some(b"old".to_vec())
        );
        let v2 = RemoteRef {
            key: "db".into(),
            version: Some("v2".into()),
            ..Default::default()
        };
        assert_eq!(
            p.get(&v2).await.err().map(|e| e.class),
            Some(ErrorClass::NotFound)
        );
    }

    #[tokio::test]
    async fn maps_unquote_strings_and_keep_other_json() {
        let p = provider();
        let map = p
            .get_map(&RemoteRef {
                key: "db".into(),
                ..Default::default()
            })
            .await;
        let map = map.map_err(|e| e.to_string());
        let got: Vec<(String, Vec<u8>)> = map
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("port".into(), b"5432".to_vec()),
                ("user".into(), b"app".to_vec())
            ]
        );
    }
}
