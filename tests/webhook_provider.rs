//! The webhook provider against HTTP(S) endpoints the tests serve on 127.0.0.1: templated URL,
//! headers and body, `result.jsonPath`, maps; an endpoint that fails, stalls or answers
//! something unreadable leaves the Secret as it was and says why; TLS trusts a CA made here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{
    apis, apply, assert_no_value_leaked, assert_unchanged, canary, client, lockstep, wait_for_data,
    wait_for_message, wait_for_reason,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use lockstep::api::secret_store::SecretStore;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;

/// One request as the endpoint received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// How the endpoint answers for key `flaky`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Error,
    Slow,
    NoValue,
    NotJson,
}

/// An HTTP endpoint on 127.0.0.1, plain or TLS.
struct Endpoint {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    mode: Arc<Mutex<Mode>>,
}

struct Answers {
    token: String,
    password: String,
}

impl Endpoint {
    async fn start(answers: Answers, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = Self {
            base: format!("{scheme}://{addr}"),
            seen: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Ok)),
        };
        let (seen, mode, answers) = (
            endpoint.seen.clone(),
            endpoint.mode.clone(),
            Arc::new(answers),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, mode, answers, tls) =
                    (seen.clone(), mode.clone(), answers.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, &seen, &mode, &answers).await;
                            }
                        }
                        None => serve(stream, &seen, &mode, &answers).await,
                    }
                });
            }
        });
        endpoint
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn seen_for(&self, prefix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.target.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// Reads one request, answers it, closes the connection.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    seen: &Mutex<Vec<Seen>>,
    mode: &Mutex<Mode>,
    answers: &Answers,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = Seen {
        method: request_line.first().copied().unwrap_or_default().to_owned(),
        target: request_line.get(1).copied().unwrap_or_default().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().unwrap().push(request.clone());
    let current = *mode.lock().unwrap();
    let (status, body) = answer(&request, current, answers).await;
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The endpoint's API: `/secrets/<key>` needs the bearer token; `/map/<key>` answers an object.
async fn answer(request: &Seen, mode: Mode, answers: &Answers) -> (u16, String) {
    let path = request.target.split('?').next().unwrap_or_default();
    if let Some(key) = path.strip_prefix("/map/") {
        return match key {
            "cfg" => (
                200,
                json!({"user": "u", "port": 5432, "tags": ["a", "b"]}).to_string(),
            ),
            _ => (404, String::new()),
        };
    }
    let Some(key) = path.strip_prefix("/secrets/") else {
        return (404, String::new());
    };
    let authorized = request
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && *v == format!("Bearer {}", answers.token));
    if !authorized {
        return (401, String::new());
    }
    match (key, mode) {
        ("db+pass", _) => (
            200,
            json!({"data": {"value": answers.password}}).to_string(),
        ),
        ("flaky", Mode::Ok) => (200, json!({"data": {"value": "v1"}}).to_string()),
        ("flaky", Mode::Error) => (500, "{}".into()),
        ("flaky", Mode::Slow) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (200, json!({"data": {"value": "late"}}).to_string())
        }
        ("flaky", Mode::NoValue) => (200, json!({"other": 1}).to_string()),
        ("flaky", Mode::NotJson) => (200, "value=v2".into()),
        _ => (404, String::new()),
    }
}

/// A Secret the webhook store may read: it carries ESO's webhook label.
async fn webhook_secret(
    client: &Client,
    ns: &str,
    name: &str,
    key: &str,
    value: &str,
    labelled: bool,
) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let labels = labelled.then(|| {
        [(
            "external-secrets.io/type".to_string(),
            "webhook".to_string(),
        )]
        .into()
    });
    let s = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels,
            ..Default::default()
        },
        data: Some([(key.to_string(), ByteString(value.as_bytes().to_vec()))].into()),
        ..Default::default()
    };
    api.create(&PostParams::default(), &s).await.unwrap();
}

/// A webhook SecretStore manifest with `webhook` as its provider spec.
fn store(name: &str, webhook: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"webhook": webhook}},
    })
}

/// The store reading `/secrets/<key>` with the bearer token of Secret `webhook-auth`.
fn secrets_store(base: &str, extra: Value) -> Value {
    let mut spec = json!({
        "url": format!("{base}/secrets/{{{{ .remoteRef.key }}}}?v={{{{ .remoteRef.version }}}}"),
        "method": "POST",
        // A pipeline with a function: the store's templates run on lockstep's template engine.
        "headers": {"Authorization": "Bearer {{ .auth.token | trim }}", "Content-Type": "application/json"},
        "body": "{\"key\":\"{{ .remoteRef.key }}\",\"ns\":\"{{ .remoteRef.namespace }}\"}",
        "result": {"jsonPath": "$.data.value"},
        "secrets": [{"name": "auth", "secretRef": {"name": "webhook-auth", "key": "token"}}],
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    spec
}

fn external_secret(name: &str, store: &str, spec: Value) -> Value {
    let mut es = common::external_secret(name, spec);
    es["spec"]["secretStoreRef"] = json!({"name": store, "kind": "SecretStore"});
    es
}

#[tokio::test]
async fn templated_requests_read_a_value_with_json_path_and_a_map() {
    let client = client().await;
    let log = lockstep();
    let ns = common::TestNamespace::new(&client, "webhook").await;
    let (token, password) = (canary("webhook-token"), canary("webhook-password"));
    let endpoint = Endpoint::start(
        Answers {
            token: token.clone(),
            password: password.clone(),
        },
        None,
    )
    .await;
    webhook_secret(&client, ns.name(), "webhook-auth", "token", &token, true).await;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    apply(
        &stores,
        store("hook", secrets_store(&endpoint.base, json!({}))),
    )
    .await;
    apply(
        &stores,
        store(
            "maps",
            json!({"url": format!("{}/map/{{{{ .remoteRef.key }}}}", endpoint.base)}),
        ),
    )
    .await;
    for name in ["hook", "maps"] {
        common::wait_for_store(&client, ns.name(), name, "True", "store validated").await;
    }

    let (es_api, secrets) = apis(&client, ns.name());
    let spec = json!({
        "data": [{"secretKey": "password", "remoteRef": {"key": "db pass", "version": "v 1"}}],
        "dataFrom": [{"extract": {"key": "cfg"}, "sourceRef": {"storeRef": {"name": "maps", "kind": "SecretStore"}}}],
    });
    apply(&es_api, external_secret("app", "hook", spec)).await;
    wait_for_data(
        &secrets,
        "app",
        &[
            ("password", &password),
            ("user", "u"),
            ("port", "5432"),
            ("tags", r#"["a","b"]"#),
        ],
    )
    .await;

    let request = endpoint
        .seen_for("/secrets/db+pass")
        .pop()
        .expect("the endpoint was called");
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.target, "/secrets/db+pass?v=v+1",
        "remoteRef values are query-escaped in the url"
    );
    assert_eq!(
        request.body,
        format!(r#"{{"key":"db pass","ns":"{}"}}"#, ns.name()),
        "the body gets them as they are"
    );
    assert!(
        request
            .headers
            .contains(&("content-type".into(), "application/json".into()))
    );

    // A key the endpoint does not know: 404 is "does not exist".
    let spec = json!({"data": [{"secretKey": "x", "remoteRef": {"key": "unknown"}}]});
    apply(&es_api, external_secret("gone", "hook", spec)).await;
    let message = wait_for_reason(&es_api, "gone", "SecretSyncedError").await;
    assert!(
        message.contains("answered 404 Not Found for key \"unknown\""),
        "{message}"
    );
    assert_no_value_leaked(&client, ns.name(), &[log], &[&token, &password]).await;
}

#[tokio::test]
async fn a_failing_stalling_or_unreadable_endpoint_keeps_the_secret_and_says_why() {
    let client = client().await;
    let log = lockstep();
    let ns = common::TestNamespace::new(&client, "webhook-fail").await;
    let token = canary("webhook-token");
    let endpoint = Endpoint::start(
        Answers {
            token: token.clone(),
            password: "unused".into(),
        },
        None,
    )
    .await;
    webhook_secret(&client, ns.name(), "webhook-auth", "token", &token, true).await;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    apply(
        &stores,
        store(
            "hook",
            secrets_store(&endpoint.base, json!({"timeout": "1s"})),
        ),
    )
    .await;
    common::wait_for_store(&client, ns.name(), "hook", "True", "store validated").await;

    let (es_api, secrets) = apis(&client, ns.name());
    let spec = json!({"refreshInterval": "1s", "data": [{"secretKey": "value", "remoteRef": {"key": "flaky"}}]});
    apply(&es_api, external_secret("app", "hook", spec)).await;
    let before = wait_for_data(&secrets, "app", &[("value", "v1")]).await;

    for (mode, needle) in [
        (Mode::Error, "endpoint gave error 500 Internal Server Error"),
        (
            Mode::Slow,
            "no answer within 1s (spec.provider.webhook.timeout)",
        ),
        (
            Mode::NoValue,
            "result.jsonPath \"$.data.value\" selects nothing in the response",
        ),
        (Mode::NotJson, "the response is not JSON"),
    ] {
        endpoint.set(mode);
        let message = wait_for_message(&es_api, "app", "SecretSyncedError", needle).await;
        assert!(
            message.contains("POST http://127.0.0.1"),
            "names the request: {message}"
        );
        assert!(
            message.contains("{{ .remoteRef.key }}"),
            "by its template, not the rendered URL: {message}"
        );
        assert_unchanged(&secrets, &before).await;
    }

    // A store whose secrets[] Secret lacks ESO's label, and one whose endpoint is down, are not Ready.
    webhook_secret(&client, ns.name(), "unlabelled", "token", &token, false).await;
    let mut unlabelled = secrets_store(&endpoint.base, json!({}));
    unlabelled["secrets"][0]["secretRef"]["name"] = json!("unlabelled");
    apply(&stores, store("unlabelled", unlabelled)).await;
    let message = common::wait_for_store(
        &client,
        ns.name(),
        "unlabelled",
        "False",
        "external-secrets.io/type=webhook",
    )
    .await;
    assert!(
        message.contains(&format!("Secret {}/unlabelled", ns.name())),
        "{message}"
    );
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    apply(
        &stores,
        store("down", json!({"url": format!("http://127.0.0.1:{port}/x")})),
    )
    .await;
    common::wait_for_store(
        &client,
        ns.name(),
        "down",
        "False",
        &format!("cannot connect to 127.0.0.1:{port}"),
    )
    .await;
    assert_no_value_leaked(&client, ns.name(), &[log], &[&token]).await;
}

/// A CA and a certificate for 127.0.0.1 signed by it: the acceptor, and the CA's PEM.
fn tls() -> (tokio_rustls::TlsAcceptor, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lockstep webhook test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}

#[tokio::test]
async fn https_endpoints_are_trusted_through_the_stores_ca_only() {
    let client = client().await;
    let log = lockstep();
    let ns = common::TestNamespace::new(&client, "webhook-tls").await;
    let (token, password) = (canary("webhook-token"), canary("webhook-password"));
    let (acceptor, ca_pem) = tls();
    let endpoint = Endpoint::start(
        Answers {
            token: token.clone(),
            password: password.clone(),
        },
        Some(acceptor),
    )
    .await;
    webhook_secret(&client, ns.name(), "webhook-auth", "token", &token, true).await;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), ns.name());
    let trusted = secrets_store(
        &endpoint.base,
        json!({"caBundle": STANDARD.encode(&ca_pem)}),
    );
    apply(&stores, store("tls", trusted)).await;
    // A token in the query, as some APIs want it: it must not reach a message through the URL.
    let mut untrusted = secrets_store(&endpoint.base, json!({}));
    untrusted["url"] = json!(format!(
        "{}/secrets/{{{{ .remoteRef.key }}}}?token={{{{ .auth.token }}}}",
        endpoint.base
    ));
    apply(&stores, store("untrusted", untrusted)).await;
    for name in ["tls", "untrusted"] {
        common::wait_for_store(&client, ns.name(), name, "True", "store validated").await;
    }

    let (es_api, secrets) = apis(&client, ns.name());
    let spec = json!({"data": [{"secretKey": "password", "remoteRef": {"key": "db pass"}}]});
    apply(&es_api, external_secret("app", "tls", spec.clone())).await;
    wait_for_data(&secrets, "app", &[("password", &password)]).await;

    apply(&es_api, external_secret("untrusted", "untrusted", spec)).await;
    let message = wait_for_reason(&es_api, "untrusted", "SecretSyncedError").await;
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "says the certificate is not trusted: {message}"
    );
    assert!(
        !message.contains("db+pass"),
        "the rendered URL is not in the message: {message}"
    );
    assert!(
        secrets.get_opt("untrusted").await.unwrap().is_none(),
        "no Secret from an untrusted endpoint"
    );
    assert_no_value_leaked(&client, ns.name(), &[log], &[&token, &password]).await;
}
