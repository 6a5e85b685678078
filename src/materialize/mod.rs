//! Pure functions that turn remote data into Secret data, bit-compatible with the External
//! Secrets Operator (ESO) where ESO's output is observable: the data hash, the `created-by` label,
//! `syncedResourceVersion`, field-manager names, `property` paths, decoding and key conversion.
//!
//! Nothing here does I/O or knows Kubernetes objects; values travel as [`SecretValue`] and no error
//! carries one. The pipeline of one `spec.dataFrom[]` entry is: fetch (elsewhere) -> [`property`]
//! -> [`extract`] -> [`rewrite`] or [`keys::convert_keys`] -> [`keys::validate_provider_keys`]
//! -> [`decode::decode_map`] -> [`decode::check_null_bytes`]; [`assemble()`] runs that order over all
//! entries and `spec.data[]`. [`secret_template`] then turns the assembled data into the Secret's
//! data, type, labels and annotations.
//!
//! [`SecretValue`]: lockstep_provider_api::SecretValue

pub mod assemble;
pub mod decode;
pub mod extract;
pub mod hash;
pub mod keys;
pub mod property;
pub mod rewrite;
pub mod secret_template;

#[cfg(test)]
mod no_value_in_errors;

pub use assemble::{
    AssembleError, DataFromResult, DataFromSource, DataResult, EntryError, KeyHandling,
    MAX_SECRET_DATA_BYTES, SizeError, assemble, fits_in_a_secret,
};
pub use decode::{
    DecodeError, DecodingStrategy, NullBytePolicy, check_null_bytes, check_null_bytes_in_map,
    decode, decode_map,
};
pub use extract::{ExtractError, extract_map};
pub use hash::{
    created_by_label, data_hash, data_hash_entries, field_manager, secret_data_hash, sha3_224_hex,
    synced_resource_version, template_field_manager,
};
pub use keys::{
    ConversionError, ConversionStrategy, InvalidKeysError, convert_key, convert_keys,
    validate_provider_keys, validate_secret_keys,
};
pub use property::{PropertyError, select_property};
pub use rewrite::{RewriteError, RewriteFailure, rewrite_map};
pub use secret_template::{
    FORBIDDEN_TYPES, Rendered, TemplateApplyError, TemplateSources, apply_template,
    is_forbidden_type, without_template,
};
