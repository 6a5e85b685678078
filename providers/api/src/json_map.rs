//! A value holding a JSON object, split into one value per member (the provider side of
//! `dataFrom.extract`, ESO's `GetSecretMap`).
use std::collections::BTreeMap;

use crate::{ProviderError, SecretValue};

/// The members of the JSON object in `value`: strings unquoted, `null` empty (Go's
/// `json.Unmarshal` into a string leaves it empty), anything else as its JSON text. `subject`
/// names the secret in the error, which never quotes the value.
pub fn json_object(
    subject: &str,
    value: &SecretValue,
) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(value.expose())
        .map_err(|_| {
            ProviderError::invalid(format!(
                "{subject} is not a JSON object, so it cannot be split into keys: store it as a \
                 JSON object, or read it whole with spec.data"
            ))
        })?;
    Ok(object
        .into_iter()
        .map(|(k, v)| {
            let bytes = match v {
                serde_json::Value::String(s) => s.into_bytes(),
                serde_json::Value::Null => Vec::new(),
                other => other.to_string().into_bytes(),
            };
            (k, SecretValue::new(bytes))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_become_values_and_errors_quote_nothing() {
        let value = SecretValue::from(r#"{"user":"app","port":5432,"none":null}"#.to_string());
        let map = json_object("parameter \"/db\"", &value).unwrap();
        assert_eq!(map["user"].expose(), b"app");
        assert_eq!(map["port"].expose(), b"5432");
        assert_eq!(map["none"].expose(), b"");
        let err = json_object(
            "parameter \"/db\"",
            &SecretValue::from("hunter2".to_string()),
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("parameter \"/db\" is not a JSON object")
        );
        assert!(!err.message.contains("hunter2"));
    }
}
