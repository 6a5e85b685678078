//! `spec.target.template`: the Secret a template describes, from the fetched data and the
//! templates the controller read, in ESO's order of application (`ApplyTemplate`,
//! eso-compatibility.md 6.3):
//!
//! 1. the type is checked (never a ServiceAccount or bootstrap token Secret);
//! 2. the fetched keys are kept under `mergePolicy: Merge`, or when the template has neither
//!    `data` nor `templateFrom`;
//! 3. `templateFrom[]` in order, each ConfigMap items, then Secret items, then the literal;
//!    `templateAs: Values` renders an item's value under its key, `KeysAndValues` (always for a
//!    literal) renders YAML whose pairs are applied; `target` sends the result to Data, Labels or
//!    Annotations; `valuesDecodingStrategy` decodes each rendered value;
//! 4. `template.data` (rendered keys win over everything above);
//! 5. `template.metadata.labels` and `.annotations`, rendered.
//!
//! Pure: the ConfigMaps and Secrets of `templateFrom` arrive as [`TemplateSources`]. The result's
//! keys, labels and annotations are checked against Kubernetes' rules here, so a bad one is
//! reported with its name and not by the API server (whose message would quote a rendered value).
//! No error carries a value.

use std::collections::BTreeMap;

use lockstep_provider_api::{ErrorClass, SecretValue};
use zeroize::Zeroizing;

use super::decode::{DecodeError, DecodingStrategy, decode};
use super::keys::{InvalidKeysError, validate_secret_keys};
use crate::api::template::{ExternalSecretTemplate, TemplateMergePolicy, TemplateScope};
use crate::template::{TemplateContext, TemplateError, render};

/// Secret types lockstep never writes, by any route: a `kubernetes.io/service-account-token`
/// Secret makes the token controller mint a long-lived token for a ServiceAccount, and a
/// `bootstrap.kubernetes.io/token` Secret lets a node join the cluster.
pub const FORBIDDEN_TYPES: [&str; 2] = [
    "kubernetes.io/service-account-token",
    "bootstrap.kubernetes.io/token",
];

/// Whether lockstep refuses to write a Secret of this type.
pub fn is_forbidden_type(type_: &str) -> bool {
    FORBIDDEN_TYPES.contains(&type_)
}

/// Kubernetes' limit on the total size of a Secret's annotations (keys plus values).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// The ConfigMaps and Secrets `templateFrom` names, read from the ExternalSecret's namespace. A
/// name that is absent was not found.
#[derive(Debug, Default)]
pub struct TemplateSources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, SecretValue>>,
}

/// The Secret the template describes.
#[derive(Debug, Default)]
pub struct Rendered {
    /// `template.type`, when set; otherwise the Secret keeps its type (`Opaque` when new).
    pub type_: Option<String>,
    pub data: BTreeMap<String, SecretValue>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub finalizers: Vec<String>,
}

/// Why a template could not be applied. Names the template, the key and what is wrong, never a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateApplyError {
    #[error(
        "spec.target.template.type {0:?} is not allowed: lockstep never writes ServiceAccount \
         token or bootstrap token Secrets; use another type such as Opaque"
    )]
    ForbiddenType(String),

    #[error("could not apply template: {0}")]
    Render(#[from] TemplateError),

    #[error(
        "could not apply template: {at}: the ConfigMap {name:?} does not exist in the \
         ExternalSecret's namespace; templateFrom reads only from that namespace, create it there"
    )]
    ConfigMapNotFound { at: String, name: String },

    #[error(
        "could not apply template: {at}: the Secret {name:?} does not exist in the \
         ExternalSecret's namespace; templateFrom reads only from that namespace, create it there"
    )]
    SecretNotFound { at: String, name: String },

    #[error("could not apply template: {at}: error in {kind} {name}: missing key {key}")]
    MissingKey {
        at: String,
        kind: &'static str,
        name: String,
        key: String,
    },

    #[error(
        "could not apply template: {at}: target {target:?} is not one of Data, Labels or \
         Annotations (a Secret's type and other fields cannot be templated)"
    )]
    UnknownTarget { at: String, target: String },

    #[error(
        "could not apply template: {at}: the template is not UTF-8 text; store templates as text"
    )]
    TemplateNotText { at: String },

    #[error("could not apply template: {at}: the rendered text is not UTF-8, which {what} must be")]
    RenderedNotText { at: String, what: &'static str },

    #[error(
        "could not apply template: {at}: templateAs KeysAndValues (and a literal) must render a \
         YAML map of keys to text values; the output is not one ({problem})"
    )]
    NotAYamlMap { at: String, problem: String },

    #[error("could not apply template: {at}: failed to decode rendered template value: {error}")]
    Decode { at: String, error: DecodeError },

    #[error("the Secret's data has {0}")]
    InvalidKeys(InvalidKeysError),

    #[error(
        "could not apply template: {at} rendered a {what} key that is not valid ({rule}); the key \
         is not shown because a rendered key may be built from secret data"
    )]
    InvalidRenderedKey {
        at: String,
        what: &'static str,
        rule: &'static str,
    },

    #[error(
        "could not apply template: the annotations are {total} bytes (keys plus values), \
         Kubernetes' limit is 262144"
    )]
    AnnotationsTooLarge { total: usize },

    #[error("could not apply template: {what} {key:?} is not valid: {problem}")]
    InvalidMetadata {
        what: &'static str,
        key: String,
        problem: String,
    },
}

impl TemplateApplyError {
    /// Always [`ErrorClass::Invalid`]: the template, its sources or the data must change.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }
}

/// Where a rendered result goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Data,
    Labels,
    Annotations,
}

impl Target {
    fn parse(target: &str) -> Option<Self> {
        match target.to_ascii_lowercase().as_str() {
            "data" => Some(Self::Data),
            "labels" => Some(Self::Labels),
            "annotations" => Some(Self::Annotations),
            _ => None,
        }
    }
}

/// The Secret's content without a template: the fetched data, whose keys must be valid Secret
/// keys (ESO's own key check lets through any Unicode letter, which the API server refuses).
pub fn without_template(
    fetched: BTreeMap<String, SecretValue>,
) -> Result<Rendered, TemplateApplyError> {
    validate_secret_keys(fetched.keys().map(String::as_str))
        .map_err(TemplateApplyError::InvalidKeys)?;
    Ok(Rendered {
        data: fetched,
        ..Default::default()
    })
}

/// Applies `template` to the `fetched` data (see the module comment).
pub fn apply_template(
    template: &ExternalSecretTemplate,
    fetched: BTreeMap<String, SecretValue>,
    sources: &TemplateSources,
) -> Result<Rendered, TemplateApplyError> {
    if let Some(type_) = template.type_.as_deref().filter(|t| is_forbidden_type(t)) {
        return Err(TemplateApplyError::ForbiddenType(type_.to_owned()));
    }
    let ctx = TemplateContext::from_map(&fetched);
    let metadata = template.metadata.clone().unwrap_or_default();
    let mut out = Rendered {
        type_: template.type_.clone().filter(|t| !t.is_empty()),
        finalizers: metadata.finalizers.clone(),
        ..Default::default()
    };
    let renders_data = !template.data.is_empty() || !template.template_from.is_empty();
    if template.merge_policy == TemplateMergePolicy::Merge || !renders_data {
        out.data = fetched;
    }

    for (index, from) in template.template_from.iter().enumerate() {
        let at = format!("spec.target.template.templateFrom[{index}]");
        let target =
            Target::parse(&from.target).ok_or_else(|| TemplateApplyError::UnknownTarget {
                at: at.clone(),
                target: from.target.clone(),
            })?;
        let decoding = from.values_decoding_strategy.unwrap_or_default();
        if let Some(reference) = &from.config_map {
            let at = format!("{at}.configMap");
            let items = sources.config_maps.get(&reference.name).ok_or_else(|| {
                TemplateApplyError::ConfigMapNotFound {
                    at: at.clone(),
                    name: reference.name.clone(),
                }
            })?;
            for item in &reference.items {
                let source =
                    items
                        .get(&item.key)
                        .ok_or_else(|| TemplateApplyError::MissingKey {
                            at: at.clone(),
                            kind: "configmap",
                            name: reference.name.clone(),
                            key: item.key.clone(),
                        })?;
                let name = format!("{at} {} key {}", reference.name, item.key);
                let step = Step {
                    name: &name,
                    target,
                    decoding,
                };
                step.apply(&mut out, &ctx, &item.key, source, item.template_as)?;
            }
        }
        if let Some(reference) = &from.secret {
            let at = format!("{at}.secret");
            let items = sources.secrets.get(&reference.name).ok_or_else(|| {
                TemplateApplyError::SecretNotFound {
                    at: at.clone(),
                    name: reference.name.clone(),
                }
            })?;
            for item in &reference.items {
                let value = items
                    .get(&item.key)
                    .ok_or_else(|| TemplateApplyError::MissingKey {
                        at: at.clone(),
                        kind: "secret",
                        name: reference.name.clone(),
                        key: item.key.clone(),
                    })?;
                let name = format!("{at} {} key {}", reference.name, item.key);
                let source = std::str::from_utf8(value.expose())
                    .map_err(|_| TemplateApplyError::TemplateNotText { at: name.clone() })?;
                let step = Step {
                    name: &name,
                    target,
                    decoding,
                };
                step.apply(&mut out, &ctx, &item.key, source, item.template_as)?;
            }
        }
        if let Some(literal) = &from.literal {
            let name = format!("{at}.literal");
            let step = Step {
                name: &name,
                target,
                decoding,
            };
            step.apply(&mut out, &ctx, "", literal, TemplateScope::KeysAndValues)?;
        }
    }

    for (key, source) in &template.data {
        let name = format!("spec.target.template.data.{key}");
        let value = render(&name, source, &ctx)?;
        out.data.insert(key.clone(), value);
    }
    for (key, source) in &metadata.labels {
        let name = format!("spec.target.template.metadata.labels.{key}");
        let value = text(&name, render(&name, source, &ctx)?, "a label")?;
        out.labels.insert(key.clone(), value);
    }
    for (key, source) in &metadata.annotations {
        let name = format!("spec.target.template.metadata.annotations.{key}");
        let value = text(&name, render(&name, source, &ctx)?, "an annotation")?;
        out.annotations.insert(key.clone(), value);
    }

    validate_secret_keys(out.data.keys().map(String::as_str))
        .map_err(TemplateApplyError::InvalidKeys)?;
    validate_labels(&out.labels)?;
    validate_annotations(&out.annotations)?;
    Ok(out)
}

/// One rendering step of `templateFrom`: where its results go and how they are decoded.
struct Step<'a> {
    name: &'a str,
    target: Target,
    decoding: DecodingStrategy,
}

impl Step<'_> {
    fn apply(
        &self,
        out: &mut Rendered,
        ctx: &TemplateContext,
        key: &str,
        source: &str,
        scope: TemplateScope,
    ) -> Result<(), TemplateApplyError> {
        let rendered = render(self.name, source, ctx)?;
        match scope {
            TemplateScope::Values => self.put(out, key, rendered),
            TemplateScope::KeysAndValues => {
                let text = Zeroizing::new(String::from_utf8(rendered.expose().to_vec()).map_err(
                    |_| TemplateApplyError::RenderedNotText {
                        at: self.name.to_owned(),
                        what: "a YAML map",
                    },
                )?);
                for (key, value) in yaml_pairs(self.name, &text)? {
                    // Checked here, where it is known that the key was rendered: later checks
                    // name the keys they refuse.
                    self.check_rendered_key(&key)?;
                    self.put(out, &key, SecretValue::from(value))?;
                }
                Ok(())
            }
        }
    }

    fn check_rendered_key(&self, key: &str) -> Result<(), TemplateApplyError> {
        let (valid, what, rule) = match self.target {
            Target::Data => (
                validate_secret_keys([key]).is_ok(),
                "Secret data",
                "1 to 253 characters of A-Z a-z 0-9 - . _, not '.' or '..'",
            ),
            Target::Labels | Target::Annotations => (
                qualified_name_problem(key).is_none(),
                if self.target == Target::Labels {
                    "label"
                } else {
                    "annotation"
                },
                "an optional DNS subdomain prefix and '/', then 1 to 63 letters, digits, '-', '_' \
                 or '.', beginning and ending with a letter or digit",
            ),
        };
        if valid {
            Ok(())
        } else {
            Err(TemplateApplyError::InvalidRenderedKey {
                at: self.name.to_owned(),
                what,
                rule,
            })
        }
    }

    fn put(
        &self,
        out: &mut Rendered,
        key: &str,
        value: SecretValue,
    ) -> Result<(), TemplateApplyError> {
        let value =
            decode(self.decoding, key, value).map_err(|error| TemplateApplyError::Decode {
                at: self.name.to_owned(),
                error,
            })?;
        match self.target {
            Target::Data => {
                out.data.insert(key.to_owned(), value);
            }
            Target::Labels => {
                let value = text(self.name, value, "a label")?;
                out.labels.insert(key.to_owned(), value);
            }
            Target::Annotations => {
                let value = text(self.name, value, "an annotation")?;
                out.annotations.insert(key.to_owned(), value);
            }
        }
        Ok(())
    }
}

fn text(at: &str, value: SecretValue, what: &'static str) -> Result<String, TemplateApplyError> {
    String::from_utf8(value.expose().to_vec()).map_err(|_| TemplateApplyError::RenderedNotText {
        at: at.to_owned(),
        what,
    })
}

/// The pairs of a rendered `KeysAndValues` text, as ESO reads it (`yaml.Unmarshal` into a
/// `map[string]string`): scalars become their text, `null` the empty string, an empty document
/// no pairs. The problem is told by position only: a parser message could quote rendered text.
fn yaml_pairs(at: &str, text: &str) -> Result<Vec<(String, String)>, TemplateApplyError> {
    let not_a_map = |problem: String| TemplateApplyError::NotAYamlMap {
        at: at.to_owned(),
        problem,
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let parsed: Option<BTreeMap<String, Option<serde_json::Value>>> = serde_saphyr::from_str(text)
        .map_err(|e| {
            not_a_map(match e.location() {
                Some(l) => format!("invalid YAML at line {}, column {}", l.line(), l.column()),
                None => "invalid YAML".to_owned(),
            })
        })?;
    let mut pairs = Vec::new();
    for (key, value) in parsed.unwrap_or_default() {
        let value = match value {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Bool(b)) => b.to_string(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(not_a_map(format!(
                    "the value of {key:?} is a list or a map, not text"
                )));
            }
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Kubernetes' label rules (`IsQualifiedName` keys, `IsValidLabelValue` values).
fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), TemplateApplyError> {
    for (key, value) in labels {
        let invalid = |problem: String| TemplateApplyError::InvalidMetadata {
            what: "label",
            key: key.clone(),
            problem,
        };
        qualified_name_problem(key).map_or(Ok(()), |p| Err(invalid(p)))?;
        if value.len() > 63 {
            return Err(invalid(format!(
                "its value is {} characters long, the limit is 63",
                value.len()
            )));
        }
        if !value.is_empty() && !is_label_name(value) {
            return Err(invalid(
                "its value must be empty or begin and end with a letter or digit and hold only \
                 letters, digits, '-', '_' and '.' (the value is not shown)"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// Kubernetes' annotation rules: qualified-name keys, at most 256 KiB in all.
fn validate_annotations(annotations: &BTreeMap<String, String>) -> Result<(), TemplateApplyError> {
    let mut total = 0usize;
    for (key, value) in annotations {
        if let Some(problem) = qualified_name_problem(key) {
            return Err(TemplateApplyError::InvalidMetadata {
                what: "annotation",
                key: key.clone(),
                problem,
            });
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > MAX_ANNOTATIONS_BYTES {
        return Err(TemplateApplyError::AnnotationsTooLarge { total });
    }
    Ok(())
}

/// What is wrong with a label or annotation key: an optional DNS subdomain prefix and `/`, then
/// a name of at most 63 characters.
fn qualified_name_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253 || !is_dns_subdomain(prefix))
    {
        return Some("its prefix (before '/') must be a DNS subdomain such as example.com".into());
    }
    if name.is_empty() || name.len() > 63 || !is_label_name(name) {
        return Some(
            "its name (after any prefix/) must be 1 to 63 characters, begin and end with a letter \
             or digit, and hold only letters, digits, '-', '_' and '.'"
                .into(),
        );
    }
    None
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let bytes = label.as_bytes();
        let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        bytes.first().is_some_and(edge)
            && bytes.last().is_some_and(edge)
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::template::{TemplateFrom, TemplateMetadata, TemplateRef, TemplateRefItem};

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

    fn strings(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fetched() -> BTreeMap<String, SecretValue> {
        values(&[("one", "foo1-val"), ("two", "bar2-val")])
    }

    fn with_data(data: &[(&str, &str)]) -> ExternalSecretTemplate {
        ExternalSecretTemplate {
            data: strings(data),
            ..Default::default()
        }
    }

    fn item(key: &str, template_as: TemplateScope) -> TemplateRefItem {
        TemplateRefItem {
            key: key.into(),
            template_as,
        }
    }

    fn from_config_map(name: &str, items: Vec<TemplateRefItem>, target: &str) -> TemplateFrom {
        TemplateFrom {
            config_map: Some(TemplateRef {
                name: name.into(),
                items,
            }),
            target: target.into(),
            ..Default::default()
        }
    }

    fn literal(text: &str, target: &str) -> TemplateFrom {
        TemplateFrom {
            literal: Some(text.into()),
            target: target.into(),
            ..Default::default()
        }
    }

    // ESO e2e JSONDataWithTemplate.
    #[test]
    fn data_templates_replace_the_fetched_keys() {
        let mut template = with_data(&[("my-data", "executed: {{ .one }}|{{ .two }}")]);
        template.metadata = Some(TemplateMetadata {
            labels: strings(&[("example", "value")]),
            annotations: strings(&[("example", "annotation")]),
            finalizers: vec!["example.com/f".into()],
        });
        let out = apply_template(&template, fetched(), &TemplateSources::default()).unwrap();
        assert_eq!(
            readable(&out.data),
            pairs(&[("my-data", "executed: foo1-val|bar2-val")])
        );
        assert_eq!(out.labels, strings(&[("example", "value")]));
        assert_eq!(out.annotations, strings(&[("example", "annotation")]));
        assert_eq!(out.finalizers, ["example.com/f"]);
        assert_eq!(out.type_, None);
    }

    #[test]
    fn merge_policy_keeps_the_fetched_keys_under_the_rendered_ones() {
        let mut template = with_data(&[("one", "rendered {{ .two }}"), ("extra", "x")]);
        template.merge_policy = TemplateMergePolicy::Merge;
        let out = apply_template(&template, fetched(), &TemplateSources::default()).unwrap();
        assert_eq!(
            readable(&out.data),
            pairs(&[
                ("extra", "x"),
                ("one", "rendered bar2-val"),
                ("two", "bar2-val")
            ])
        );
    }

    #[test]
    fn a_template_without_data_keeps_the_fetched_keys_and_sets_the_type() {
        let template = ExternalSecretTemplate {
            type_: Some("kubernetes.io/ssh-auth".into()),
            ..Default::default()
        };
        let out = apply_template(&template, fetched(), &TemplateSources::default()).unwrap();
        assert_eq!(
            readable(&out.data),
            pairs(&[("one", "foo1-val"), ("two", "bar2-val")])
        );
        assert_eq!(out.type_.as_deref(), Some("kubernetes.io/ssh-auth"));
    }

    #[test]
    fn forbidden_types_are_refused_before_anything_renders() {
        for forbidden in FORBIDDEN_TYPES {
            let mut template = with_data(&[("k", "{{ .one }}")]);
            template.type_ = Some(forbidden.into());
            let error =
                apply_template(&template, fetched(), &TemplateSources::default()).unwrap_err();
            assert_eq!(error, TemplateApplyError::ForbiddenType(forbidden.into()));
            assert!(error.to_string().contains("never writes"), "{error}");
        }
        assert!(!is_forbidden_type("Opaque"));
    }

    // ESO e2e TemplateFromConfigmaps: Values and KeysAndValues items, to Data and Labels.
    #[test]
    fn template_from_config_maps_in_order_then_data_wins() {
        let sources = TemplateSources {
            config_maps: BTreeMap::from([(
                "tpl".to_string(),
                strings(&[
                    ("tplv", "value-{{ .one }}"),
                    ("tplkv", "kv-{{ .two }}: {{ .one }}\nnumber: 5\nempty: ~"),
                    ("label", "team-{{ .two }}"),
                ]),
            )]),
            ..Default::default()
        };
        let template = ExternalSecretTemplate {
            data: strings(&[("tplv", "data wins")]),
            template_from: vec![
                from_config_map(
                    "tpl",
                    vec![
                        item("tplv", TemplateScope::Values),
                        item("tplkv", TemplateScope::KeysAndValues),
                    ],
                    "Data",
                ),
                from_config_map("tpl", vec![item("label", TemplateScope::Values)], "labels"),
            ],
            ..Default::default()
        };
        let out = apply_template(&template, fetched(), &sources).unwrap();
        assert_eq!(
            readable(&out.data),
            pairs(&[
                ("empty", ""),
                ("kv-bar2-val", "foo1-val"),
                ("number", "5"),
                ("tplv", "data wins"),
            ])
        );
        assert_eq!(out.labels, strings(&[("label", "team-bar2-val")]));
    }

    // ESO e2e JSONDataWithTemplateFromLiteral.
    #[test]
    fn literals_render_yaml_pairs_to_any_target() {
        let template = ExternalSecretTemplate {
            template_from: vec![
                literal("{{ .one }}: {{ .two }}", "Data"),
                literal("note: \"{{ .one }}\"", "Annotations"),
                literal("tier: {{ .two }}", "LABELS"),
            ],
            ..Default::default()
        };
        let out = apply_template(&template, fetched(), &TemplateSources::default()).unwrap();
        assert_eq!(readable(&out.data), pairs(&[("foo1-val", "bar2-val")]));
        assert_eq!(out.annotations, strings(&[("note", "foo1-val")]));
        assert_eq!(out.labels, strings(&[("tier", "bar2-val")]));
    }

    #[test]
    fn template_from_a_secret_and_decoding_of_rendered_values() {
        let sources = TemplateSources {
            secrets: BTreeMap::from([(
                "tpl-secret".to_string(),
                values(&[("cert", "Zm9v{{ .one }}")]),
            )]),
            ..Default::default()
        };
        let template = ExternalSecretTemplate {
            template_from: vec![TemplateFrom {
                secret: Some(TemplateRef {
                    name: "tpl-secret".into(),
                    items: vec![item("cert", TemplateScope::Values)],
                }),
                values_decoding_strategy: Some(DecodingStrategy::Base64),
                ..Default::default()
            }],
            ..Default::default()
        };
        // "Zm9v" + "YmFy" is base64 of "foobar".
        let out = apply_template(&template, values(&[("one", "YmFy")]), &sources).unwrap();
        assert_eq!(readable(&out.data), pairs(&[("cert", "foobar")]));

        let error =
            apply_template(&template, values(&[("one", "!!hunter2")]), &sources).unwrap_err();
        assert!(
            matches!(error, TemplateApplyError::Decode { .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn missing_sources_and_keys_say_which() {
        let template = ExternalSecretTemplate {
            template_from: vec![from_config_map(
                "absent",
                vec![item("k", TemplateScope::Values)],
                "Data",
            )],
            ..Default::default()
        };
        let error = apply_template(&template, fetched(), &TemplateSources::default()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("spec.target.template.templateFrom[0].configMap")
                && message.contains("\"absent\" does not exist in the ExternalSecret's namespace"),
            "{message}"
        );

        let sources = TemplateSources {
            config_maps: BTreeMap::from([("absent".to_string(), strings(&[("other", "x")]))]),
            ..Default::default()
        };
        let message = apply_template(&template, fetched(), &sources)
            .unwrap_err()
            .to_string();
        assert!(
            message.ends_with("error in configmap absent: missing key k"),
            "{message}"
        );

        let secret = ExternalSecretTemplate {
            template_from: vec![TemplateFrom {
                secret: Some(TemplateRef {
                    name: "gone".into(),
                    items: vec![item("k", TemplateScope::Values)],
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(matches!(
            apply_template(&secret, fetched(), &TemplateSources::default()),
            Err(TemplateApplyError::SecretNotFound { .. })
        ));
    }

    #[test]
    fn targets_other_than_data_labels_annotations_are_refused() {
        for target in ["type", "spec.data", "metadata"] {
            let template = ExternalSecretTemplate {
                template_from: vec![literal("a: b", target)],
                ..Default::default()
            };
            let error =
                apply_template(&template, fetched(), &TemplateSources::default()).unwrap_err();
            assert_eq!(
                error,
                TemplateApplyError::UnknownTarget {
                    at: "spec.target.template.templateFrom[0]".into(),
                    target: target.into()
                }
            );
        }
    }

    #[test]
    fn keys_and_values_output_that_is_not_a_map_is_told_by_position_only() {
        for text in ["just text", "- a\n- b", "a: [1, 2]", "a: b\n  c: : d"] {
            let template = ExternalSecretTemplate {
                template_from: vec![literal(&format!("{text}{{{{ .one }}}}"), "Data")],
                ..Default::default()
            };
            let error = apply_template(
                &template,
                values(&[("one", "hunter2")]),
                &Default::default(),
            )
            .unwrap_err();
            assert!(
                matches!(error, TemplateApplyError::NotAYamlMap { .. }),
                "{text}: {error}"
            );
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        // An empty rendering is no pairs.
        let template = ExternalSecretTemplate {
            template_from: vec![literal("", "Data")],
            ..Default::default()
        };
        let out = apply_template(&template, fetched(), &Default::default()).unwrap();
        assert!(out.data.is_empty());
    }

    #[test]
    fn rendered_keys_labels_and_annotations_follow_kubernetes_rules() {
        let bad_key = with_data(&[("a/b", "x")]);
        let error = apply_template(&bad_key, fetched(), &Default::default()).unwrap_err();
        assert!(matches!(error, TemplateApplyError::InvalidKeys(_)));
        assert!(error.to_string().contains("\"a/b\""), "{error}");

        let mut bad_label = with_data(&[("k", "v")]);
        bad_label.metadata = Some(TemplateMetadata {
            labels: strings(&[("app", "{{ .one }} with spaces")]),
            ..Default::default()
        });
        let error = apply_template(
            &bad_label,
            values(&[("one", "hunter2")]),
            &Default::default(),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("label \"app\" is not valid"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");

        for key in ["-bad", "example.com/", "Example.com/x", &"k".repeat(64)] {
            let mut template = with_data(&[("k", "v")]);
            template.metadata = Some(TemplateMetadata {
                annotations: strings(&[(key, "v")]),
                ..Default::default()
            });
            let error = apply_template(&template, fetched(), &Default::default()).unwrap_err();
            assert!(
                matches!(
                    &error,
                    TemplateApplyError::InvalidMetadata {
                        what: "annotation",
                        ..
                    }
                ),
                "{key}: {error}"
            );
        }
        let mut fine = with_data(&[("k", "v")]);
        fine.metadata = Some(TemplateMetadata {
            labels: strings(&[("app.kubernetes.io/name", "x.y-z_1"), ("empty", "")]),
            annotations: strings(&[("example.com/note", "anything at all: { }")]),
            ..Default::default()
        });
        assert!(apply_template(&fine, fetched(), &Default::default()).is_ok());
    }

    #[test]
    fn without_a_template_keys_must_be_valid_secret_keys() {
        assert!(without_template(fetched()).is_ok());
        let error = without_template(values(&[("café", "x")])).unwrap_err();
        assert!(error.to_string().contains("\"café\""), "{error}");
    }
}
