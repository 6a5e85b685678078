//! The AWS Secrets Manager provider against moto, configured only from the environment
//! (`target/env/env.sh`): versions, binary values, tags through `metadataPolicy: Fetch`,
//! `dataFrom.find`, retries and regions; and one ExternalSecret with `dataFrom.find` through a
//! running `lockstep run`. Each test uses remote secret names of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use common::{
    TestNamespace, WAIT, apply_manifest, client, env, eventually, lockstep, secret_text,
    secrets_manager, tenant, unique, wait_for_reason,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use lockstep::api::external_secret::ExternalSecret;
use lockstep_provider_api::{ErrorClass, FindQuery, RemoteRef, SecretProvider, SecretValue};
use lockstep_provider_aws::credentials::{BaseCredentials, Identity, connect};
use lockstep_provider_aws::{RetrySettings, SecretsManager};
use serde_json::{Value, json};

async fn provider() -> SecretsManager {
    env("AWS_ENDPOINT_URL");
    SecretsManager::new(&aws_config::load_from_env().await, None)
}

fn key(key: &str) -> RemoteRef {
    RemoteRef {
        key: key.to_owned(),
        ..Default::default()
    }
}

fn at(key: &str, version: &str) -> RemoteRef {
    RemoteRef {
        key: key.to_owned(),
        version: Some(version.to_owned()),
        ..Default::default()
    }
}

fn text(map: &BTreeMap<String, SecretValue>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v.expose()).into_owned()))
        .collect()
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn find_query(path: Option<&str>, name: Option<&str>, tags: &[(&str, &str)]) -> FindQuery {
    FindQuery {
        path: path.map(str::to_owned),
        name_regexp: name.map(str::to_owned),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A tag value no other test uses, and never a prefix of another one (AWS matches tag values by
/// prefix).
fn unique_tag_value(prefix: &str) -> String {
    format!("{}-x", unique(prefix))
}

async fn create(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
    tags: &[(&str, &str)],
) -> String {
    let mut req = sm.create_secret().name(name).secret_string(value);
    for (k, v) in tags {
        req = req.tags(Tag::builder().key(*k).value(*v).build());
    }
    req.send().await.unwrap().version_id.unwrap()
}

#[tokio::test]
async fn versions_select_the_current_the_previous_and_a_version_id() {
    let sm = secrets_manager().await;
    let p = provider().await;
    let name = unique("versions/db");
    let first = create(&sm, &name, "value-1", &[]).await;
    sm.put_secret_value()
        .secret_id(&name)
        .secret_string("value-2")
        .send()
        .await
        .unwrap();

    assert_eq!(p.get(&key(&name)).await.unwrap().value.expose(), b"value-2");
    assert_eq!(
        p.get(&at(&name, "AWSCURRENT"))
            .await
            .unwrap()
            .value
            .expose(),
        b"value-2"
    );
    assert_eq!(
        p.get(&at(&name, "AWSPREVIOUS"))
            .await
            .unwrap()
            .value
            .expose(),
        b"value-1"
    );
    assert_eq!(
        p.get(&at(&name, &format!("uuid/{first}")))
            .await
            .unwrap()
            .value
            .expose(),
        b"value-1"
    );
    // The read reports the version it returned, for the audit record.
    let previous = p.get(&at(&name, "AWSPREVIOUS")).await.unwrap().version;
    assert_eq!(previous.id.as_deref(), Some(first.as_str()));
    assert_eq!(previous.stages, vec!["AWSPREVIOUS".to_string()]);
    let current = p.get(&key(&name)).await.unwrap().version;
    assert_ne!(current.id.as_deref(), Some(first.as_str()));
    assert_eq!(current.stages, vec!["AWSCURRENT".to_string()]);

    let err = p
        .get(&at(&name, "uuid/00000000-0000-0000-0000-000000000000"))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{}", err.message);
    assert!(
        err.message
            .contains("VersionId 00000000-0000-0000-0000-000000000000"),
        "{}",
        err.message
    );
    let err = p.get(&at(&name, "AWSPENDING")).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{}", err.message);
    assert!(
        err.message.contains("version stage AWSPENDING"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_binary_secret_is_returned_as_its_bytes() {
    let sm = secrets_manager().await;
    let name = unique("binary/key");
    let bytes = vec![0u8, 159, 146, 150, 255, 10, 0];
    sm.create_secret()
        .name(&name)
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await
        .unwrap();
    let value = provider().await.get(&key(&name)).await.unwrap().value;
    assert_eq!(value.expose(), bytes.as_slice());
}

#[tokio::test]
async fn metadata_fetch_returns_the_tags_as_eso_does() {
    let sm = secrets_manager().await;
    let p = provider().await;
    let name = unique("metadata/db");
    create(
        &sm,
        &name,
        "not-returned",
        &[("team", "payments"), ("env", "prod"), ("cost-center", "42")],
    )
    .await;
    let remote = RemoteRef {
        key: name.clone(),
        fetch_metadata: true,
        ..Default::default()
    };
    let tags = p.get(&remote).await.unwrap().value;
    // Go's json.Marshal of a map: keys sorted, no spaces.
    assert_eq!(
        tags.expose(),
        br#"{"cost-center":"42","env":"prod","team":"payments"}"#
    );
    // `property` then selects a tag, as in the controller.
    let team = lockstep::materialize::select_property(&name, &tags, "team").unwrap();
    assert_eq!(team.expose(), b"payments");

    let untagged = unique("metadata/untagged");
    create(&sm, &untagged, "v", &[]).await;
    let remote = RemoteRef {
        key: untagged,
        fetch_metadata: true,
        ..Default::default()
    };
    assert_eq!(p.get(&remote).await.unwrap().value.expose(), b"{}");

    let missing = RemoteRef {
        key: unique("metadata/missing"),
        fetch_metadata: true,
        ..Default::default()
    };
    let err = p.get(&missing).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{}", err.message);
    assert!(err.message.contains("DescribeSecret"), "{}", err.message);
}

#[tokio::test]
async fn a_secret_scheduled_for_deletion_is_missing() {
    let sm = secrets_manager().await;
    let name = unique("deleted/db");
    create(&sm, &name, "gone-soon", &[]).await;
    sm.delete_secret()
        .secret_id(&name)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let err = provider().await.get(&key(&name)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{}", err.message);
    assert!(
        err.message.contains("scheduled for deletion"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("gone-soon"));
}

#[tokio::test]
async fn find_by_name_regexp_with_and_without_a_path() {
    let sm = secrets_manager().await;
    let p = provider().await;
    let root = unique("find-name");
    let (app_db, app_cache, other_db) = (
        format!("{root}/app/db"),
        format!("{root}/app/cache"),
        format!("{root}/other/db"),
    );
    create(&sm, &app_db, "app-db", &[]).await;
    create(&sm, &app_cache, "app-cache", &[]).await;
    create(&sm, &other_db, "other-db", &[]).await;

    // Unanchored client-side pattern over every listed name, keyed by the full name.
    let found = p
        .find(&find_query(None, Some(&format!("^{root}/app/")), &[]))
        .await
        .unwrap();
    assert_eq!(
        text(&found),
        expected(&[(&app_cache, "app-cache"), (&app_db, "app-db")])
    );

    let found = p
        .find(&find_query(Some(&format!("{root}/")), Some("db$"), &[]))
        .await
        .unwrap();
    assert_eq!(
        text(&found),
        expected(&[(&app_db, "app-db"), (&other_db, "other-db")])
    );

    let none = p
        .find(&find_query(Some(&format!("{root}/")), Some("nothing"), &[]))
        .await
        .unwrap();
    assert!(none.is_empty());

    let err = p
        .find(&find_query(Some(&format!("{root}/")), None, &[]))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Invalid);
}

#[tokio::test]
async fn find_by_tags_with_and_without_a_path_and_a_name() {
    let sm = secrets_manager().await;
    let p = provider().await;
    let root = unique("find-tags");
    let suite = unique_tag_value("suite");
    let (a, b, c) = (
        format!("{root}/a"),
        format!("{root}/b"),
        format!("{root}/c"),
    );
    create(
        &sm,
        &a,
        "alpha-value",
        &[("suite", &suite), ("kind", "alpha")],
    )
    .await;
    let binary = vec![1u8, 0, 255];
    sm.create_secret()
        .name(&b)
        .secret_binary(Blob::new(binary.clone()))
        .tags(Tag::builder().key("suite").value(&suite).build())
        .tags(Tag::builder().key("kind").value("beta").build())
        .send()
        .await
        .unwrap();
    create(
        &sm,
        &c,
        "other-suite",
        &[("suite", &unique_tag_value("suite"))],
    )
    .await;

    let found = p
        .find(&find_query(None, None, &[("suite", &suite)]))
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), [&a, &b]);
    assert_eq!(found[&a].expose(), b"alpha-value");
    assert_eq!(found[&b].expose(), binary.as_slice());

    let found = p
        .find(&find_query(
            None,
            None,
            &[("suite", &suite), ("kind", "beta")],
        ))
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), [&b]);

    let found = p
        .find(&find_query(Some(&a), None, &[("suite", &suite)]))
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), [&a]);

    let found = p
        .find(&find_query(None, Some("/b$"), &[("suite", &suite)]))
        .await
        .unwrap();
    assert_eq!(found.keys().collect::<Vec<_>>(), [&b]);
}

#[tokio::test]
async fn find_reads_twenty_secrets_per_call() {
    let sm = secrets_manager().await;
    let root = unique("find-batch");
    let batch = unique_tag_value("batch");
    let mut want = BTreeMap::new();
    for i in 0..25 {
        let name = format!("{root}/n/{i:02}");
        create(&sm, &name, &format!("value-{i}"), &[("batch", &batch)]).await;
        want.insert(name, format!("value-{i}"));
    }

    // A name pattern: one ListSecrets page, then the 25 matches in two batches; ESO would make
    // 25 GetSecretValue calls here (without a path) or read every secret under the path.
    let relay = CountingRelay::start();
    let found = relay
        .provider()
        .await
        .find(&find_query(Some(&format!("{root}/n/")), Some("."), &[]))
        .await
        .unwrap();
    assert_eq!(text(&found), want);
    assert_eq!(
        relay.counts(),
        expected(&[("BatchGetSecretValue", "2"), ("ListSecrets", "1")])
    );

    // Tags alone: BatchGetSecretValue with the filters, 20 per page, as ESO does.
    let relay = CountingRelay::start();
    let found = relay
        .provider()
        .await
        .find(&find_query(None, None, &[("batch", &batch)]))
        .await
        .unwrap();
    assert_eq!(text(&found), want);
    assert_eq!(relay.counts(), expected(&[("BatchGetSecretValue", "2")]));
}

fn static_identity(region: &str, retry: Option<RetrySettings>) -> Identity {
    Identity {
        region: region.to_owned(),
        base: BaseCredentials::Static {
            access_key_id: SecretValue::from(env("AWS_ACCESS_KEY_ID")),
            secret_access_key: SecretValue::from(env("AWS_SECRET_ACCESS_KEY")),
            session_token: None,
        },
        additional_roles: Vec::new(),
        role: None,
        session_name: "lockstep-test".into(),
        retry,
    }
}

#[tokio::test]
async fn retry_settings_set_the_attempts_and_a_fixed_delay() {
    let interval = Duration::from_millis(400);
    let retry = RetrySettings::from_spec(Some(3), Some(interval));
    let connected = connect(&static_identity("us-east-1", Some(retry)))
        .await
        .unwrap();
    let failing = FailingEndpoint::start();
    let config = failing.config(&connected.config).await;
    let started = Instant::now();
    let err = SecretsManager::new(&config, None)
        .get(&key("retried"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.class, ErrorClass::Unavailable, "{}", err.message);
    assert_eq!(
        failing.requests(),
        3,
        "maxRetries is the number of attempts"
    );
    // Two waits of exactly the interval; jittered backoff would wait less than that.
    assert!(elapsed >= interval * 2, "waited only {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "waited {elapsed:?}");

    let once = connect(&static_identity(
        "us-east-1",
        Some(RetrySettings::from_spec(Some(1), None)),
    ))
    .await
    .unwrap();
    let failing = FailingEndpoint::start();
    let config = failing.config(&once.config).await;
    SecretsManager::new(&config, None)
        .get(&key("once"))
        .await
        .unwrap_err();
    assert_eq!(failing.requests(), 1);
}

#[tokio::test]
async fn a_region_that_is_not_an_aws_region_is_refused() {
    for region in ["mars-north-9", "US East"] {
        let err = connect(&static_identity(region, None)).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(
            err.message.contains(&format!("{region:?}")),
            "{}",
            err.message
        );
        assert!(err.message.contains("us-east-1"), "{}", err.message);
    }
    assert!(connect(&static_identity("eu-west-1", None)).await.is_ok());
}

// --- An ExternalSecret with dataFrom.find, through `lockstep run` --------------------------------

fn find_external_secret(name: &str, data_from: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
            "target": {"name": name},
            "dataFrom": data_from,
        },
    })
}

#[tokio::test]
async fn an_external_secret_syncs_what_find_selects() {
    let client = client().await;
    let ns = tenant(&client, "find").await;
    let sm = secrets_manager().await;
    let root = unique("find-e2e");
    let owner = unique_tag_value("owner");
    create(&sm, &format!("{root}/db/user"), "app-user", &[]).await;
    create(&sm, &format!("{root}/db/password"), "app-password", &[]).await;
    create(
        &sm,
        &format!("{root}/cache"),
        "cache-url",
        &[("owner", &owner)],
    )
    .await;
    create(&sm, &format!("{root}/unrelated"), "not-selected", &[]).await;

    apply_manifest(
        &client,
        ns.name(),
        find_external_secret(
            "found",
            json!([
                {"find": {"path": format!("{root}/"), "name": {"regexp": "/db/"}}},
                {"find": {"tags": {"owner": owner}, "conversionStrategy": "Unicode"}},
            ]),
        ),
    )
    .await;

    // Keys are the secret names converted: `/` becomes `_` (Default) or `_U002f_` (Unicode).
    let want = expected(&[
        (&format!("{root}_db_user"), "app-user"),
        (&format!("{root}_db_password"), "app-password"),
        (&format!("{root}_U002f_cache"), "cache-url"),
    ]);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    eventually("the Secret to hold what find selected", WAIT, || async {
        (secret_text(&secrets, "found").await.as_ref() == Some(&want)).then_some(())
    })
    .await;
    let es_api: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    wait_for_reason(&es_api, "found", "SecretSynced").await;

    // A find with neither a name nor tags is reported on the ExternalSecret, as ESO does.
    apply_manifest(
        &client,
        ns.name(),
        find_external_secret("path-only", json!([{"find": {"path": format!("{root}/")}}])),
    )
    .await;
    let message = wait_for_reason(&es_api, "path-only", "SecretSyncedError").await;
    assert!(
        message.contains("spec.dataFrom[0].find") && message.contains("name.regexp or tags"),
        "{message}"
    );
}

#[tokio::test]
async fn a_store_with_a_region_that_is_not_an_aws_region_is_not_ready() {
    let client = client().await;
    lockstep();
    let ns = TestNamespace::new(&client, "region").await;
    let store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": "mars"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "mars-north-9"}}},
    });
    apply_manifest(&client, ns.name(), store).await;
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), ns.name());
    let message = eventually("the store to report its region", WAIT, || async {
        let store = stores.get("mars").await.unwrap();
        let c = store.status?.conditions.into_iter().next()?;
        (c.status.to_string() == "False").then(|| c.message.unwrap_or_default())
    })
    .await;
    assert!(
        message.contains("region \"mars-north-9\" is not an AWS region name")
            && message.contains("us-east-1"),
        "{message}"
    );
}

// --- Observing the calls from outside lockstep ---------------------------------------------------

/// A relay in front of moto that counts the Secrets Manager operations passing through it, by
/// their `X-Amz-Target` header: which calls the provider made, seen on the wire.
struct CountingRelay {
    url: String,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl CountingRelay {
    fn start() -> Self {
        let upstream = env("AWS_ENDPOINT_URL")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
        let shared = counts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, counts) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || relay(conn, &upstream, &counts));
            }
        });
        Self { url, counts }
    }

    /// A provider whose calls go through this relay; everything else from the environment.
    async fn provider(&self) -> SecretsManager {
        let config = aws_config::from_env().endpoint_url(&self.url).load().await;
        SecretsManager::new(&config, None)
    }

    fn counts(&self) -> BTreeMap<String, String> {
        self.counts
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }
}

fn relay(client: TcpStream, upstream: &str, counts: &Mutex<BTreeMap<String, usize>>) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let (mut from_client, mut to_server) = (client, server);
    let mut buf = [0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match from_client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..end + 2).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("x-amz-target")
            {
                let op = value.trim();
                let op = op.strip_prefix("secretsmanager.").unwrap_or(op);
                *counts.lock().unwrap().entry(op.to_owned()).or_default() += 1;
            }
        }
        if to_server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to_server.shutdown(Shutdown::Both);
}

/// An endpoint that answers every request with 503 and counts them: a Secrets Manager outage.
struct FailingEndpoint {
    url: String,
    requests: Arc<Mutex<usize>>,
}

impl FailingEndpoint {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<usize>> = Arc::default();
        let shared = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let requests = shared.clone();
                std::thread::spawn(move || answer_503(conn, &requests));
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }

    /// A configuration that sends every call here, with the retry configuration `connected`
    /// carries. (An endpoint set on `connected` itself would lose to the environment's
    /// AWS_ENDPOINT_URL when the client is built; an endpoint given to the loader does not.)
    async fn config(&self, connected: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        let retry = connected
            .retry_config()
            .cloned()
            .expect("connect sets the retry configuration");
        aws_config::from_env()
            .endpoint_url(&self.url)
            .retry_config(retry)
            .load()
            .await
    }
}

/// Reads each request on the connection (headers and Content-Length body) and answers 503.
fn answer_503(mut conn: TcpStream, requests: &Mutex<usize>) {
    let body = r#"{"__type":"InternalServiceError","message":"unavailable for the test"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/x-amz-json-1.1\r\n\
         x-amzn-ErrorType: InternalServiceError\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let Some(head_end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&pending[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while pending.len() < head_end + 4 + length {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        pending.drain(..head_end + 4 + length);
        *requests.lock().unwrap() += 1;
        if conn.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
