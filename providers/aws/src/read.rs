//! Reading one secret, as ESO's `GetSecret` does (eso-compatibility.md 4.1): its value at a
//! version, or with `metadataPolicy: Fetch` its tags.
//!
//! Value or binary (eso-compatibility.md 13.8): lockstep returns `SecretString` when the version
//! has one and `SecretBinary` otherwise, with or without a `property` (the controller applies
//! the property to these bytes). ESO reads `SecretBinary` first when a property is set. The two
//! rules only differ for a version that holds both, which Secrets Manager refuses to create
//! (CreateSecret and PutSecretValue take one or the other), so against AWS they always agree.
use aws_sdk_secretsmanager::Client;
use lockstep_provider_api::{
    ErrorClass, Fetched, ProviderError, SecretValue, VersionInfo, go_json,
};

use crate::errors::{Call, call_error};

/// The `version` prefix that selects a VersionId instead of a staging label (ESO's convention).
const VERSION_ID_PREFIX: &str = "uuid/";
/// The staging label of the current version, read when no version is given.
pub(crate) const CURRENT: &str = "AWSCURRENT";

/// Which version of a secret `remoteRef.version` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version<'a> {
    Stage(&'a str),
    Id(&'a str),
}

impl Version<'_> {
    /// Unset or empty: `AWSCURRENT`; `uuid/<id>`: that VersionId; anything else: a staging label
    /// (`AWSPREVIOUS`, `AWSPENDING`, or a label of the user's own).
    pub(crate) fn of(version: Option<&str>) -> Result<Version<'_>, ProviderError> {
        match version {
            None | Some("") => Ok(Version::Stage(CURRENT)),
            Some(v) => match v.strip_prefix(VERSION_ID_PREFIX) {
                Some("") => Err(ProviderError::invalid(format!(
                    "remoteRef.version {v:?} names no VersionId: write uuid/<VersionId>, or a \
                     staging label such as AWSPREVIOUS"
                ))),
                Some(id) => Ok(Version::Id(id)),
                None => Ok(Version::Stage(v)),
            },
        }
    }

    /// How messages name the secret at this version.
    fn describe(self, id: &str) -> String {
        match self {
            Version::Stage(CURRENT) => format!("secret {id:?}"),
            Version::Stage(stage) => format!("secret {id:?} at version stage {stage}"),
            Version::Id(version_id) => format!("secret {id:?} at VersionId {version_id}"),
        }
    }
}

/// The value of secret `id` at `version`.
pub(crate) async fn value(
    client: &Client,
    id: &str,
    version: Option<&str>,
) -> Result<Fetched, ProviderError> {
    let version = Version::of(version)?;
    let request = client.get_secret_value().secret_id(id);
    let request = match version {
        Version::Stage(stage) => request.version_stage(stage),
        Version::Id(version_id) => request.version_id(version_id),
    };
    let out = request.send().await.map_err(|e| {
        let mut err = call_error(Call::GetSecretValue, &version.describe(id), e);
        if err.class == ErrorClass::NotFound && version != Version::Stage(CURRENT) {
            err.message.push_str("; check remoteRef.version");
        }
        err
    })?;
    let read = VersionInfo {
        id: out.version_id,
        stages: out.version_stages.unwrap_or_default(),
    };
    let value = match (out.secret_string, out.secret_binary) {
        (Some(text), _) => SecretValue::from(text),
        (None, Some(binary)) => SecretValue::new(binary.into_inner()),
        (None, None) => {
            return Err(ProviderError::invalid(format!(
                "{} holds neither SecretString nor SecretBinary: put a value into it \
                 (PutSecretValue)",
                version.describe(id)
            )));
        }
    };
    Ok(Fetched {
        value,
        version: read,
    })
}

/// The tags of secret `id` as ESO returns them for `metadataPolicy: Fetch`: a JSON object of tag
/// keys to values, which `property` then selects from. DescribeSecret has no version, so
/// `version` is ignored, as in ESO.
pub(crate) async fn tags(client: &Client, id: &str) -> Result<Fetched, ProviderError> {
    let out = client
        .describe_secret()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| call_error(Call::DescribeSecret, &format!("secret {id:?}"), e))?;
    let tags = out
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())));
    Ok(Fetched::unversioned(SecretValue::from(tags_json(tags))))
}

/// The JSON text Go's `json.Marshal` writes for a `map[string]string`, byte for byte: keys
/// sorted, a later duplicate key winning, and Go's escaping (HTML characters and the line
/// separators U+2028/U+2029 escaped as `\u....`), so the Secret and its data hash match ESO's.
pub(crate) fn tags_json<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let sorted: std::collections::BTreeMap<&str, &str> = tags.into_iter().collect();
    let mut out = String::from("{");
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_json::write_string(&mut out, key, true);
        out.push(':');
        go_json::write_string(&mut out, value, true);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_select_as_in_eso() {
        assert_eq!(Version::of(None).unwrap(), Version::Stage("AWSCURRENT"));
        assert_eq!(Version::of(Some("")).unwrap(), Version::Stage("AWSCURRENT"));
        assert_eq!(
            Version::of(Some("AWSPREVIOUS")).unwrap(),
            Version::Stage("AWSPREVIOUS")
        );
        assert_eq!(
            Version::of(Some("uuid/0f7a-11")).unwrap(),
            Version::Id("0f7a-11")
        );
        // Only the exact prefix selects a VersionId.
        assert_eq!(
            Version::of(Some("UUID/abc")).unwrap(),
            Version::Stage("UUID/abc")
        );
        assert!(Version::of(Some("uuid/")).is_err());
    }

    #[test]
    fn messages_name_the_version() {
        assert_eq!(Version::Stage(CURRENT).describe("a"), "secret \"a\"");
        assert_eq!(
            Version::Stage("AWSPREVIOUS").describe("a"),
            "secret \"a\" at version stage AWSPREVIOUS"
        );
        assert_eq!(
            Version::Id("v1").describe("a"),
            "secret \"a\" at VersionId v1"
        );
    }

    #[test]
    fn tags_are_a_sorted_json_object_as_go_writes_it() {
        assert_eq!(tags_json([]), "{}");
        assert_eq!(
            tags_json([("team", "payments"), ("env", "prod"), ("env", "staging")]),
            r#"{"env":"staging","team":"payments"}"#
        );
        assert_eq!(
            tags_json([("a<b>&", "x\"y\\z\n\u{1}\u{2028}é")]),
            r#"{"a\u003cb\u003e\u0026":"x\"y\\z\n\u0001\u2028é"}"#
        );
        // serde_json reads it back to the same map.
        let parsed: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&tags_json([("k:1", "v/2"), ("k 2", "")])).unwrap();
        assert_eq!(parsed["k:1"], "v/2");
        assert_eq!(parsed["k 2"], "");
    }
}
