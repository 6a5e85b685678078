//! No error of this module may carry a secret value: they end up in status conditions, events
//! and logs. Each failure path is driven with a value holding a marker, and the marker is looked
//! for in `Display` and `Debug` of the error and of every error in its source chain.

use std::collections::BTreeMap;
use std::error::Error;

use lockstep_provider_api::SecretValue;

use super::assemble::{
    DataFromResult, DataFromSource, DataResult, KeyHandling, assemble, fits_in_a_secret,
};
use super::decode::{DecodingStrategy, NullBytePolicy, check_null_bytes, decode};
use super::extract::extract_map;
use super::keys::ConversionStrategy;
use super::property::select_property;

const MARKER: &str = "s3cr3t-MARKER-hunter2";

fn assert_clean(error: &(dyn Error + 'static)) {
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(error) = current {
        let shown = format!("{error} | {error:?}");
        assert!(!shown.contains(MARKER), "an error shows the value: {shown}");
        assert!(
            !shown.contains("hunter2"),
            "an error shows part of the value: {shown}"
        );
        current = error.source();
    }
}

fn value(text: &str) -> SecretValue {
    SecretValue::from(text.to_owned())
}

#[test]
fn property_errors() {
    let json = format!(r#"{{"password":"{MARKER}"}}"#);
    for (payload, property) in [
        (json.as_str(), "missing"),
        (json.as_str(), "password.inner"),
        (MARKER, "password"),
        (&format!("{{\"a\":\"{MARKER}"), "b"),
    ] {
        let error = select_property("db", &value(payload), property).unwrap_err();
        assert_clean(&error);
    }
    let mut bytes = format!(r#"{{"p":"{MARKER}"#).into_bytes();
    bytes.push(0xff);
    bytes.extend_from_slice(b"\"}");
    let error = select_property("db", &SecretValue::new(bytes), "p").unwrap_err();
    assert_clean(&error);
}

#[test]
fn extract_errors() {
    for payload in [
        MARKER.to_owned(),
        format!(r#""{MARKER}""#),
        format!(r#"["{MARKER}"]"#),
        format!(r#"{{"a":"{MARKER}""#),
        format!(r#"{{"a":"{MARKER}\ud800"}}"#),
    ] {
        let error = extract_map("db", &value(&payload)).unwrap_err();
        assert_clean(&error);
    }
    let mut bytes = MARKER.as_bytes().to_vec();
    bytes.push(0xff);
    let error = extract_map("db", &SecretValue::new(bytes)).unwrap_err();
    assert_clean(&error);
}

#[test]
fn decode_errors() {
    for strategy in [DecodingStrategy::Base64, DecodingStrategy::Base64Url] {
        let error = decode(strategy, "k", value(MARKER)).unwrap_err();
        assert_clean(&error);
    }
    let mut with_nul = MARKER.as_bytes().to_vec();
    with_nul.push(0);
    let error =
        check_null_bytes(NullBytePolicy::Fail, "k", &SecretValue::new(with_nul)).unwrap_err();
    assert_clean(&error);
}

#[test]
fn assemble_and_size_errors() {
    let entry = |keys, decoding, null_bytes| DataFromResult {
        index: 0,
        source: DataFromSource::Find,
        data: [
            ("a b".to_owned(), value(MARKER)),
            ("a_b".to_owned(), value(MARKER)),
        ]
        .into_iter()
        .collect(),
        keys,
        decoding,
        null_bytes,
    };
    let failures = [
        entry(
            KeyHandling::Convert(ConversionStrategy::Default),
            DecodingStrategy::None,
            NullBytePolicy::Ignore,
        ),
        entry(
            KeyHandling::AsFetched,
            DecodingStrategy::None,
            NullBytePolicy::Ignore,
        ),
        entry(
            KeyHandling::Convert(ConversionStrategy::Unicode),
            DecodingStrategy::Base64,
            NullBytePolicy::Ignore,
        ),
    ];
    for failure in failures {
        let error = assemble([failure], []).unwrap_err();
        assert_clean(&error);
    }

    let data = DataResult {
        index: 0,
        secret_key: "k".into(),
        remote_key: "db".into(),
        value: value(MARKER),
        decoding: DecodingStrategy::Base64,
        null_bytes: NullBytePolicy::Fail,
    };
    let error = assemble([], [data]).unwrap_err();
    assert_clean(&error);

    let big: BTreeMap<String, SecretValue> = [(
        "k".to_owned(),
        SecretValue::new(MARKER.repeat(60_000).into_bytes()),
    )]
    .into_iter()
    .collect();
    let error = fits_in_a_secret(&big).unwrap_err();
    assert_clean(&error);
}

#[test]
fn rewrite_errors() {
    use crate::api::external_secret::{
        ExternalSecretRewrite, MergeStrategy, RewriteMerge, RewriteTransform,
    };
    let merge = |strategy| ExternalSecretRewrite {
        merge: Some(RewriteMerge {
            strategy,
            ..Default::default()
        }),
        ..Default::default()
    };
    let transform = ExternalSecretRewrite {
        transform: Some(RewriteTransform {
            template: "{{ .missing }}".into(),
        }),
        ..Default::default()
    };
    for (operation, payload) in [
        (merge(MergeStrategy::Extract), MARKER.to_owned()),
        (merge(MergeStrategy::Extract), format!(r#"["{MARKER}"]"#)),
        (
            merge(MergeStrategy::Extract),
            format!(r#"{{"a":"{MARKER}""#),
        ),
        (merge(MergeStrategy::Json), format!(r#"{{"a":"{MARKER}"}}"#)),
        (transform.clone(), MARKER.to_owned()),
    ] {
        let map: BTreeMap<String, SecretValue> = [
            ("k".to_owned(), value(&payload)),
            ("j".to_owned(), value(&format!(r#"{{"a":"{MARKER}"}}"#))),
        ]
        .into_iter()
        .collect();
        let error = super::rewrite::rewrite_map(&[operation], map).unwrap_err();
        assert_clean(&error);
    }
}

#[test]
fn template_errors() {
    use super::secret_template::{TemplateSources, apply_template};
    use crate::api::template::{ExternalSecretTemplate, TemplateFrom, TemplateMetadata};
    let data: BTreeMap<String, SecretValue> =
        [("p".to_owned(), value(MARKER))].into_iter().collect();
    let literal = |text: &str, decoding| ExternalSecretTemplate {
        template_from: vec![TemplateFrom {
            literal: Some(text.into()),
            values_decoding_strategy: decoding,
            ..Default::default()
        }],
        ..Default::default()
    };
    let labelled = |label: &str| ExternalSecretTemplate {
        metadata: Some(TemplateMetadata {
            labels: [(label.to_owned(), "{{ .p }} !".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    for template in [
        literal("{{ .p }}", None),
        literal("{{ .p }}: [", None),
        literal("k: {{ .p }}", Some(DecodingStrategy::Base64)),
        literal("{{ .p }}/x: v", None),
        ExternalSecretTemplate {
            template_from: vec![TemplateFrom {
                literal: Some("{{ .p }}/x: v".into()),
                target: "Labels".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
        labelled("app"),
        ExternalSecretTemplate {
            data: [("k".to_owned(), "{{ .nope }}".to_owned())]
                .into_iter()
                .collect(),
            ..Default::default()
        },
    ] {
        let error =
            apply_template(&template, data.clone(), &TemplateSources::default()).unwrap_err();
        assert_clean(&error);
    }
}
