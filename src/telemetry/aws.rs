//! Counting every AWS API request at the HTTP client of a store's SDK configuration: the call
//! name comes from the `X-Amz-Target` header (Secrets Manager and SSM speak awsJson1.1), so each
//! request (a retry too, which AWS bills as well) is counted exactly once, with no hook in the
//! provider.
use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

use super::{Metrics, PROVIDER_AWS_PS, PROVIDER_AWS_SM};

/// `config` with its HTTP client wrapped so that requests are counted against `store`.
pub fn counted(config: SdkConfig, metrics: Metrics, store: String) -> SdkConfig {
    let inner = config.http_client().unwrap_or_else(default_client);
    config
        .to_builder()
        .http_client(Counting {
            inner,
            metrics,
            store,
        })
        .build()
}

/// The SDK's own default (hyper 1, rustls with aws-lc, proxy settings from the environment).
fn default_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    })
}

#[derive(Debug, Clone)]
struct Counting {
    inner: SharedHttpClient,
    metrics: Metrics,
    store: String,
}

impl HttpClient for Counting {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CountingConnector {
            inner: self.inner.http_connector(settings, components),
            metrics: self.metrics.clone(),
            store: self.store.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_base_client_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct CountingConnector {
    inner: SharedHttpConnector,
    metrics: Metrics,
    store: String,
}

impl HttpConnector for CountingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").map(str::to_owned);
        let Some((provider, call)) = target.as_deref().and_then(operation) else {
            // Not a call lockstep knows how to name (STS uses a form body): passed on uncounted.
            return self.inner.call(request);
        };
        let call = call.to_owned();
        let future = self.inner.call(request);
        let metrics = self.metrics.clone();
        let store = self.store.clone();
        HttpConnectorFuture::new(async move {
            let result = future.await;
            let outcome = match &result {
                Ok(response) => outcome(
                    response.status().as_u16(),
                    response.headers().get("x-amzn-errortype"),
                ),
                Err(_) => "unreachable",
            };
            metrics.provider_call(&store, provider, &call, outcome);
            result
        })
    }
}

/// `secretsmanager.GetSecretValue` -> (ESO's provider label, the call).
fn operation(target: &str) -> Option<(&'static str, &str)> {
    let (service, call) = target.split_once('.')?;
    match service {
        "secretsmanager" => Some((PROVIDER_AWS_SM, call)),
        "AmazonSSM" => Some((PROVIDER_AWS_PS, call)),
        _ => None,
    }
}

/// The class of an answer, from its status and AWS error type only (never its body).
fn outcome(status: u16, error_type: Option<&str>) -> &'static str {
    let error_type = error_type.unwrap_or_default();
    match status {
        200..=299 => "success",
        429 => "throttled",
        _ if error_type.starts_with("ThrottlingException") => "throttled",
        403 => "denied",
        _ if error_type.starts_with("AccessDenied") => "denied",
        _ if error_type.starts_with("ResourceNotFoundException")
            || error_type.starts_with("ParameterNotFound") =>
        {
            "not_found"
        }
        400..=499 => "client_error",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_outcomes() {
        assert_eq!(
            operation("secretsmanager.BatchGetSecretValue"),
            Some((PROVIDER_AWS_SM, "BatchGetSecretValue"))
        );
        assert_eq!(
            operation("AmazonSSM.GetParameters"),
            Some((PROVIDER_AWS_PS, "GetParameters"))
        );
        assert_eq!(outcome(400, Some("ParameterNotFound")), "not_found");
        assert_eq!(
            operation("AWSSecurityTokenServiceV20110615.AssumeRole"),
            None
        );
        assert_eq!(outcome(200, None), "success");
        assert_eq!(
            outcome(400, Some("ThrottlingException:http://")),
            "throttled"
        );
        assert_eq!(outcome(400, Some("ResourceNotFoundException")), "not_found");
        assert_eq!(outcome(400, Some("AccessDeniedException")), "denied");
        assert_eq!(outcome(400, None), "client_error");
        assert_eq!(outcome(503, None), "server_error");
    }
}
