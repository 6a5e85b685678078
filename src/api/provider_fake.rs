//! `spec.provider.fake`: a store that serves the values written in its own spec; for tests and
//! demos.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Static values.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProvider {
    pub data: Vec<FakeProviderData>,

    /// Forces the result of store validation: 0 ready, 1 unknown, 2 error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2))]
    pub validation_result: Option<u8>,
}

/// One value. The value is test data in the store's own spec, so it is not redacted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FakeProviderData {
    #[schemars(length(min = 1))]
    pub key: String,

    #[schemars(length(min = 1))]
    pub value: String,

    /// Only a `remoteRef.version` equal to this reads the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
