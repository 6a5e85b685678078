//! Reading what `spec.target.template.templateFrom` names, then applying the template.
//!
//! The ConfigMaps and Secrets are read from the ExternalSecret's own namespace only: a
//! `templateFrom` reference has no namespace field, so another namespace cannot even be named.
//! They are read directly at each sync and not watched, as in ESO: a changed template is used at
//! the next refresh (or at once after any change to the ExternalSecret).
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use lockstep_provider_api::{ErrorClass, SecretValue};

use crate::api::external_secret::ExternalSecret;
use crate::api::template::ExternalSecretTemplate;
use crate::materialize::{
    Rendered, TemplateApplyError, TemplateSources, apply_template, without_template,
};

#[derive(Debug, thiserror::Error)]
pub enum TemplateFailure {
    #[error("could not apply template: reading the {what} of templateFrom: {}", read_problem(.source))]
    Read { what: String, source: kube::Error },
    #[error(transparent)]
    Apply(#[from] TemplateApplyError),
}

/// The API server's own message, and what to do when lockstep may not read the object.
fn read_problem(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => format!(
            "{}; lockstep needs get on configmaps and secrets in the ExternalSecret's namespace \
             (the Helm chart's RBAC grants it)",
            status.message
        ),
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

impl TemplateFailure {
    /// A failed read is retried with backoff; a template that does not apply waits for a change.
    pub fn class(&self) -> ErrorClass {
        match self {
            TemplateFailure::Read { .. } => ErrorClass::Unavailable,
            TemplateFailure::Apply(e) => e.class(),
        }
    }
}

/// The Secret's content: `data` through the template when there is one.
pub async fn render(
    client: &Client,
    es: &ExternalSecret,
    namespace: &str,
    data: BTreeMap<String, SecretValue>,
) -> Result<Rendered, TemplateFailure> {
    let Some(template) = &es.spec.target.template else {
        return Ok(without_template(data)?);
    };
    let sources = read_sources(client, namespace, template).await?;
    Ok(apply_template(template, data, &sources)?)
}

async fn read_sources(
    client: &Client,
    namespace: &str,
    template: &ExternalSecretTemplate,
) -> Result<TemplateSources, TemplateFailure> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut sources = TemplateSources::default();
    for from in &template.template_from {
        if let Some(reference) = &from.config_map
            && !sources.config_maps.contains_key(&reference.name)
        {
            let found = config_maps
                .get_opt(&reference.name)
                .await
                .map_err(|source| TemplateFailure::Read {
                    what: format!("ConfigMap {:?}", reference.name),
                    source,
                })?;
            // Absent when not found: applying the template then says which reference is missing.
            if let Some(cm) = found {
                sources
                    .config_maps
                    .insert(reference.name.clone(), cm.data.unwrap_or_default());
            }
        }
        if let Some(reference) = &from.secret
            && !sources.secrets.contains_key(&reference.name)
        {
            let found =
                secrets
                    .get_opt(&reference.name)
                    .await
                    .map_err(|source| TemplateFailure::Read {
                        what: format!("Secret {:?}", reference.name),
                        source,
                    })?;
            if let Some(secret) = found {
                let data = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, SecretValue::new(v.0)))
                    .collect();
                sources.secrets.insert(reference.name.clone(), data);
            }
        }
    }
    Ok(sources)
}
