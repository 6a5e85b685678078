//! `target.template`: the blueprint of the Secret an ExternalSecret writes (also used by PushSecret
//! to shape the Secret before it is pushed).
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::external_secret::DecodingStrategy;
use super::meta::{DNS_SUBDOMAIN, SECRET_KEY};
use super::validation;

/// The template engine. Only ESO's v2 engine exists (v1 was removed from ESO in v0.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum TemplateEngineVersion {
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// How rendered keys combine with the fetched ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum TemplateMergePolicy {
    // Only the rendered keys end up in the Secret.
    #[default]
    Replace,
    // The fetched keys are kept too; rendered keys win on a clash.
    Merge,
}

/// How the keys of a ConfigMap or Secret used as a template are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum TemplateScope {
    // Each item's value is a template for the key of the same name.
    #[default]
    Values,
    // Each item renders to YAML whose keys and values are both used.
    KeysAndValues,
}

/// Labels, annotations and finalizers for the written Secret; label and annotation values are
/// templates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// The blueprint of the Secret.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = validation::template)]
pub struct ExternalSecretTemplate {
    /// `type` of the Secret; when empty an existing Secret keeps its type and a new one is
    /// `Opaque`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub type_: Option<String>,

    /// Template engine for `data` and `templateFrom`.
    #[serde(default)]
    pub engine_version: TemplateEngineVersion,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,

    #[serde(default)]
    pub merge_policy: TemplateMergePolicy,

    /// Secret key to the template of its value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,

    /// Templates kept in ConfigMaps, Secrets or literals, applied in order before `data`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub template_from: Vec<TemplateFrom>,
}

/// Where `templateFrom` results go when nothing says otherwise.
pub const DEFAULT_TEMPLATE_TARGET: &str = "Data";

fn default_template_target() -> String {
    DEFAULT_TEMPLATE_TARGET.to_owned()
}

/// One source of templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TemplateRef>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<TemplateRef>,

    /// Where the result goes: `Data`, `Annotations` or `Labels` (any case) for a Secret; a
    /// nested path such as `spec.config` only for a generic `manifest` target.
    #[serde(default = "default_template_target")]
    #[schemars(length(max = 253))]
    pub target: String,

    /// An inline template rendering to YAML keys and values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,

    /// Decodes each rendered value; none when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_decoding_strategy: Option<DecodingStrategy>,
}

impl Default for TemplateFrom {
    fn default() -> Self {
        Self {
            config_map: None,
            secret: None,
            target: default_template_target(),
            literal: None,
            values_decoding_strategy: None,
        }
    }
}

/// A ConfigMap or Secret in the ExternalSecret's namespace holding templates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,

    /// The keys to use as templates.
    pub items: Vec<TemplateRefItem>,
}

/// One key of a template ConfigMap or Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefItem {
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY))]
    pub key: String,

    #[serde(default)]
    pub template_as: TemplateScope,
}
