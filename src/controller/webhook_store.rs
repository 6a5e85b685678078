//! A webhook store's configuration: its `secrets[]` and CA resolved from the Kubernetes objects
//! they name, its durations parsed, and handed to the provider crate as material only.
use kube::Client;
use lockstep_provider_webhook::WebhookConfig;

use super::aws_identity::Scope;
use super::connect::ConnectError;
use super::store_refs::Refs;
use crate::api::provider_webhook::WebhookProvider;

const FIELD: &str = "spec.provider.webhook";

/// The resolved configuration, and the `kind:namespace/name@resourceVersion` of every object
/// read for it.
pub async fn config(
    client: &Client,
    spec: &WebhookProvider,
    scope: Scope<'_>,
) -> Result<(WebhookConfig, Vec<String>), ConnectError> {
    if spec.auth.is_some() {
        return Err(ConnectError::Unsupported(format!(
            "{FIELD}.auth.ntlm is not supported by lockstep yet: send credentials with headers \
             from secrets[] instead (for example Authorization: Basic ...)"
        )));
    }
    let timeout = spec
        .timeout
        .as_ref()
        .map(|t| t.to_std())
        .transpose()
        .map_err(|e| ConnectError::Unsupported(format!("{FIELD}.timeout {e}")))?;
    let mut refs = Refs::new(client, scope);
    let mut secrets = std::collections::BTreeMap::new();
    for (i, entry) in spec.secrets.iter().enumerate() {
        let field = format!("{FIELD}.secrets[{i}].secretRef");
        let data = refs.webhook_secret(&entry.secret_ref, &field).await?;
        secrets.insert(entry.name.clone(), data);
    }
    let ca_pem = refs
        .ca(spec.ca_bundle.as_ref(), spec.ca_provider.as_ref(), FIELD)
        .await?;
    let config = WebhookConfig {
        method: spec.method.clone(),
        url: spec.url.clone(),
        headers: spec.headers.clone(),
        body: spec.body.clone(),
        timeout,
        json_path: spec.result.as_ref().and_then(|r| r.json_path.clone()),
        ca_pem,
        secrets,
        namespace: scope
            .consumer_namespace
            .or(scope.store_namespace)
            .unwrap_or_default()
            .to_owned(),
    };
    Ok((config, refs.sources))
}

/// Renders the webhook's request templates with lockstep's template engine (ESO's Go
/// text/template syntax and functions), so `{{ print .auth.user ":" .auth.pw | b64enc }}` works
/// as in ESO.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineRenderer;

impl lockstep_provider_webhook::Render for EngineRenderer {
    fn render(
        &self,
        name: &str,
        template: &str,
        data: &lockstep_provider_webhook::TemplateData,
    ) -> Result<lockstep_provider_api::SecretValue, String> {
        let mut ctx = crate::template::TemplateContext::new();
        for (key, map) in data {
            ctx.insert_map(key.clone(), map);
        }
        crate::template::render(name, template, &ctx).map_err(|e| e.to_string())
    }
}
