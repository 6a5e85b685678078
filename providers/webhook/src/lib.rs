//! ESO's webhook provider (eso-compatibility.md 5): one HTTP request per read, its URL, headers,
//! body and `result.jsonPath` rendered from templates that see `.remoteRef.key`, `.version`,
//! `.property`, `.namespace` (query-escaped inside `url`) and the data of the store's
//! `secrets[]` as `.<name>.<key>`.
//!
//! Answers as ESO reads them: 404 means the secret does not exist; any other status outside
//! 2xx is an error naming the status; without `result.jsonPath` the body is the value. Messages
//! name the request by its URL template, never the rendered URL, headers or body (they may hold
//! a secret), and never quote the response.
#![forbid(unsafe_code)]

mod render;
mod result;

pub use render::{FieldReferences, Render, TemplateData, query_escape};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lockstep_provider_api::{
    Capabilities, ErrorClass, Fetched, FindQuery, ProviderError, RemoteRef, SecretProvider,
    SecretValue, Validation,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// A request takes at most this long when the store sets no `timeout`. Go's client has no limit
/// by default; an endpoint that never answers must not stall reconciles forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest response read: bigger than any Kubernetes Secret can hold.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// How long validation waits for a TCP connection, as ESO.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(15);

/// `spec.provider.webhook` with its references resolved.
#[derive(Clone, Default)]
pub struct WebhookConfig {
    /// HTTP method; GET when `None` or empty.
    pub method: Option<String>,
    pub url: String,
    /// Header name to value template.
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub timeout: Option<Duration>,
    pub json_path: Option<String>,
    /// PEM certificates that alone are trusted for https URLs (`caBundle` or `caProvider`).
    pub ca_pem: Option<Vec<u8>>,
    /// `secrets[]`: the data of each referenced Secret, under the entry's name.
    pub secrets: TemplateData,
    /// `.remoteRef.namespace`: the ExternalSecret's namespace (the store's when validating).
    pub namespace: String,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("json_path", &self.json_path)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One store's endpoint.
pub struct Webhook {
    config: WebhookConfig,
    method: reqwest::Method,
    http: reqwest::Client,
    renderer: Arc<dyn Render>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// An HTTP client for `config`; templates are rendered by `renderer`.
    pub fn new(config: WebhookConfig, renderer: Arc<dyn Render>) -> Result<Self, ProviderError> {
        let method_text = config
            .method
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or("GET");
        let method = reqwest::Method::from_bytes(method_text.as_bytes()).map_err(|_| {
            ProviderError::invalid(format!("method {method_text:?} is not an HTTP method"))
        })?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout.unwrap_or(DEFAULT_TIMEOUT))
            // Go's client follows up to 10 redirects.
            .redirect(reqwest::redirect::Policy::limited(10));
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
                ProviderError::invalid(
                    "the store's caBundle/caProvider is not a PEM certificate bundle",
                )
            })?;
            if certs.is_empty() {
                return Err(ProviderError::invalid(
                    "the store's caBundle/caProvider holds no PEM certificate",
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| {
            ProviderError::invalid(format!(
                "cannot build the webhook's HTTP client: {}",
                chain(&e)
            ))
        })?;
        Ok(Self {
            config,
            method,
            http,
            renderer,
        })
    }

    /// The request as messages name it: method and URL template.
    fn label(&self) -> String {
        format!("{} {}", self.method, self.config.url)
    }

    /// Template data for one read; remoteRef values query-escaped for the URL when `escaped`.
    fn data(&self, remote: &RemoteRef, escaped: bool) -> TemplateData {
        let escape = |s: &str| {
            if escaped {
                query_escape(s)
            } else {
                s.to_owned()
            }
        };
        let remote_ref = BTreeMap::from([
            ("key".to_owned(), escape(&remote.key)),
            (
                "version".to_owned(),
                escape(remote.version.as_deref().unwrap_or_default()),
            ),
            (
                "property".to_owned(),
                escape(remote.property.as_deref().unwrap_or_default()),
            ),
            ("namespace".to_owned(), self.config.namespace.clone()),
        ])
        .into_iter()
        .map(|(k, v)| (k, SecretValue::from(v)))
        .collect();
        let mut data = self.config.secrets.clone();
        data.insert("remoteRef".to_owned(), remote_ref);
        data
    }

    fn render(
        &self,
        name: &str,
        template: &str,
        data: &TemplateData,
    ) -> Result<SecretValue, ProviderError> {
        self.renderer
            .render(name, template, data)
            .map_err(ProviderError::invalid)
    }

    fn render_text(
        &self,
        name: &str,
        template: &str,
        data: &TemplateData,
    ) -> Result<String, ProviderError> {
        let value = self.render(name, template, data)?;
        String::from_utf8(value.expose().to_vec()).map_err(|_| {
            ProviderError::invalid(format!("template {name} rendered bytes that are not UTF-8"))
        })
    }

    /// Makes the request for `remote` and returns the body of a 2xx answer.
    async fn call(&self, remote: &RemoteRef) -> Result<SecretValue, ProviderError> {
        let escaped = self.data(remote, true);
        let raw = self.data(remote, false);
        let url = self.render_text("url", &self.config.url, &escaped)?;
        let url = reqwest::Url::parse(&url).map_err(|e| {
            ProviderError::invalid(format!(
                "url {:?} does not render to a valid URL for key {:?}: {e}",
                self.config.url, remote.key
            ))
        })?;
        let mut headers = HeaderMap::new();
        for (name, template) in &self.config.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProviderError::invalid(format!("headers: {name:?} is not a valid header name"))
            })?;
            let value = self.render(&format!("headers.{name}"), template, &raw)?;
            let value = HeaderValue::from_bytes(value.expose()).map_err(|_| {
                ProviderError::invalid(format!(
                    "headers.{name} renders to a value that is not a valid header value (a line break or control character)"
                ))
            })?;
            headers.append(header, value);
        }
        let body = match &self.config.body {
            Some(template) if !template.is_empty() => {
                self.render("body", template, &raw)?.expose().to_vec()
            }
            _ => Vec::new(),
        };
        let response = self
            .http
            .request(self.method.clone(), url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(remote, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ProviderError::not_found(format!(
                "{} answered 404 Not Found for key {:?}",
                self.label(),
                remote.key
            )));
        }
        if !status.is_success() {
            return Err(self.status_error(remote, &response));
        }
        read_limited(response).await.map_err(|e| match e {
            ReadError::TooLarge => ProviderError::invalid(format!(
                "{} answered more than {MAX_RESPONSE_BYTES} bytes for key {:?}",
                self.label(),
                remote.key
            )),
            ReadError::Transport(e) => self.transport_error(remote, e),
        })
    }

    fn transport_error(&self, remote: &RemoteRef, e: reqwest::Error) -> ProviderError {
        // The rendered URL may carry a secret (a token in the query): never in a message.
        let e = e.without_url();
        let what = if e.is_timeout() {
            format!(
                "no answer within {:?} (spec.provider.webhook.timeout)",
                self.config.timeout.unwrap_or(DEFAULT_TIMEOUT)
            )
        } else {
            chain(&e)
        };
        ProviderError::new(
            ErrorClass::Unavailable,
            format!("{} for key {:?} failed: {what}", self.label(), remote.key),
        )
    }

    fn status_error(&self, remote: &RemoteRef, response: &reqwest::Response) -> ProviderError {
        let status = response.status();
        let class = match status.as_u16() {
            401 | 403 => ErrorClass::AccessDenied,
            429 => ErrorClass::Throttled,
            304 | 500.. => ErrorClass::Unavailable,
            _ => ErrorClass::Invalid,
        };
        let mut error = ProviderError::new(
            class,
            format!(
                "{} for key {:?}: endpoint gave error {status}",
                self.label(),
                remote.key
            ),
        );
        error.retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
            .map(Duration::from_secs);
        error
    }

    /// The rendered `result.jsonPath`, if any.
    fn json_path(&self, remote: &RemoteRef) -> Result<Option<String>, ProviderError> {
        match self.config.json_path.as_deref().filter(|p| !p.is_empty()) {
            None => Ok(None),
            Some(template) => {
                let path =
                    self.render_text("result.jsonPath", template, &self.data(remote, false))?;
                Ok(Some(path).filter(|p| !p.is_empty()))
            }
        }
    }

    fn result_error(&self, remote: &RemoteRef, message: String) -> ProviderError {
        ProviderError::invalid(format!(
            "{} for key {:?}: {message}",
            self.label(),
            remote.key
        ))
    }
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_limited(mut response: reqwest::Response) -> Result<SecretValue, ReadError> {
    let mut body = zeroize::Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(SecretValue::new(std::mem::take(&mut *body)))
}

/// An error and its causes (connection refused, certificate unknown...), without the URL:
/// a rendered URL may carry a secret.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl SecretProvider for Webhook {
    /// ESO's GetSecret: the body, or the first value `result.jsonPath` selects in it.
    async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError> {
        let path = self.json_path(remote)?;
        let body = self.call(remote).await?;
        let Some(path) = path else {
            return Ok(Fetched::unversioned(body));
        };
        let json = result::parse(body.expose()).map_err(|m| self.result_error(remote, m))?;
        let value = result::single_value(&path, &json).map_err(|m| self.result_error(remote, m))?;
        Ok(Fetched::unversioned(value))
    }

    /// ESO's GetSecretMap: the JSON object the body (or `result.jsonPath`) holds.
    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let path = self.json_path(remote)?;
        let body = self.call(remote).await?;
        let json = result::parse(body.expose()).map_err(|m| self.result_error(remote, m))?;
        result::map(path.as_deref(), json).map_err(|m| self.result_error(remote, m))
    }

    async fn find(
        &self,
        _query: &FindQuery,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        Err(ProviderError::invalid(
            "the webhook provider cannot find secrets (dataFrom.find); use data or dataFrom.extract",
        ))
    }

    async fn put(&self, _remote: &RemoteRef, _value: &SecretValue) -> Result<(), ProviderError> {
        Err(ProviderError::invalid(
            "PushSecret to the webhook provider is not implemented yet",
        ))
    }

    async fn delete(&self, _remote: &RemoteRef) -> Result<(), ProviderError> {
        Err(ProviderError::invalid(
            "PushSecret to the webhook provider is not implemented yet",
        ))
    }

    /// As ESO: the URL's host accepts a TCP connection. A host that is itself a template cannot
    /// be checked before a read.
    async fn validate(&self) -> Result<Validation, ProviderError> {
        let Some((host, port)) = host_and_port(&self.config.url) else {
            return Ok(Validation::Unknown);
        };
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        match tokio::time::timeout(VALIDATE_TIMEOUT, connect).await {
            Ok(Ok(_)) => Ok(Validation::Ready),
            Ok(Err(e)) => Err(ProviderError::new(
                ErrorClass::Unavailable,
                format!(
                    "cannot connect to {host}:{port}, the host of url {:?}: {e}",
                    self.config.url
                ),
            )),
            Err(_) => Err(ProviderError::new(
                ErrorClass::Unavailable,
                format!(
                    "no TCP connection to {host}:{port}, the host of url {:?}, within {VALIDATE_TIMEOUT:?}",
                    self.config.url
                ),
            )),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadOnly
    }
}

/// The host and port of a URL template, when they are not templated themselves.
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    if authority.contains("{{") || authority.is_empty() {
        return None;
    }
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        443
    };
    // `[::1]:8080`, `host:8080`, `host`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_a_url_template_is_found_unless_templated() {
        assert_eq!(
            host_and_port("http://127.0.0.1:8080/get?id={{ .remoteRef.key }}"),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            host_and_port("https://vault.example/x"),
            Some(("vault.example".into(), 443))
        );
        assert_eq!(
            host_and_port("http://example"),
            Some(("example".into(), 80))
        );
        assert_eq!(
            host_and_port("http://[::1]:9000/"),
            Some(("::1".into(), 9000))
        );
        assert_eq!(host_and_port("https://{{ .cfg.host }}/x"), None);
        assert_eq!(host_and_port("not a url"), None);
    }

    #[test]
    fn a_bad_method_or_ca_is_refused_at_once() {
        let config = WebhookConfig {
            url: "http://127.0.0.1/".into(),
            method: Some("GE T".into()),
            ..Default::default()
        };
        let err = Webhook::new(config, Arc::new(FieldReferences)).unwrap_err();
        assert!(
            err.message.contains("not an HTTP method"),
            "{}",
            err.message
        );
        let config = WebhookConfig {
            url: "http://127.0.0.1/".into(),
            ca_pem: Some(b"not pem".to_vec()),
            ..Default::default()
        };
        let err = Webhook::new(config, Arc::new(FieldReferences)).unwrap_err();
        assert!(err.message.contains("caBundle"), "{}", err.message);
    }

    #[test]
    fn secrets_never_print() {
        let config = WebhookConfig {
            url: "http://127.0.0.1/".into(),
            headers: BTreeMap::from([("Authorization".into(), "Bearer {{ .auth.token }}".into())]),
            secrets: BTreeMap::from([(
                "auth".into(),
                BTreeMap::from([("token".into(), SecretValue::from("hunter2".to_string()))]),
            )]),
            ..Default::default()
        };
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("Bearer"),
            "{printed}"
        );
    }
}
