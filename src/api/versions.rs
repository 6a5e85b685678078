//! Assembling the CRDs: the schemas derived from the Rust types, served at the versions ESO
//! manifests use, with the touches a derive cannot express.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionVersion, JSON, JSONSchemaProps,
    JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};
use kube::CustomResourceExt;

use super::cluster_external_secret::ClusterExternalSecret;
use super::external_secret::ExternalSecret;
use super::push_secret::{ClusterPushSecret, PushSecret};
use super::secret_store::SecretStore;
use super::validation::{self, Message, Rule};

/// The version old ESO manifests (and the seed guide) use; served with v1's schema.
pub const V1BETA1: &str = "v1beta1";

/// Every CRD lockstep serves, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        also_served_as_v1beta1(with_unobserved_status(finish(ExternalSecret::crd()))),
        also_served_as_v1beta1(secret_store()),
        also_served_as_v1beta1(cluster_secret_store()),
        also_served_as_v1beta1(finish(ClusterExternalSecret::crd())),
        finish(PushSecret::crd()),
        finish(ClusterPushSecret::crd()),
    ]
}

/// Adds `v1beta1` as a copy of the storage version: served, not stored, same schema. Without a
/// conversion webhook the API server only rewrites `apiVersion` between them, which is correct
/// because the schemas are identical.
pub fn also_served_as_v1beta1(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let Some(storage) = crd.spec.versions.iter().find(|v| v.storage).cloned() else {
        return crd;
    };
    let group = crd.spec.group.clone();
    let kind = crd.spec.names.kind.clone();
    crd.spec.versions.retain(|v| v.name != V1BETA1);
    crd.spec.versions.push(CustomResourceDefinitionVersion {
        name: V1BETA1.to_owned(),
        served: true,
        storage: false,
        deprecated: Some(true),
        deprecation_warning: Some(format!(
            "{group}/{V1BETA1} {kind} is deprecated; lockstep serves it unchanged, but use {group}/{} {kind}",
            storage.name
        )),
        ..storage
    });
    crd
}

/// Changes every CRD needs after derivation.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(schema) = schema_mut(version) {
            // ESO's schemas are not nullable (a `null` is dropped, then defaulted), and rules can
            // then rely on `has()`. Only `refreshTime` is nullable, as in ESO.
            strip_nullable(schema);
            if let Some(refresh_time) = at_path(schema, &["status", "refreshTime"]) {
                refresh_time.nullable = Some(true);
            }
        }
    }
    crd
}

/// A new ExternalSecret reads back with `status.observedGeneration: 0` (a schema default, applied
/// by the API server when it reads an object without status). kstatus (Flux, `kpt`, cli-utils) treats
/// an object without `observedGeneration` as Current; with 0 it is InProgress until lockstep has
/// reconciled it, so a GitOps tool waits for the first sync instead of reporting success early.
fn with_unobserved_status(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(status) = schema_mut(version).and_then(|s| at_path(s, &["status"])) {
            status.default = Some(JSON(serde_json::json!({"observedGeneration": 0})));
        }
    }
    crd
}

fn secret_store() -> CustomResourceDefinition {
    with_store_rules(finish(SecretStore::crd()), false)
}

/// ClusterSecretStore is SecretStore's CRD under other names, cluster-scoped.
fn cluster_secret_store() -> CustomResourceDefinition {
    let mut crd = finish(SecretStore::crd());
    crd.metadata.name = Some(format!("clustersecretstores.{}", crd.spec.group));
    crd.spec.scope = "Cluster".to_owned();
    let names = &mut crd.spec.names;
    names.kind = "ClusterSecretStore".to_owned();
    names.plural = "clustersecretstores".to_owned();
    names.singular = Some("clustersecretstore".to_owned());
    names.short_names = Some(vec!["css".to_owned()]);
    for version in &mut crd.spec.versions {
        if let Some(schema) = schema_mut(version) {
            schema.title = Some("ClusterSecretStore".to_owned());
            schema.description = Some(
                "ClusterSecretStore says where secrets live and how to authenticate, for ExternalSecrets in any namespace its conditions allow."
                    .to_owned(),
            );
        }
    }
    with_store_rules(crd, true)
}

fn with_store_rules(mut crd: CustomResourceDefinition, cluster: bool) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(schema) = schema_mut(version) else {
            continue;
        };
        for (path, rule) in validation::kind_specific_store_rules(cluster) {
            if let Some(target) = at_path(schema, path) {
                target
                    .x_kubernetes_validations
                    .get_or_insert_with(Vec::new)
                    .push(validation_rule(&rule));
            }
        }
    }
    crd
}

fn validation_rule(rule: &Rule) -> ValidationRule {
    let (message, message_expression) = match &rule.message {
        Message::Fixed(text) => (Some(text.clone()), None),
        Message::Expression(expr) => (None, Some(expr.clone())),
    };
    ValidationRule {
        rule: rule.rule.clone(),
        message,
        message_expression,
        field_path: rule.field_path.clone(),
        reason: rule.reason.map(str::to_owned),
        optional_old_self: None,
    }
}

fn schema_mut(version: &mut CustomResourceDefinitionVersion) -> Option<&mut JSONSchemaProps> {
    version.schema.as_mut()?.open_api_v3_schema.as_mut()
}

/// The schema of a nested property, by property names from `schema`.
pub fn at_path<'a>(
    schema: &'a mut JSONSchemaProps,
    path: &[&str],
) -> Option<&'a mut JSONSchemaProps> {
    path.iter().try_fold(schema, |schema, name| {
        schema.properties.as_mut()?.get_mut(*name)
    })
}

/// Removes `nullable`, and the `null` schemars adds to the enum of an optional enum.
fn strip_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    if let Some(values) = &mut schema.enum_ {
        values.retain(|v| v.0 != serde_json::Value::Null);
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_nullable(child);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => strip_nullable(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(strip_nullable),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &mut schema.additional_properties {
        strip_nullable(values);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(strip_nullable);
    }
}
