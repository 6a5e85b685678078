//! The Secret data of one ExternalSecret from everything fetched for it, in ESO's order
//! (`GetProviderSecretData`, eso-compatibility.md 2.8), and the Kubernetes size limit.
//!
//! Each `spec.dataFrom[]` entry, in order: its `rewrite` operations, or else key conversion,
//! key validation (empty keys dropped), decoding, the null-byte check, then a merge in
//! which later entries overwrite earlier keys. Then each `spec.data[]` entry: decoding, the
//! null-byte check, and a write that overrides anything from `dataFrom`.
//!
//! The caller fetches, applies `property` and `extract`, and leaves out the entries
//! ESO skips (a missing remote secret under `deletionPolicy: Delete` or `Merge`).

use std::collections::BTreeMap;
use std::fmt;

use lockstep_provider_api::{ErrorClass, SecretValue};

use super::decode::{
    DecodeError, DecodingStrategy, NullBytePolicy, check_null_bytes, check_null_bytes_in_map,
    decode, decode_map,
};
use super::keys::{
    ConversionError, ConversionStrategy, InvalidKeysError, convert_keys, validate_provider_keys,
};
use super::rewrite::{RewriteError, rewrite_map};
use crate::api::external_secret::ExternalSecretRewrite;

/// Kubernetes' limit on a Secret's data: keys plus values (`corev1.MaxSecretSize`).
pub const MAX_SECRET_DATA_BYTES: usize = 1024 * 1024;

/// Which kind of `dataFrom` entry produced a map, for messages (`spec.dataFrom[0].extract`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFromSource {
    Extract,
    Find,
    GeneratorRef,
}

impl fmt::Display for DataFromSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Extract => "extract",
            Self::Find => "find",
            Self::GeneratorRef => "sourceRef.generatorRef",
        })
    }
}

/// What happens to the keys of a `dataFrom` map before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyHandling {
    /// `conversionStrategy` of an extract or find without `rewrite`.
    Convert(ConversionStrategy),
    /// The entry's `rewrite` operations, in order; ESO does not convert rewritten keys.
    Rewrite(Vec<ExternalSecretRewrite>),
    /// Keep the keys: the map came from a generator (ESO converts none).
    AsFetched,
}

/// One fetched `spec.dataFrom[]` entry.
///
/// For a generator ESO neither converts nor decodes nor checks null bytes: use
/// [`KeyHandling::AsFetched`], [`DecodingStrategy::None`] and [`NullBytePolicy::Ignore`].
#[derive(Debug)]
pub struct DataFromResult {
    /// The entry's index in `spec.dataFrom`, for messages.
    pub index: usize,
    pub source: DataFromSource,
    pub data: BTreeMap<String, SecretValue>,
    pub keys: KeyHandling,
    pub decoding: DecodingStrategy,
    pub null_bytes: NullBytePolicy,
}

/// One fetched `spec.data[]` entry. `secret_key` is validated by the CRD schema.
#[derive(Debug)]
pub struct DataResult {
    /// The entry's index in `spec.data`, for messages.
    pub index: usize,
    pub secret_key: String,
    /// `remoteRef.key`, for messages.
    pub remote_key: String,
    pub value: SecretValue,
    pub decoding: DecodingStrategy,
    pub null_bytes: NullBytePolicy,
}

/// What failed inside one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("error applying conversion strategy to keys: {0}")]
    Conversion(#[from] ConversionError),
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    #[error(transparent)]
    InvalidKeys(#[from] InvalidKeysError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Why the Secret data could not be assembled: which entry, and what failed in it. Never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    #[error("error processing spec.dataFrom[{index}].{kind}: {error}")]
    DataFrom {
        index: usize,
        kind: DataFromSource,
        #[source]
        error: EntryError,
    },
    #[error("error processing spec.data[{index}] (key: {remote_key}): {error}")]
    Data {
        index: usize,
        remote_key: String,
        #[source]
        error: EntryError,
    },
}

impl AssembleError {
    /// Always [`ErrorClass::Invalid`]: every failure here needs a change of the stored values or
    /// of the spec; retrying the same data cannot succeed.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// Assembles the Secret data in ESO's order (see the module comment).
pub fn assemble(
    data_from: impl IntoIterator<Item = DataFromResult>,
    data: impl IntoIterator<Item = DataResult>,
) -> Result<BTreeMap<String, SecretValue>, AssembleError> {
    let mut out = BTreeMap::new();
    for entry in data_from {
        let (index, kind) = (entry.index, entry.source);
        let map = prepare_data_from(entry).map_err(|error| AssembleError::DataFrom {
            index,
            kind,
            error,
        })?;
        out.extend(map);
    }
    for entry in data {
        let DataResult {
            index,
            secret_key,
            remote_key,
            value,
            decoding,
            null_bytes,
        } = entry;
        let value = decode(decoding, &secret_key, value)
            .and_then(|value| check_null_bytes(null_bytes, &secret_key, &value).map(|()| value))
            .map_err(|error| AssembleError::Data {
                index,
                remote_key,
                error: error.into(),
            })?;
        out.insert(secret_key, value);
    }
    Ok(out)
}

/// Conversion, validation, decoding and the null-byte check of one `dataFrom` map.
fn prepare_data_from(entry: DataFromResult) -> Result<BTreeMap<String, SecretValue>, EntryError> {
    let map = match entry.keys {
        KeyHandling::Convert(strategy) => convert_keys(strategy, entry.data)?,
        KeyHandling::Rewrite(operations) => rewrite_map(&operations, entry.data)?,
        KeyHandling::AsFetched => entry.data,
    };
    let map = validate_provider_keys(map)?;
    let map = decode_map(entry.decoding, map)?;
    check_null_bytes_in_map(entry.null_bytes, &map)?;
    Ok(map)
}

/// The data is larger than a Secret can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct SizeError {
    /// Bytes of keys plus values.
    pub total: usize,
    /// The limit it exceeds.
    pub limit: usize,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the Secret's data is {} bytes (keys plus values), {} bytes over Kubernetes' limit of \
             {} bytes (1 MiB): select fewer keys or split them across several ExternalSecrets",
            self.total,
            self.total.saturating_sub(self.limit),
            self.limit
        )
    }
}

impl SizeError {
    /// Always [`ErrorClass::Invalid`]: the data must shrink.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// Whether `data` fits in a Secret: the API server refuses one whose keys and values add up to
/// more than 1 MiB, so this says so before a write is attempted.
pub fn fits_in_a_secret(data: &BTreeMap<String, SecretValue>) -> Result<(), SizeError> {
    let total = data.iter().fold(0usize, |sum, (key, value)| {
        sum.saturating_add(key.len()).saturating_add(value.len())
    });
    if total > MAX_SECRET_DATA_BYTES {
        Err(SizeError {
            total,
            limit: MAX_SECRET_DATA_BYTES,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(entries: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(v.to_string())))
            .collect()
    }

    fn readable(map: &BTreeMap<String, SecretValue>) -> Vec<(String, String)> {
        map.iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v.expose()).into_owned()))
            .collect()
    }

    fn pairs(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn data_from(index: usize, entries: &[(&str, &str)]) -> DataFromResult {
        DataFromResult {
            index,
            source: DataFromSource::Extract,
            data: values(entries),
            keys: KeyHandling::Convert(ConversionStrategy::Default),
            decoding: DecodingStrategy::None,
            null_bytes: NullBytePolicy::Ignore,
        }
    }

    fn data(index: usize, secret_key: &str, value: &str) -> DataResult {
        DataResult {
            index,
            secret_key: secret_key.into(),
            remote_key: format!("remote/{secret_key}"),
            value: SecretValue::from(value.to_string()),
            decoding: DecodingStrategy::None,
            null_bytes: NullBytePolicy::Ignore,
        }
    }

    #[test]
    fn later_data_from_entries_overwrite_earlier_ones() {
        let out = assemble(
            [
                data_from(0, &[("user", "first"), ("only-first", "1")]),
                data_from(1, &[("user", "second"), ("only-second", "2")]),
            ],
            [],
        )
        .unwrap();
        assert_eq!(
            readable(&out),
            pairs(&[
                ("only-first", "1"),
                ("only-second", "2"),
                ("user", "second")
            ])
        );
    }

    #[test]
    fn data_overrides_data_from_and_later_data_wins() {
        let out = assemble(
            [data_from(0, &[("user", "from-extract"), ("host", "db")])],
            [
                data(0, "user", "from-data"),
                data(1, "port", "1"),
                data(2, "port", "2"),
            ],
        )
        .unwrap();
        assert_eq!(
            readable(&out),
            pairs(&[("host", "db"), ("port", "2"), ("user", "from-data")])
        );
    }

    #[test]
    fn data_from_keys_are_converted_then_validated_and_empty_keys_dropped() {
        let out = assemble([data_from(0, &[("a/b", "1"), ("", "gone")])], []).unwrap();
        assert_eq!(readable(&out), pairs(&[("a_b", "1")]));
    }

    #[test]
    fn rewritten_keys_are_validated_but_not_converted() {
        let mut entry = data_from(3, &[("a/b", "1")]);
        entry.keys = KeyHandling::AsFetched;
        let error = assemble([entry], []).unwrap_err();
        assert!(matches!(
            &error,
            AssembleError::DataFrom {
                index: 3,
                kind: DataFromSource::Extract,
                error: EntryError::InvalidKeys(_)
            }
        ));
        let message = error.to_string();
        assert!(
            message.starts_with("error processing spec.dataFrom[3].extract: invalid secret keys"),
            "{message}"
        );
        assert!(
            message.contains("use rewrite or conversionStrategy to change keys"),
            "{message}"
        );
    }

    #[test]
    fn conversion_collisions_name_the_entry() {
        let mut entry = data_from(1, &[("a b", "1"), ("a_b", "2")]);
        entry.source = DataFromSource::Find;
        let message = assemble([entry], []).unwrap_err().to_string();
        assert!(
            message.starts_with("error processing spec.dataFrom[1].find: error applying conversion strategy to keys: secret name collision during conversion"),
            "{message}"
        );
    }

    #[test]
    fn data_from_values_are_decoded_after_key_conversion() {
        let mut entry = data_from(0, &[("a/b", "YmFy")]);
        entry.decoding = DecodingStrategy::Base64;
        let out = assemble([entry], []).unwrap();
        assert_eq!(readable(&out), pairs(&[("a_b", "bar")]));
    }

    #[test]
    fn data_values_are_decoded_and_checked() {
        let mut entry = data(0, "cert", "AGE=");
        entry.decoding = DecodingStrategy::Base64;
        let out = assemble([], [entry]).unwrap();
        assert_eq!(out["cert"].expose(), &[0, b'a']);

        let mut entry = data(4, "cert", "AGE=");
        entry.decoding = DecodingStrategy::Base64;
        entry.null_bytes = NullBytePolicy::Fail;
        let error = assemble([], [entry]).unwrap_err();
        assert_eq!(
            error,
            AssembleError::Data {
                index: 4,
                remote_key: "remote/cert".into(),
                error: EntryError::Decode(DecodeError::NullBytes { key: "cert".into() })
            }
        );
        assert!(error.to_string().starts_with("error processing spec.data[4] (key: remote/cert): fetched secret value for key \"cert\" contains null bytes"));
    }

    #[test]
    fn a_bad_entry_fails_the_whole_assembly() {
        let mut bad = data(1, "x", "not base64!");
        bad.decoding = DecodingStrategy::Base64;
        assert!(assemble([data_from(0, &[("a", "1")])], [data(0, "b", "2"), bad]).is_err());
    }

    #[test]
    fn nothing_fetched_is_empty_data() {
        assert!(assemble([], []).unwrap().is_empty());
    }

    #[test]
    fn size_limit_is_inclusive_and_counts_keys_and_values() {
        let exactly = [(
            "k".to_string(),
            SecretValue::new(vec![b'x'; MAX_SECRET_DATA_BYTES - 1]),
        )]
        .into_iter()
        .collect();
        assert_eq!(fits_in_a_secret(&exactly), Ok(()));

        let over: BTreeMap<String, SecretValue> = [
            (
                "k".to_string(),
                SecretValue::new(vec![b'x'; MAX_SECRET_DATA_BYTES - 1]),
            ),
            ("k2".to_string(), SecretValue::new(vec![b'y'; 8])),
        ]
        .into_iter()
        .collect();
        let error = fits_in_a_secret(&over).unwrap_err();
        assert_eq!(
            error,
            SizeError {
                total: MAX_SECRET_DATA_BYTES + 10,
                limit: MAX_SECRET_DATA_BYTES
            }
        );
        assert_eq!(
            error.to_string(),
            "the Secret's data is 1048586 bytes (keys plus values), 10 bytes over Kubernetes' \
             limit of 1048576 bytes (1 MiB): select fewer keys or split them across several \
             ExternalSecrets"
        );
    }
}
