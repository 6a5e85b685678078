//! ESO's hashes, bit-exact, so that Secrets and statuses written by ESO are recognised after
//! cut-over instead of being rewritten once each (eso-compatibility.md sections 0.2-0.5 and 13.2).
//!
//! ESO hashes Go's `fmt.Sprintf("%+v", x)` text with SHA3-224 and prints it as lower-case hex
//! (`runtime/esutils/utils.go:ObjectHash`). The functions here produce the same text for the
//! shapes ESO hashes and feed it to the same digest.

use std::collections::BTreeMap;

use lockstep_provider_api::SecretValue;
use sha3::{Digest, Sha3_224};

/// The field-manager prefix ESO writes Secrets with (`fieldOwnerTemplate`).
const FIELD_MANAGER_PREFIX: &str = "externalsecrets.external-secrets.io/";
/// The field-manager prefix ESO uses when the plain name would be too long (`fieldOwnerTemplateSha`).
const FIELD_MANAGER_SHA_PREFIX: &str = "externalsecrets.external-secrets.io/sha3/";
/// ESO's length limit for a field-manager name. It is not Kubernetes' limit (managers may be
/// 128 characters); it is what ESO checks, so matching it is what finds ESO's managed fields.
const FIELD_MANAGER_MAX_LEN: usize = 63;

/// Lower-case hex SHA3-224 of `bytes`: ESO's `ObjectHash` of a Go string, whose `%+v` text is the
/// string itself.
pub fn sha3_224_hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(&Sha3_224::digest(bytes))
}

/// The `reconcile.external-secrets.io/data-hash` annotation for Secret data held as plain bytes.
pub fn data_hash<V: AsRef<[u8]>>(data: &BTreeMap<String, V>) -> String {
    hash_sorted_entries(data.iter().map(|(k, v)| (k.as_str(), v.as_ref())))
}

/// The `reconcile.external-secrets.io/data-hash` annotation for the data lockstep assembled.
pub fn secret_data_hash(data: &BTreeMap<String, SecretValue>) -> String {
    hash_sorted_entries(data.iter().map(|(k, v)| (k.as_str(), v.expose())))
}

/// The data hash of entries in any order, for data held in other shapes (for example a Secret's
/// `BTreeMap<String, ByteString>` read back from the API server).
///
/// Entries are sorted by key as Go's `fmt` sorts map keys (byte-wise). A key given twice is
/// hashed twice, which no Go map can produce: pass each key once.
pub fn data_hash_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = entries.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    hash_sorted_entries(sorted)
}

/// Hashes `map[k1:[b b b] k2:[...]]`, the `%+v` text of a Go `map[string][]byte`.
///
/// The text is streamed into the digest rather than built as a string, because it spells out
/// every secret byte and would otherwise linger in freed memory.
fn hash_sorted_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut hasher = Sha3_224::new();
    hasher.update(b"map[");
    for (index, (key, value)) in entries.into_iter().enumerate() {
        if index > 0 {
            hasher.update(b" ");
        }
        hasher.update(key.as_bytes());
        hasher.update(b":[");
        for (byte_index, byte) in value.iter().enumerate() {
            if byte_index > 0 {
                hasher.update(b" ");
            }
            let mut digits = [0u8; 3];
            hasher.update(decimal(*byte, &mut digits));
        }
        hasher.update(b"]");
    }
    hasher.update(b"]");
    base16ct::lower::encode_string(&hasher.finalize())
}

/// Writes `byte` in decimal without leading zeros, as Go's `%v` prints a `byte`.
fn decimal(byte: u8, buf: &mut [u8; 3]) -> &[u8] {
    let (hundreds, tens, ones) = (byte / 100, byte / 10 % 10, byte % 10);
    buf[0] = b'0' + hundreds;
    buf[1] = b'0' + tens;
    buf[2] = b'0' + ones;
    let start = if hundreds > 0 {
        0
    } else if tens > 0 {
        1
    } else {
        2
    };
    &buf[start..]
}

/// The `reconcile.external-secrets.io/created-by` label: the hash of `"<namespace>/<name>"`
/// (ESO: `ObjectHash(fmt.Sprintf("%v/%v", es.Namespace, es.Name))`).
pub fn created_by_label(namespace: &str, name: &str) -> String {
    sha3_224_hex(format!("{namespace}/{name}").as_bytes())
}

/// `status.syncedResourceVersion`: `"<generation>-<hash of labels and annotations>"`, so that any
/// label or annotation change on the ExternalSecret forces a refresh, as ESO does.
///
/// ESO (`pkg/controllers/util/util.go`) hashes `%+v` of a local
/// `struct { annotations map[string]string; labels map[string]string }`, which Go prints as
/// `{annotations:map[k:v ...] labels:map[k:v ...]}`: fields in declaration order (annotations
/// first), keys sorted, strings unquoted, and a nil map printed like an empty one (`map[]`). So
/// `None` and an empty map give the same result here. An unset generation is Go's zero value, 0.
pub fn synced_resource_version(
    generation: Option<i64>,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> String {
    let mut text = String::from("{annotations:");
    push_go_string_map(&mut text, annotations);
    text.push_str(" labels:");
    push_go_string_map(&mut text, labels);
    text.push('}');
    format!(
        "{}-{}",
        generation.unwrap_or(0),
        sha3_224_hex(text.as_bytes())
    )
}

/// Appends Go's `%v` text of a `map[string]string`: `map[k1:v1 k2:v2]`, keys sorted byte-wise
/// (a `BTreeMap` already is).
fn push_go_string_map(out: &mut String, map: Option<&BTreeMap<String, String>>) {
    out.push_str("map[");
    for (index, (key, value)) in map.into_iter().flatten().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push(':');
        out.push_str(value);
    }
    out.push(']');
}

/// The field manager ESO's ExternalSecret controller writes with (`fqdnFor`):
/// `externalsecrets.external-secrets.io/<name>`, or `.../sha3/<hex sha3-224(name)>` when that
/// string is longer than 63 bytes (ES names longer than 27 bytes).
pub fn field_manager(es_name: &str) -> String {
    let plain = format!("{FIELD_MANAGER_PREFIX}{es_name}");
    if plain.len() > FIELD_MANAGER_MAX_LEN {
        hashed_field_manager(es_name)
    } else {
        plain
    }
}

/// The field manager ESO's template code looks for when pruning labels and annotations it wrote
/// (`templating/parser.go:getManagedFieldKeys`). ESO switches to the hashed name only when the ES
/// *name* is longer than 63 bytes, so for names of 28 to 63 bytes this differs from
/// [`field_manager`] (an upstream mismatch, eso-compatibility.md 13.3); lockstep needs both to
/// find what ESO wrote.
pub fn template_field_manager(es_name: &str) -> String {
    if es_name.len() > FIELD_MANAGER_MAX_LEN {
        hashed_field_manager(es_name)
    } else {
        format!("{FIELD_MANAGER_PREFIX}{es_name}")
    }
}

fn hashed_field_manager(es_name: &str) -> String {
    format!(
        "{FIELD_MANAGER_SHA_PREFIX}{}",
        sha3_224_hex(es_name.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_map(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    fn string_map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sha3_224_of_empty_input_is_the_published_value() {
        assert_eq!(
            sha3_224_hex(b""),
            "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"
        );
    }

    #[test]
    fn object_hash_of_go_strings_matches_eso_tests() {
        // runtime/esutils/utils_test.go TestObjectHash: a string hashes as itself, and a nil
        // interface prints as `<nil>`.
        assert_eq!(
            sha3_224_hex(b"hello there"),
            "f78681ec611ebaeea0689bff6c7812a83ff98a7faba986d9af76c999"
        );
        assert_eq!(
            sha3_224_hex(b"<nil>"),
            "c461202a18e99215f121936fb2452e03843828e448a00a53f285a6fc"
        );
    }

    #[test]
    fn data_hash_matches_eso_test_vector() {
        // runtime/esutils/utils_test.go TestObjectHash "map also works": the text is
        // `map[bar:[118 97 108 117 101 50] foo:[118 97 108 117 101 49]]`.
        let data = bytes_map(&[("foo", b"value1"), ("bar", b"value2")]);
        assert_eq!(
            data_hash(&data),
            "1bed8bcbcb4547ffe19a19cd47d9078e84aa6598266d86b99f992d64"
        );
        assert_eq!(
            data_hash(&data),
            sha3_224_hex(b"map[bar:[118 97 108 117 101 50] foo:[118 97 108 117 101 49]]")
        );
    }

    #[test]
    fn data_hash_of_empty_map_is_hash_of_map_brackets() {
        // Go prints both a nil and an empty map[string][]byte as `map[]`.
        let empty: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        assert_eq!(data_hash(&empty), sha3_224_hex(b"map[]"));
        assert_eq!(
            data_hash(&empty),
            "74a974446e359fb3e6baff9bd0058950e6edd0f040888d9989b0a11b"
        );
    }

    #[test]
    fn data_hash_prints_empty_values_keys_with_spaces_and_all_byte_widths_as_go_does() {
        // Go: fmt.Sprintf("%+v", map[string][]byte{"k": {}, "a b": {0, 255, 10}, "Z": nil})
        // == `map[Z:[] a b:[0 255 10] k:[]]` (uppercase sorts before lowercase, byte-wise).
        let data = bytes_map(&[("k", b""), ("a b", &[0, 255, 10]), ("Z", b"")]);
        assert_eq!(
            data_hash(&data),
            sha3_224_hex(b"map[Z:[] a b:[0 255 10] k:[]]")
        );
        assert_eq!(
            data_hash(&data),
            "d262c74306ceca0b781c695b738a7130b376895dd4bfbc295780e9cf"
        );
    }

    #[test]
    fn the_three_data_hash_entry_points_agree() {
        let plain = bytes_map(&[("foo", b"value1"), ("bar", b"value2")]);
        let secret: BTreeMap<String, SecretValue> = plain
            .iter()
            .map(|(k, v)| (k.clone(), SecretValue::new(v.clone())))
            .collect();
        // Deliberately unsorted: data_hash_entries sorts.
        let entries: Vec<(&str, &[u8])> = vec![("foo", b"value1"), ("bar", b"value2")];
        assert_eq!(secret_data_hash(&secret), data_hash(&plain));
        assert_eq!(data_hash_entries(entries), data_hash(&plain));
    }

    #[test]
    fn decimal_prints_bytes_without_leading_zeros() {
        let mut buf = [0u8; 3];
        for byte in 0..=255u8 {
            assert_eq!(decimal(byte, &mut buf), byte.to_string().as_bytes());
        }
    }

    #[test]
    fn created_by_label_hashes_namespace_slash_name() {
        // Go: ObjectHash(fmt.Sprintf("%v/%v", "default", "my-es")).
        assert_eq!(
            created_by_label("default", "my-es"),
            "b8464376b5fe3535e690594280bfe59b60be2603cb6cbb6d6c8bcbb4"
        );
        assert_eq!(
            created_by_label("default", "my-es"),
            sha3_224_hex(b"default/my-es")
        );
    }

    // Derivation of the syncedResourceVersion vectors. HashMeta builds
    //   type meta struct { annotations map[string]string; labels map[string]string }
    // and ObjectHash formats it with "%+v". For a struct, %+v prints `{` then each field as
    // `name:value` separated by one space, then `}`; fmt reads unexported fields through
    // reflection, so their values do print. A map[string]string prints as `map[` + `k:v` pairs
    // sorted by key and separated by spaces + `]`, strings unquoted; a nil map prints as `map[]`.
    // So no labels and no annotations give `{annotations:map[] labels:map[]}`, and
    // labels {app: web, team: a} give `{annotations:map[] labels:map[app:web team:a]}`. The hex
    // values below were confirmed by running that Go code (Go 1.26, crypto/sha3).
    #[test]
    fn synced_resource_version_with_no_metadata() {
        let expected = "f47fe3c0b255b6dd8047cdffa772587bb829efe7a1cb70febeda2eb2";
        assert_eq!(sha3_224_hex(b"{annotations:map[] labels:map[]}"), expected);
        assert_eq!(
            synced_resource_version(Some(1), None, None),
            format!("1-{expected}")
        );
        // nil and empty maps print alike in Go.
        let empty = BTreeMap::new();
        assert_eq!(
            synced_resource_version(Some(1), Some(&empty), Some(&empty)),
            format!("1-{expected}")
        );
        // An unset generation is Go's zero value.
        assert_eq!(
            synced_resource_version(None, None, None),
            format!("0-{expected}")
        );
    }

    #[test]
    fn synced_resource_version_with_labels_only() {
        let labels = string_map(&[("team", "a"), ("app", "web")]);
        assert_eq!(
            synced_resource_version(Some(3), Some(&labels), None),
            "3-808dfa2ed48065e4f2ae18473d66575d5d8659030a4c8eaa2bab31e3"
        );
    }

    #[test]
    fn synced_resource_version_puts_annotations_before_labels() {
        // `{annotations:map[a: force-sync:1700000000] labels:map[app:web]}`: an empty value
        // leaves nothing after the colon.
        let labels = string_map(&[("app", "web")]);
        let annotations = string_map(&[("force-sync", "1700000000"), ("a", "")]);
        assert_eq!(
            synced_resource_version(Some(12), Some(&labels), Some(&annotations)),
            "12-5887c50c207309ded5f7aa857153c3c9d49b2aceb3dc969cf42a55f2"
        );
        // Swapping labels and annotations must change the hash: the field names are hashed.
        assert_ne!(
            synced_resource_version(Some(12), Some(&annotations), Some(&labels)),
            synced_resource_version(Some(12), Some(&labels), Some(&annotations))
        );
    }

    #[test]
    fn field_manager_is_plain_up_to_63_characters() {
        assert_eq!(
            field_manager("my-es"),
            "externalsecrets.external-secrets.io/my-es"
        );
        let longest_plain = "a".repeat(27);
        assert_eq!(
            field_manager(&longest_plain),
            format!("externalsecrets.external-secrets.io/{longest_plain}")
        );
        assert_eq!(field_manager(&longest_plain).len(), 63);
    }

    #[test]
    fn field_manager_hashes_the_name_beyond_63_characters() {
        // Go: fmt.Sprintf("externalsecrets.external-secrets.io/sha3/%x", sha3.Sum224(name)).
        assert_eq!(
            field_manager(&"a".repeat(28)),
            "externalsecrets.external-secrets.io/sha3/52a6f48b37cd3535ef771a530c08d9cc4b78350ccdd33f2405e22ebb"
        );
    }

    #[test]
    fn template_field_manager_switches_on_the_name_length_only() {
        let name = "a".repeat(28);
        assert_eq!(
            template_field_manager(&name),
            format!("externalsecrets.external-secrets.io/{name}")
        );
        assert_ne!(template_field_manager(&name), field_manager(&name));
        let long = "b".repeat(64);
        assert_eq!(template_field_manager(&long), field_manager(&long));
        assert_eq!(template_field_manager("my-es"), field_manager("my-es"));
    }
}
