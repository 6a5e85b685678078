//! Templates (`spec.target.template`) and key rewrites (`spec.dataFrom[].rewrite`) against the
//! real control plane and moto, through the shared `lockstep run`: ESO's e2e template cases
//! (eso-compatibility.md 10), `mergePolicy`, `templateFrom` ConfigMaps, Secrets and literals, and
//! every refusal, each showing its message, that the Secret kept its data, and that no synced
//! value reached a log, an event or a status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    apis, apply, assert_no_value_leaked, assert_unchanged, canary, data, external_secret, lockstep,
    remote, tenant, unique, wait_for_data, wait_for_message, wait_for_reason,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, ResourceExt};
use lockstep::api::external_secret::ExternalSecret;
use serde_json::{Value, json};

/// ESO's e2e values: `secretValue1` and `secretValue2`, with a canary so a leak is visible.
fn eso_values() -> (String, String, String, String) {
    let (foo1, bar2) = (canary("foo1-val"), canary("bar2-val"));
    (
        json!({"foo1": foo1, "bar1": "bar1-val"}).to_string(),
        json!({"foo2": "foo2-val", "bar2": bar2}).to_string(),
        foo1,
        bar2,
    )
}

/// `data` reading `foo1` of `one` and `bar2` of `two`, as ESO's template cases do.
fn one_and_two(one: &str, two: &str) -> Value {
    data(&[
        ("one", json!({"key": one, "property": "foo1"})),
        ("two", json!({"key": two, "property": "bar2"})),
    ])
}

async fn config_map(client: &Client, namespace: &str, name: &str, data: Value) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    apply(
        &api,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
    )
    .await;
}

async fn secret(client: &Client, namespace: &str, manifest: Value) -> Secret {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut manifest = manifest;
    manifest["apiVersion"] = json!("v1");
    manifest["kind"] = json!("Secret");
    apply(&api, manifest).await
}

// ---------------------------------------------------------------------------------------------
// ESO's e2e template cases.

#[tokio::test]
async fn json_data_with_template() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-json").await;
    let (es, secrets) = apis(&client, ns.name());
    let (v1, v2, foo1, bar2) = eso_values();
    let (one, two) = (remote("tpl/one", &v1).await, remote("tpl/two", &v2).await);
    let mut manifest = external_secret(
        "e2e-es",
        json!({
            "target": {"name": "target-secret", "template": {
                "metadata": {
                    "annotations": {"example": "annotation"},
                    "labels": {"example": "label"},
                    "finalizers": ["example.com/finalizer"],
                },
                "data": {"my-data": "executed: {{ .one }}|{{ .two }}"},
            }},
            "data": one_and_two(&one, &two),
        }),
    );
    // With a template, the ExternalSecret's own labels are not copied.
    manifest["metadata"]["labels"] = json!({"es-label": "not-copied"});
    apply(&es, manifest).await;
    let expected = format!("executed: {foo1}|{bar2}");
    let s = wait_for_data(&secrets, "target-secret", &[("my-data", &expected)]).await;
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    let labels = s.labels();
    assert_eq!(labels.get("example").map(String::as_str), Some("label"));
    assert_eq!(
        labels
            .get("reconcile.external-secrets.io/managed")
            .map(String::as_str),
        Some("true")
    );
    assert!(!labels.contains_key("es-label"), "{labels:?}");
    let annotations = s.annotations();
    assert_eq!(
        annotations.get("example").map(String::as_str),
        Some("annotation")
    );
    assert!(annotations.contains_key("reconcile.external-secrets.io/data-hash"));
    assert!(s.finalizers().contains(&"example.com/finalizer".to_owned()));
    assert_eq!(
        wait_for_reason(&es, "e2e-es", "SecretSynced").await,
        "secret synced"
    );
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&foo1, &bar2]).await;
}

#[tokio::test]
async fn docker_json_config_from_a_nested_object() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-docker").await;
    let (es, secrets) = apis(&client, ns.name());
    let auth = canary("c3R");
    let dockerconfig =
        format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}}}}}}"#);
    let key = remote(
        "tpl/docker",
        &format!(r#"{{"dockerconfig": {dockerconfig}}}"#),
    )
    .await;
    apply(
        &es,
        external_secret(
            "app",
            json!({
                "target": {"template": {"data": {".dockerconfigjson": "{{ .mysecret }}"}}},
                "data": data(&[("mysecret", json!({"key": key, "property": "dockerconfig"}))]),
            }),
        ),
    )
    .await;
    let s = wait_for_data(&secrets, "app", &[(".dockerconfigjson", &dockerconfig)]).await;
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&auth]).await;
}

#[tokio::test]
async fn docker_config_json_from_a_json_string_with_its_type() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-dockercfg").await;
    let (es, secrets) = apis(&client, ns.name());
    let auth = canary("c3R");
    let dockerconfig =
        format!(r#"{{"auths":{{"https://index.docker.io/v1/": {{"auth": "{auth}"}}}}}}"#);
    // The property holds JSON as a string: it is unescaped.
    let stored = json!({ "dockerconfig": dockerconfig }).to_string();
    let key = remote("tpl/dockercfg", &stored).await;
    apply(
        &es,
        external_secret(
            "app",
            json!({
                "target": {"template": {
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": {".dockerconfigjson": "{{ .mysecret }}"},
                }},
                "data": data(&[("mysecret", json!({"key": key, "property": "dockerconfig"}))]),
            }),
        ),
    )
    .await;
    let s = wait_for_data(&secrets, "app", &[(".dockerconfigjson", &dockerconfig)]).await;
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&auth]).await;
}

#[tokio::test]
async fn ssh_key_sync() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-ssh").await;
    let (es, secrets) = apis(&client, ns.name());
    let body = canary("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABlwAAAAdzc2gtcn");
    let key_text = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\nNhAAAAAwEAAQAAAYEAsARoZUqo6L5dd0WRjZ2QPq/kKlbjtUY1njzJ01UtdC1u1eSJFUnV\n-----END OPENSSH PRIVATE KEY-----"
    );
    let key = remote("tpl/ssh", &key_text).await;
    apply(
        &es,
        external_secret(
            "app",
            json!({
                "target": {"template": {
                    "type": "kubernetes.io/ssh-auth",
                    "data": {"ssh-privatekey": "{{ .mysecret }}"},
                }},
                "data": data(&[("mysecret", json!({"key": key}))]),
            }),
        ),
    )
    .await;
    let s = wait_for_data(&secrets, "app", &[("ssh-privatekey", &key_text)]).await;
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/ssh-auth"));
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&body]).await;
}

#[tokio::test]
async fn template_from_config_maps() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-cm").await;
    let (es, secrets) = apis(&client, ns.name());
    let (v1, v2, foo1, bar2) = eso_values();
    let (one, two) = (remote("tpl/one", &v1).await, remote("tpl/two", &v2).await);
    config_map(
        &client,
        ns.name(),
        "test",
        json!({
            "config.json": "executed-{{ .one}}-{{ .two}}",
            "templated": "executed-{{ .one}}: {{ .two}}",
            "labels": "team: {{ .two | len | toString | printf \"size-%s\" }}",
        }),
    )
    .await;
    apply(
        &es,
        external_secret(
            "app",
            json!({
                "target": {"template": {"templateFrom": [
                    {"configMap": {"name": "test", "items": [
                        {"key": "config.json", "templateAs": "Values"},
                        {"key": "templated", "templateAs": "KeysAndValues"},
                    ]}, "target": "Data"},
                    {"configMap": {"name": "test", "items": [
                        {"key": "labels", "templateAs": "KeysAndValues"},
                    ]}, "target": "Labels"},
                ]}},
                "data": one_and_two(&one, &two),
            }),
        ),
    )
    .await;
    let s = wait_for_data(
        &secrets,
        "app",
        &[
            (&format!("executed-{foo1}"), &bar2),
            ("config.json", &format!("executed-{foo1}-{bar2}")),
        ],
    )
    .await;
    assert_eq!(
        s.labels().get("team").map(String::as_str),
        Some(format!("size-{}", bar2.len()).as_str())
    );
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&foo1, &bar2]).await;
}

#[tokio::test]
async fn literal_templates_to_data_labels_and_annotations() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-literal").await;
    let (es, secrets) = apis(&client, ns.name());
    let (v1, v2, foo1, bar2) = eso_values();
    let (one, two) = (remote("tpl/one", &v1).await, remote("tpl/two", &v2).await);
    apply(
        &es,
        external_secret(
            "app",
            json!({
                "target": {"template": {"templateFrom": [
                    {"literal": "executed-{{ .one }}: {{ .two }}", "target": "Data"},
                    {"literal": "checksum: {{ .two | sha256sum }}", "target": "annotations"},
                    {"literal": "tier: gold", "target": "LABELS"},
                ]}},
                "data": one_and_two(&one, &two),
            }),
        ),
    )
    .await;
    let s = wait_for_data(&secrets, "app", &[(&format!("executed-{foo1}"), &bar2)]).await;
    assert_eq!(s.labels().get("tier").map(String::as_str), Some("gold"));
    let checksum = s.annotations().get("checksum").cloned().unwrap_or_default();
    assert_eq!(checksum.len(), 64, "a sha256 in hex: {checksum}");
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&foo1, &bar2]).await;
}

#[tokio::test]
async fn template_from_a_secret_in_the_same_namespace() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-secret").await;
    let (es, secrets) = apis(&client, ns.name());
    let password = canary("pw");
    let key = remote(
        "tpl/db",
        &json!({"user": "app", "password": password}).to_string(),
    )
    .await;
    secret(
        &client,
        ns.name(),
        json!({"metadata": {"name": "templates"}, "stringData": {
            "dsn": "postgres://{{ .user }}:{{ .password }}@db:5432/app",
        }}),
    )
    .await;
    apply(
        &es,
        external_secret(
            "app",
            json!({
                "target": {"template": {"templateFrom": [
                    {"secret": {"name": "templates", "items": [{"key": "dsn"}]}},
                ]}},
                "dataFrom": [{"extract": {"key": key}}],
            }),
        ),
    )
    .await;
    wait_for_data(
        &secrets,
        "app",
        &[("dsn", &format!("postgres://app:{password}@db:5432/app"))],
    )
    .await;
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&password]).await;
}

#[tokio::test]
async fn merge_policy_merge_keeps_the_fetched_keys_and_replace_drops_them() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-merge").await;
    let (es, secrets) = apis(&client, ns.name());
    let (user, password) = (canary("user"), canary("pw"));
    let key = remote(
        "tpl/creds",
        &json!({"user": user, "password": password}).to_string(),
    )
    .await;
    let spec = |policy: &str| {
        json!({
            "target": {"template": {
                "mergePolicy": policy,
                "data": {"password": "pw={{ .password }}", "url": "https://{{ .user }}@example.com"},
            }},
            "dataFrom": [{"extract": {"key": key}}],
        })
    };
    apply(&es, external_secret("app", spec("Merge"))).await;
    let (rendered_pw, url) = (
        format!("pw={password}"),
        format!("https://{user}@example.com"),
    );
    wait_for_data(
        &secrets,
        "app",
        &[("password", &rendered_pw), ("url", &url), ("user", &user)],
    )
    .await;
    apply(&es, external_secret("app", spec("Replace"))).await;
    wait_for_data(
        &secrets,
        "app",
        &[("password", &rendered_pw), ("url", &url)],
    )
    .await;
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&user, &password]).await;
}

#[tokio::test]
async fn find_by_name_and_rewrite() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-find").await;
    let (es, secrets) = apis(&client, ns.name());
    let value = json!({"foo1": canary("foo1-val")}).to_string();
    let tag = unique("e2e").replace('-', "_");
    let prefix = format!("e2e_find_and_rewrite_{tag}");
    for suffix in ["one", "two", "three"] {
        common::put_remote(
            &common::secrets_manager().await,
            &format!("{prefix}_{suffix}"),
            &value,
        )
        .await;
    }
    apply(
        &es,
        external_secret(
            "app",
            json!({"dataFrom": [{
                "find": {"name": {"regexp": format!("{prefix}.+")}},
                "rewrite": [{"regexp": {"source": "e2e_find_and_rewrite_(.*)", "target": "$1"}}],
            }]}),
        ),
    )
    .await;
    wait_for_data(
        &secrets,
        "app",
        &[
            (&format!("{tag}_one"), &value),
            (&format!("{tag}_two"), &value),
            (&format!("{tag}_three"), &value),
        ],
    )
    .await;
}

#[tokio::test]
async fn rewrites_merge_and_transform() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-rewrite").await;
    let (es, secrets) = apis(&client, ns.name());
    let (user, password) = (canary("user"), canary("pw"));
    let a = remote("tpl/a", &json!({"user": user, "port": 5432}).to_string()).await;
    let b = remote("tpl/b", &json!({"password": password}).to_string()).await;
    // `find` by both names: the keys are the remote names; merge makes one object of them, then
    // a transform upper-cases the member names.
    apply(
        &es,
        external_secret(
            "app",
            json!({"dataFrom": [
                {
                    "find": {"name": {"regexp": format!("^({a}|{b})$")}},
                    "rewrite": [
                        {"merge": {}},
                        {"transform": {"template": "db_{{ .value | upper }}"}},
                    ],
                },
                {
                    "find": {"name": {"regexp": format!("^({a}|{b})$")}},
                    "rewrite": [{"merge": {"strategy": "JSON", "into": "all"}}, {"regexp": {"source": "^tpl/.*", "target": ""}}],
                },
            ]}),
        ),
    )
    .await;
    let all = format!(r#"{{"password":"{password}","port":5432,"user":"{user}"}}"#);
    wait_for_data(
        &secrets,
        "app",
        &[
            ("all", &all),
            ("db_PASSWORD", &password),
            ("db_PORT", "5432"),
            ("db_USER", &user),
        ],
    )
    .await;
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&user, &password]).await;
}

#[tokio::test]
async fn decoding_policy_sync() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-decode").await;
    let (es, secrets) = apis(&client, ns.name());
    let key = remote(
        "tpl/decode",
        r#"{ "name": "Z3JlYXQtbmFtZQ==", "surname": "Z3JlYXQtc3VybmFtZQ==", "address": "happy calm street No. 1" }"#,
    )
    .await;
    apply(
        &es,
        external_secret(
            "app",
            json!({
                "dataFrom": [{"extract": {"key": key, "decodingStrategy": "Auto"}}],
                "data": data(&[
                    ("base64", json!({"key": key, "property": "name", "decodingStrategy": "Base64"})),
                    ("none", json!({"key": key, "property": "name", "decodingStrategy": "None"})),
                ]),
            }),
        ),
    )
    .await;
    wait_for_data(
        &secrets,
        "app",
        &[
            ("name", "great-name"),
            ("surname", "great-surname"),
            ("address", "happy calm street No. 1"),
            ("base64", "great-name"),
            ("none", "Z3JlYXQtbmFtZQ=="),
        ],
    )
    .await;
}

#[tokio::test]
async fn unicode_conversion_of_found_keys() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-unicode").await;
    let (es, secrets) = apis(&client, ns.name());
    let name = unique("tpl/uni");
    common::put_remote(&common::secrets_manager().await, &name, "v").await;
    apply(
        &es,
        external_secret(
            "app",
            json!({"dataFrom": [{"find": {
                "name": {"regexp": format!("^{name}$")},
                "conversionStrategy": "Unicode",
            }}]}),
        ),
    )
    .await;
    wait_for_data(&secrets, "app", &[(&name.replace('/', "_U002f_"), "v")]).await;
}

// ---------------------------------------------------------------------------------------------
// Refusals: each leaves the Secret as it was.

/// A namespace whose ExternalSecret `app` synced `password` from a canary; returns the Secret.
async fn synced(client: &Client, prefix: &str) -> (common::TestNamespace, String, String, Secret) {
    let ns = tenant(client, prefix).await;
    let (es, secrets) = apis(client, ns.name());
    let value = canary("kept");
    let key = remote("tpl/kept", &json!({"password": value}).to_string()).await;
    apply(
        &es,
        external_secret("app", json!({"dataFrom": [{"extract": {"key": key}}]})),
    )
    .await;
    let before = wait_for_data(&secrets, "app", &[("password", &value)]).await;
    wait_for_reason(&es, "app", "SecretSynced").await;
    (ns, key, value, before)
}

/// Applies `spec` to `app`, waits for a failure mentioning `needle`, checks the Secret did not
/// move and nothing leaked; returns the message.
async fn refused(
    client: &Client,
    ns: &common::TestNamespace,
    value: &str,
    before: &Secret,
    spec: Value,
    needle: &str,
) -> String {
    let (es, secrets) = apis(client, ns.name());
    apply(&es, external_secret("app", spec)).await;
    let message = wait_for_message(&es, "app", "SecretSyncedError", needle).await;
    assert_unchanged(&secrets, before).await;
    assert_no_value_leaked(client, ns.name(), &[lockstep()], &[value]).await;
    message
}

#[tokio::test]
async fn a_template_error_names_the_key_and_position_and_keeps_the_secret() {
    let client = common::client().await;
    let (ns, key, value, before) = synced(&client, "tpl-err").await;
    let message = refused(
        &client,
        &ns,
        &value,
        &before,
        json!({
            "target": {"template": {"data": {"dsn": "user={{ .password }}\nhost={{ .host }}"}}},
            "dataFrom": [{"extract": {"key": key}}],
        }),
        "spec.target.template.data.dsn",
    )
    .await;
    assert!(
        message.starts_with(
            "could not update secret: could not apply template: unable to execute template"
        ),
        "{message}"
    );
    assert!(message.contains("line 2"), "{message}");
    assert!(
        message.contains("\"host\""),
        "names the missing key: {message}"
    );
}

#[tokio::test]
async fn a_config_map_missing_from_the_own_namespace_is_reported() {
    let client = common::client().await;
    let (ns, key, value, before) = synced(&client, "tpl-nocm").await;
    // A ConfigMap of that name in another namespace is never read: references have no namespace.
    let other = common::TestNamespace::new(&client, "tpl-elsewhere").await;
    config_map(
        &client,
        other.name(),
        "shared",
        json!({"t": "x: {{ .password }}"}),
    )
    .await;
    let message = refused(
        &client,
        &ns,
        &value,
        &before,
        json!({
            "target": {"template": {"templateFrom": [
                {"configMap": {"name": "shared", "items": [{"key": "t", "templateAs": "KeysAndValues"}]}},
            ]}},
            "dataFrom": [{"extract": {"key": key}}],
        }),
        "does not exist",
    )
    .await;
    assert!(
        message.contains("spec.target.template.templateFrom[0].configMap")
            && message.contains("\"shared\"")
            && message.contains("reads only from that namespace"),
        "{message}"
    );

    // And a key missing from a ConfigMap that exists. ConfigMaps are not watched: any change to
    // the ExternalSecret (here ESO's force-sync annotation) makes lockstep read it again at once.
    config_map(&client, ns.name(), "shared", json!({"other": "x"})).await;
    let (es, _) = apis(&client, ns.name());
    let touch = json!({"metadata": {"annotations": {"external-secrets.io/force-sync": "1"}}});
    es.patch(
        "app",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&touch),
    )
    .await
    .unwrap();
    let message = wait_for_message(&es, "app", "SecretSyncedError", "missing key").await;
    assert!(
        message.ends_with("error in configmap shared: missing key t"),
        "{message}"
    );
    let (_, secrets) = apis(&client, ns.name());
    assert_unchanged(&secrets, &before).await;
}

/// Applies `manifest` and returns the API server's refusal.
async fn refused_at_admission(es: &Api<ExternalSecret>, manifest: Value) -> String {
    es.patch(
        "app",
        &kube::api::PatchParams::apply("lockstep-tests").force(),
        &kube::api::Patch::Apply(&manifest),
    )
    .await
    .unwrap_err()
    .to_string()
}

#[tokio::test]
async fn an_unknown_template_from_target_is_refused_at_admission() {
    // The controller refuses it too (a CRD installed by ESO's chart lacks this rule); that check
    // is unit-tested in materialize::secret_template.
    let client = common::client().await;
    let ns = tenant(&client, "tpl-target").await;
    let (es, _) = apis(&client, ns.name());
    let error = refused_at_admission(
        &es,
        external_secret(
            "app",
            json!({
                "target": {"template": {"templateFrom": [
                    {"literal": "kubernetes.io/service-account-token", "target": "type"},
                ]}},
                "data": data(&[("k", json!({"key": "x"}))]),
            }),
        ),
    )
    .await;
    assert!(
        error.contains("templateFrom[].target must be Data, Annotations or Labels"),
        "{error}"
    );
}

#[tokio::test]
async fn keys_that_are_invalid_after_a_rewrite_are_named() {
    let client = common::client().await;
    let (ns, key, value, before) = synced(&client, "tpl-badkey").await;
    let message = refused(
        &client,
        &ns,
        &value,
        &before,
        json!({"dataFrom": [{
            "extract": {"key": key},
            "rewrite": [{"regexp": {"source": "^", "target": "db/"}}],
        }]}),
        "invalid secret keys",
    )
    .await;
    assert!(message.contains("\"db/password\""), "{message}");
    assert!(message.contains("spec.dataFrom[0].extract"), "{message}");
}

#[tokio::test]
async fn rewrite_errors_are_reported() {
    let client = common::client().await;
    let (ns, key, value, before) = synced(&client, "tpl-rwerr").await;
    let message = refused(
        &client,
        &ns,
        &value,
        &before,
        json!({"dataFrom": [{
            "extract": {"key": key},
            "rewrite": [{"regexp": {"source": "(", "target": "x"}}],
        }]}),
        "failed rewrite operation[0]",
    )
    .await;
    assert!(
        message.contains("regexp failed with failed to compile"),
        "{message}"
    );

    // Merge of values that are not JSON objects.
    let (es, _) = apis(&client, ns.name());
    apply(
        &es,
        external_secret(
            "app",
            json!({"dataFrom": [{"extract": {"key": key}, "rewrite": [{"merge": {}}]}]}),
        ),
    )
    .await;
    let message = wait_for_message(&es, "app", "SecretSyncedError", "merge failed").await;
    assert!(message.contains("key \"password\""), "{message}");
    let (_, secrets) = apis(&client, ns.name());
    assert_unchanged(&secrets, &before).await;
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&value]).await;
}

// ---------------------------------------------------------------------------------------------
// Secret types lockstep never writes, by every route.

#[tokio::test]
async fn token_types_in_a_template_are_refused_at_admission() {
    let client = common::client().await;
    let ns = tenant(&client, "tpl-tok-adm").await;
    let (es, _) = apis(&client, ns.name());
    for (type_, says) in [
        (
            "kubernetes.io/service-account-token",
            "type kubernetes.io/service-account-token is not allowed",
        ),
        (
            "bootstrap.kubernetes.io/token",
            "type bootstrap.kubernetes.io/token is not allowed",
        ),
    ] {
        let manifest = external_secret(
            "app",
            json!({"target": {"template": {"type": type_}}, "data": data(&[("k", json!({"key": "x"}))])}),
        );
        let error = refused_at_admission(&es, manifest).await;
        assert!(error.contains(says), "{error}");
    }
}

/// An existing Secret `app` of a forbidden type, written by someone else.
async fn token_secret(client: &Client, namespace: &str, type_: &str) -> Secret {
    let mut manifest = json!({
        "metadata": {"name": "app"},
        "type": type_,
        "stringData": {"token-id": "abcdef", "note": "kept"},
    });
    if type_ == "kubernetes.io/service-account-token" {
        common::service_account(client, namespace, "robot", None).await;
        manifest["metadata"]["annotations"] =
            json!({"kubernetes.io/service-account.name": "robot"});
    }
    secret(client, namespace, manifest).await;
    // The token controller may fill it in: read it back once it has settled.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.get("app").await.unwrap()
}

#[tokio::test]
async fn an_existing_token_secret_is_never_written_into() {
    let client = common::client().await;
    for (type_, policy) in [
        ("kubernetes.io/service-account-token", "Merge"),
        ("bootstrap.kubernetes.io/token", "Orphan"),
        ("kubernetes.io/service-account-token", "Orphan"),
        ("bootstrap.kubernetes.io/token", "Owner"),
    ] {
        let ns = tenant(&client, "tpl-tok").await;
        let (es, secrets) = apis(&client, ns.name());
        let before = token_secret(&client, ns.name(), type_).await;
        let value = canary("tok");
        let key = remote("tpl/tok", &value).await;
        apply(
            &es,
            external_secret(
                "app",
                json!({
                    "target": {"creationPolicy": policy},
                    "data": data(&[("token-secret", json!({"key": key}))]),
                }),
            ),
        )
        .await;
        let message = wait_for_message(&es, "app", "SecretSyncedError", "is not allowed").await;
        assert!(
            message.contains(&format!("Secret type {type_} is not allowed"))
                && message.contains("pick another spec.target.name"),
            "{type_} {policy}: {message}"
        );
        let after = secrets.get("app").await.unwrap();
        assert_eq!(after.data, before.data, "{type_} {policy}: data changed");
        assert!(
            !after
                .labels()
                .contains_key("reconcile.external-secrets.io/managed"),
            "{type_} {policy}: lockstep marked it"
        );
        assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&value]).await;
    }
}

#[tokio::test]
async fn null_byte_policy_fail_refuses_and_ignore_keeps_binary_values() {
    let client = common::client().await;
    let (ns, key, value, before) = synced(&client, "tpl-nul").await;
    // Base64 of the bytes 0x00 'a'.
    let binary = remote("tpl/nul", "AGE=").await;
    let spec = |policy: &str| {
        json!({
            "dataFrom": [{"extract": {"key": key}}],
            "data": data(&[("bin", json!({
                "key": binary, "decodingStrategy": "Base64", "nullBytePolicy": policy,
            }))]),
        })
    };
    let message = refused(&client, &ns, &value, &before, spec("Fail"), "null bytes").await;
    assert!(
        message.contains("spec.data[0]") && message.contains("\"bin\""),
        "{message}"
    );
    let (es, secrets) = apis(&client, ns.name());
    apply(&es, external_secret("app", spec("Ignore"))).await;
    let s = common::eventually("the binary key", common::WAIT, || async {
        let s = secrets.get("app").await.unwrap();
        s.data
            .as_ref()
            .is_some_and(|d| d.contains_key("bin"))
            .then_some(s)
    })
    .await;
    assert_eq!(s.data.unwrap()["bin"].0, [0, b'a']);
}
