//! The JSON ESO's kubernetes provider returns: a Secret's data as one object of strings, or its
//! labels and annotations. Keys are sorted, as Go's encoder sorts map keys, and HTML characters
//! are kept as they are (ESO's `JSONMarshal` turns HTML escaping off).
//!
//! One deliberate difference: Go writes bytes that are not UTF-8 as U+FFFD, silently changing a
//! binary value. Here they are kept as they are, so the text is not valid JSON when a value is
//! binary; lockstep's property and extract steps then refuse that value with a message instead of
//! writing a corrupted copy.
use std::collections::BTreeMap;

/// `{"key":"value",...}` of a Secret's `data`.
pub fn data_object<'a>(data: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let sorted: BTreeMap<&str, &[u8]> = data.into_iter().collect();
    let mut out = Vec::with_capacity(sorted.values().map(|v| v.len() + 8).sum::<usize>() + 2);
    out.push(b'{');
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(&mut out, key.as_bytes());
        out.push(b':');
        string(&mut out, value);
    }
    out.push(b'}');
    out
}

/// `{"annotations":{...},"labels":{...}}`, with `null` for a map the Secret does not have.
pub fn metadata_object(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> Vec<u8> {
    let mut out = b"{\"annotations\":".to_vec();
    map_or_null(&mut out, annotations);
    out.extend_from_slice(b",\"labels\":");
    map_or_null(&mut out, labels);
    out.push(b'}');
    out
}

/// One map of strings, or `null`.
pub fn map_or_null(out: &mut Vec<u8>, map: Option<&BTreeMap<String, String>>) {
    match map {
        None => out.extend_from_slice(b"null"),
        Some(map) => {
            let object = data_object(map.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
            out.extend_from_slice(&object);
        }
    }
}

/// A JSON string as Go's encoder writes it without HTML escaping.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut rest = bytes;
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            // U+2028 and U+2029 are escaped by Go even without HTML escaping.
            0xe2 if tail.starts_with(&[0x80, 0xa8]) || tail.starts_with(&[0x80, 0xa9]) => {
                let last = if tail[1] == 0xa8 { "8" } else { "9" };
                out.extend_from_slice(format!("\\u202{last}").as_bytes());
                rest = &tail[2..];
                continue;
            }
            _ => out.push(b),
        }
        rest = tail;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn data_is_one_sorted_object_of_strings_as_eso_writes_it() {
        let data = [
            ("username", b"admin".as_slice()),
            ("config.json", br#"{"a":"<b>&"}"#.as_slice()),
            ("multi", b"line1\nline2\t\x01\x08\x0c".as_slice()),
            ("sep", "a\u{2028}b\u{2029}c".as_bytes()),
        ];
        assert_eq!(
            text(data_object(data)),
            r#"{"config.json":"{\"a\":\"<b>&\"}","multi":"line1\nline2\t\u0001\b\f","sep":"a\u2028b\u2029c","username":"admin"}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(&data_object(data)).unwrap();
        assert_eq!(parsed["multi"], "line1\nline2\t\u{1}\u{8}\u{c}");
        assert_eq!(text(data_object([])), "{}");
    }

    #[test]
    fn binary_values_are_kept_byte_for_byte_not_replaced() {
        let out = data_object([("bin", [0xff, 0xfe, b'a'].as_slice())]);
        assert_eq!(out, b"{\"bin\":\"\xff\xfea\"}");
    }

    #[test]
    fn metadata_names_annotations_then_labels_and_null_when_absent() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        assert_eq!(
            text(metadata_object(Some(&labels), None)),
            r#"{"annotations":null,"labels":{"app":"web"}}"#
        );
    }
}
