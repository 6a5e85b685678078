//! The AWS Parameter Store provider against moto, configured only from the environment
//! (`target/env/env.sh`): each parameter type, versions and labels, tags through
//! `metadataPolicy: Fetch`, GetParameters batches, `dataFrom.find` by path and by tags; and an
//! ExternalSecret through a SecretStore with `service: ParameterStore` and a running
//! `lockstep run`, including inputs it rejects while the Secret keeps its data.
//!
//! Calls are counted by lockstep's own metrics wrapper around the SDK's HTTP client (the one a
//! running lockstep uses), so a count is what went over the wire to moto.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{ParameterType, Tag};
use common::{
    TestNamespace, apply_manifest, assert_no_value_leaked, assert_unchanged, canary, client, env,
    lockstep, unique, wait_for_data, wait_for_message, wait_for_reason,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use lockstep::api::external_secret::ExternalSecret;
use lockstep::telemetry::Metrics;
use lockstep_provider_api::{ErrorClass, FindQuery, RemoteRef, SecretProvider, SecretValue};
use lockstep_provider_aws::ParameterStore;
use serde_json::{Value, json};

async fn ssm() -> aws_sdk_ssm::Client {
    env("AWS_ENDPOINT_URL");
    aws_sdk_ssm::Client::new(&aws_config::load_from_env().await)
}

/// A provider whose calls are counted in `metrics`, as a running lockstep counts them.
async fn provider(metrics: &Metrics) -> ParameterStore {
    env("AWS_ENDPOINT_URL");
    let config = lockstep::telemetry::aws::counted(
        aws_config::load_from_env().await,
        metrics.clone(),
        "test".into(),
    );
    ParameterStore::new(&config, None)
}

/// The Parameter Store calls counted in `metrics`, by name.
fn calls(metrics: &Metrics) -> BTreeMap<String, u64> {
    let text = metrics.encode().unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("lockstep_provider_calls_total{") else {
            continue;
        };
        if !rest.contains("provider=\"AWS/ParameterStore\"") {
            continue;
        }
        let op = rest
            .split("operation=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned();
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *out.entry(op).or_default() += n;
    }
    out
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Puts `value` (overwriting), with `tags` on creation; returns the new version.
async fn put(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    kind: ParameterType,
    tags: &[(&str, &str)],
) -> i64 {
    let mut req = ssm.put_parameter().name(name).value(value).r#type(kind);
    if tags.is_empty() {
        req = req.overwrite(true);
    }
    for (k, v) in tags {
        req = req.tags(Tag::builder().key(*k).value(*v).build().unwrap());
    }
    req.send().await.unwrap().version
}

fn key(name: &str) -> RemoteRef {
    RemoteRef {
        key: name.to_owned(),
        ..Default::default()
    }
}

fn at(name: &str, version: &str) -> RemoteRef {
    RemoteRef {
        key: name.to_owned(),
        version: Some(version.to_owned()),
        ..Default::default()
    }
}

fn text(value: &SecretValue) -> String {
    String::from_utf8_lossy(value.expose()).into_owned()
}

fn texts(map: &BTreeMap<String, SecretValue>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), text(v))).collect()
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A parameter hierarchy no other test uses.
fn root(prefix: &str) -> String {
    format!("/{}", unique(prefix))
}

#[tokio::test]
async fn each_type_reads_as_stored_and_secure_strings_decrypted() {
    let ssm = ssm().await;
    let metrics = Metrics::new();
    let p = provider(&metrics).await;
    let root = root("types");
    put(
        &ssm,
        &format!("{root}/plain"),
        "plain-text",
        ParameterType::String,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/secure"),
        "s3cr3t",
        ParameterType::SecureString,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/list"),
        "a,b,c",
        ParameterType::StringList,
        &[],
    )
    .await;

    let plain = p.get(&key(&format!("{root}/plain"))).await.unwrap();
    assert_eq!(text(&plain.value), "plain-text");
    assert_eq!(plain.version.id.as_deref(), Some("1"));
    let secure = p.get(&key(&format!("{root}/secure"))).await.unwrap();
    assert_eq!(text(&secure.value), "s3cr3t", "decrypted");
    // A StringList is its comma-separated text, as ESO returns it.
    let list = p.get(&key(&format!("{root}/list"))).await.unwrap();
    assert_eq!(text(&list.value), "a,b,c");
    assert_eq!(calls(&metrics), counts(&[("GetParameter", 3)]));

    let missing = p.get(&key(&format!("{root}/missing"))).await.unwrap_err();
    assert_eq!(missing.class, ErrorClass::NotFound);
    assert!(
        missing
            .message
            .starts_with(&format!("parameter \"{root}/missing\" was not found")),
        "{}",
        missing.message
    );
}

#[tokio::test]
async fn versions_and_labels_select_as_aws_does() {
    let ssm = ssm().await;
    let p = provider(&Metrics::new()).await;
    let name = format!("{}/db", root("versions"));
    put(&ssm, &name, "one", ParameterType::SecureString, &[]).await;
    put(&ssm, &name, "two", ParameterType::SecureString, &[]).await;
    ssm.label_parameter_version()
        .name(&name)
        .parameter_version(1)
        .labels("stable")
        .send()
        .await
        .unwrap();

    let latest = p.get(&key(&name)).await.unwrap();
    assert_eq!(
        (text(&latest.value), latest.version.id.as_deref()),
        ("two".into(), Some("2"))
    );
    let first = p.get(&at(&name, "1")).await.unwrap();
    assert_eq!(text(&first.value), "one");
    let stable = p.get(&at(&name, "stable")).await.unwrap();
    assert_eq!(text(&stable.value), "one");
    assert_eq!(stable.version.id.as_deref(), Some("1"));
    assert_eq!(stable.version.stages, ["stable"]);

    // A version that does not exist is an error, not a parameter that is gone (as in ESO).
    let err = p.get(&at(&name, "9")).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Invalid);
    assert!(
        err.message.contains("at version 9")
            && err.message.contains("ParameterVersionNotFound")
            && err.message.contains("check remoteRef.version"),
        "{}",
        err.message
    );
    // moto answers an unknown label with ParameterNotFound (AWS with ParameterVersionNotFound).
    let err = p.get(&at(&name, "nolabel")).await.unwrap_err();
    assert!(
        err.message.contains("at label \"nolabel\"") && err.message.contains("remoteRef.version"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn metadata_fetch_returns_the_tags_as_a_json_object() {
    let ssm = ssm().await;
    let metrics = Metrics::new();
    let p = provider(&metrics).await;
    let name = format!("{}/tagged", root("tags"));
    put(
        &ssm,
        &name,
        "value",
        ParameterType::String,
        &[("team", "a<b"), ("env", "prod")],
    )
    .await;
    let tags = p
        .get(&RemoteRef {
            fetch_metadata: true,
            // As for Secrets Manager, the version does not apply to tags.
            version: Some("1".into()),
            ..key(&name)
        })
        .await
        .unwrap();
    // Keys sorted, Go's escaping: byte for byte what ESO writes.
    assert_eq!(text(&tags.value), r#"{"env":"prod","team":"a\u003cb"}"#);
    assert_eq!(calls(&metrics), counts(&[("ListTagsForResource", 1)]));

    let err = p
        .get(&RemoteRef {
            fetch_metadata: true,
            ..key(&format!("{name}-missing"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::NotFound, "{}", err.message);
}

#[tokio::test]
async fn get_many_reads_ten_per_call_and_a_bad_read_fails_alone() {
    let ssm = ssm().await;
    let root = root("batch");
    let mut remotes = Vec::new();
    for i in 0..23 {
        let name = format!("{root}/p{i:02}");
        put(
            &ssm,
            &name,
            &format!("value-{i}"),
            ParameterType::SecureString,
            &[],
        )
        .await;
        remotes.push(key(&name));
    }
    put(
        &ssm,
        &format!("{root}/p00"),
        "value-0-v2",
        ParameterType::SecureString,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/tagged"),
        "x",
        ParameterType::String,
        &[("k", "v")],
    )
    .await;
    remotes.push(key(&format!("{root}/missing")));
    remotes.push(at(&format!("{root}/p00"), "1"));
    remotes.push(at(&format!("{root}/p01"), "9"));
    remotes.push(key(&format!("{root}/p02")));
    remotes.push(RemoteRef {
        fetch_metadata: true,
        ..key(&format!("{root}/tagged"))
    });

    let metrics = Metrics::new();
    let values = provider(&metrics).await.get_many(&remotes).await;
    assert_eq!(values.len(), remotes.len());
    assert_eq!(text(&values[0].as_ref().unwrap().value), "value-0-v2");
    for (i, value) in values.iter().enumerate().take(23).skip(1) {
        assert_eq!(text(&value.as_ref().unwrap().value), format!("value-{i}"));
    }
    let missing = values[23].as_ref().unwrap_err();
    assert_eq!(missing.class, ErrorClass::NotFound);
    assert!(
        missing.message.contains(&format!("{root}/missing")),
        "{}",
        missing.message
    );
    assert_eq!(text(&values[24].as_ref().unwrap().value), "value-0");
    let bad_version = values[25].as_ref().unwrap_err();
    assert_eq!(bad_version.class, ErrorClass::Invalid);
    assert!(
        bad_version.message.contains("at version 9"),
        "{}",
        bad_version.message
    );
    assert_eq!(text(&values[26].as_ref().unwrap().value), "value-2");
    assert_eq!(text(&values[27].as_ref().unwrap().value), r#"{"k":"v"}"#);

    // 25 distinct reads of values: three GetParameters calls. The missing version is read alone
    // to tell it from a missing parameter; tags have no batch call.
    assert_eq!(
        calls(&metrics),
        counts(&[
            ("GetParameter", 1),
            ("GetParameters", 3),
            ("ListTagsForResource", 1)
        ])
    );
}

fn find(path: Option<&str>, name: Option<&str>, tags: &[(&str, &str)]) -> FindQuery {
    FindQuery {
        path: path.map(str::to_owned),
        name_regexp: name.map(str::to_owned),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn find_by_path_reads_recursively_and_matches_names() {
    let ssm = ssm().await;
    let root = root("find-path");
    put(
        &ssm,
        &format!("{root}/app/db/user"),
        "app-user",
        ParameterType::String,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/app/db/password"),
        "pw",
        ParameterType::SecureString,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/app/cache"),
        "cache-url",
        ParameterType::String,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/other/db"),
        "elsewhere",
        ParameterType::String,
        &[],
    )
    .await;

    let metrics = Metrics::new();
    let p = provider(&metrics).await;
    let found = p
        .find(&find(Some(&format!("{root}/app")), Some("/db/"), &[]))
        .await
        .unwrap();
    assert_eq!(
        texts(&found),
        expected(&[
            (&format!("{root}/app/db/password"), "pw"),
            (&format!("{root}/app/db/user"), "app-user"),
        ])
    );
    // Three parameters under the path: one page.
    assert_eq!(calls(&metrics), counts(&[("GetParametersByPath", 1)]));

    // Without a path, from the root; the pattern is unanchored.
    let found = p
        .find(&find(None, Some(&format!("^{root}/.*db")), &[]))
        .await
        .unwrap();
    assert_eq!(found.len(), 3, "{:?}", found.keys());

    let err = p
        .find(&find(Some(&root), Some("(unclosed"), &[]))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Invalid);
    assert!(
        err.message.contains("find.name.regexp \"(unclosed\""),
        "{}",
        err.message
    );
    let err = p.find(&find(Some(&root), None, &[])).await.unwrap_err();
    assert!(
        err.message.starts_with("unexpected find operator"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn find_by_tags_with_a_path_and_a_name() {
    let ssm = ssm().await;
    let root = root("find-tags");
    let team = unique("team");
    let mut all = BTreeMap::new();
    for i in 0..12 {
        let dir = if i % 2 == 0 { "a" } else { "b" };
        let name = format!("{root}/{dir}/p{i:02}");
        put(
            &ssm,
            &name,
            &format!("v{i}"),
            ParameterType::SecureString,
            &[("team", &team)],
        )
        .await;
        all.insert(name, format!("v{i}"));
    }
    put(
        &ssm,
        &format!("{root}/a/untagged"),
        "no",
        ParameterType::String,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/a/other-team"),
        "no",
        ParameterType::String,
        &[("team", "x")],
    )
    .await;

    let metrics = Metrics::new();
    let p = provider(&metrics).await;
    let found = p.find(&find(None, None, &[("team", &team)])).await.unwrap();
    assert_eq!(texts(&found), all);
    // The listing (two pages: moto pages DescribeParameters by 10 whatever MaxResults says; AWS
    // gives the 50 lockstep asks for), then twelve values ten per call.
    assert_eq!(
        calls(&metrics),
        counts(&[("DescribeParameters", 2), ("GetParameters", 2)])
    );

    let under_a = p
        .find(&find(Some(&format!("{root}/a")), None, &[("team", &team)]))
        .await
        .unwrap();
    assert_eq!(under_a.len(), 6);
    assert!(under_a.keys().all(|k| k.starts_with(&format!("{root}/a/"))));

    // Name and tags together keep what matches both (ESO would drop the tags).
    let named = p
        .find(&find(None, Some("p0[0-3]$"), &[("team", &team)]))
        .await
        .unwrap();
    assert_eq!(
        named.keys().cloned().collect::<Vec<_>>(),
        [
            format!("{root}/a/p00"),
            format!("{root}/b/p01"),
            format!("{root}/a/p02"),
            format!("{root}/b/p03"),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
}

// --- An ExternalSecret through a running lockstep ------------------------------------------------

fn store(name: &str) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"aws": {"service": "ParameterStore", "region": "us-east-1"}}},
    })
}

fn external_secret(name: &str, data: Value, data_from: Value) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "parameters", "kind": "SecretStore"},
            "target": {"name": name},
            "data": data,
            "dataFrom": data_from,
        },
    })
}

#[tokio::test]
async fn an_external_secret_syncs_from_parameter_store_and_keeps_its_data_on_bad_input() {
    let client = client().await;
    let log = lockstep();
    let ns = TestNamespace::new(&client, "ps").await;
    apply_manifest(&client, ns.name(), store("parameters")).await;
    let ssm = ssm().await;
    let root = root("ps-e2e");
    let password = canary("password");
    let token = canary("token");
    let team = unique("team");
    put(
        &ssm,
        &format!("{root}/db"),
        &json!({"user": "app", "password": password}).to_string(),
        ParameterType::SecureString,
        &[("team", &team)],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/token"),
        "old-token",
        ParameterType::SecureString,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/token"),
        &token,
        ParameterType::SecureString,
        &[],
    )
    .await;
    put(
        &ssm,
        &format!("{root}/hosts"),
        "a.example,b.example",
        ParameterType::StringList,
        &[],
    )
    .await;

    let data = json!([
        {"secretKey": "token", "remoteRef": {"key": format!("{root}/token")}},
        {"secretKey": "first-token", "remoteRef": {"key": format!("{root}/token"), "version": "1"}},
        {"secretKey": "user", "remoteRef": {"key": format!("{root}/db"), "property": "user"}},
        {"secretKey": "team", "remoteRef": {"key": format!("{root}/db"), "metadataPolicy": "Fetch", "property": "team"}},
    ]);
    let data_from = json!([
        {"extract": {"key": format!("{root}/db")}},
        {"find": {"path": root, "name": {"regexp": "hosts$"}}},
    ]);
    apply_manifest(
        &client,
        ns.name(),
        external_secret("synced", data.clone(), data_from.clone()),
    )
    .await;
    let hosts_key = format!("{}_hosts", root.replace('/', "_"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let before = wait_for_data(
        &secrets,
        "synced",
        &[
            ("token", &token),
            ("first-token", "old-token"),
            ("user", "app"),
            ("team", &team),
            ("password", &password),
            (&hosts_key, "a.example,b.example"),
        ],
    )
    .await;
    let es: Api<ExternalSecret> = Api::namespaced(client.clone(), ns.name());
    wait_for_reason(&es, "synced", "SecretSynced").await;

    // A version that does not exist: reported, and the Secret keeps its data.
    let mut bad_version = data.clone();
    bad_version[1]["remoteRef"]["version"] = json!("42");
    apply_manifest(
        &client,
        ns.name(),
        external_secret("synced", bad_version, data_from.clone()),
    )
    .await;
    let message = wait_for_message(&es, "synced", "SecretSyncedError", "at version 42").await;
    assert!(
        message.contains("spec.data[1]")
            && message.contains("ParameterVersionNotFound")
            && message.contains("check remoteRef.version"),
        "{message}"
    );
    assert_unchanged(&secrets, &before).await;

    // A name pattern that does not compile: reported, and the Secret keeps its data.
    let mut bad_pattern = data_from.clone();
    bad_pattern[1]["find"]["name"]["regexp"] = json!("hosts(");
    apply_manifest(
        &client,
        ns.name(),
        external_secret("synced", data.clone(), bad_pattern),
    )
    .await;
    let message = wait_for_message(&es, "synced", "SecretSyncedError", "find.name.regexp").await;
    assert!(
        message.contains("spec.dataFrom[1].find") && message.contains("\"hosts(\""),
        "{message}"
    );
    assert_unchanged(&secrets, &before).await;

    assert_no_value_leaked(&client, ns.name(), &[log], &[&password, &token]).await;
}

#[tokio::test]
async fn a_certificate_manager_store_says_what_is_supported() {
    let client = client().await;
    lockstep();
    let ns = TestNamespace::new(&client, "acm").await;
    let mut acm = store("acm");
    acm["spec"]["provider"]["aws"]["service"] = json!("CertificateManager");
    apply_manifest(&client, ns.name(), acm).await;
    let stores: Api<lockstep::api::secret_store::SecretStore> =
        Api::namespaced(client.clone(), ns.name());
    let message = common::eventually("the store to report its service", common::WAIT, || async {
        let store = stores.get("acm").await.unwrap();
        let c = store.status?.conditions.into_iter().next()?;
        (c.status.to_string() == "False").then(|| c.message.unwrap_or_default())
    })
    .await;
    assert!(
        message.contains("CertificateManager is not implemented yet")
            && message.contains("use service: SecretsManager or ParameterStore"),
        "{message}"
    );
}
