//! The ExternalSecret behaviours of ESO's contract (issue 3), one test each, against the real
//! control plane and moto through a running `lockstep run`: creation, deletion and refresh
//! policies, immutable targets, forced refreshes, ESO's finalizer, property paths, extract,
//! versions and binary secrets. Each test has its own namespace and its own remote secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    WAIT, apis, apply, assert_no_value_leaked, assert_unchanged, canary, data, delete_remote,
    eventually, external_secret, lockstep, put_remote, ready, remote, secret_text, secrets_manager,
    tenant, unique, wait_for_data, wait_for_event, wait_for_reason,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use lockstep::api::external_secret::ExternalSecret;
use serde_json::json;

async fn wait_gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(what, WAIT, || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn orphan_creates_a_secret_without_owner_that_outlives_the_external_secret() {
    let client = common::client().await;
    let ns = tenant(&client, "orphan").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote("orphan/password", "orphan-value").await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"target": {"creationPolicy": "Orphan"},
                   "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    let secret = wait_for_data(&secrets, "app", &[("password", "orphan-value")]).await;
    assert!(secret.owner_references().is_empty(), "Orphan sets no owner");
    assert!(
        !secret
            .labels()
            .contains_key("reconcile.external-secrets.io/created-by"),
        "Orphan sets no created-by label"
    );
    assert_eq!(
        secret
            .labels()
            .get("reconcile.external-secrets.io/managed")
            .map(String::as_str),
        Some("true")
    );

    es_api
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&es_api, "app", "the ExternalSecret to be deleted").await;
    // The garbage collector acts within a second on owned objects; give it ample time to (not) act.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = secrets.get("app").await.unwrap();
    assert_eq!(
        after.data, secret.data,
        "the orphaned Secret keeps its data"
    );
}

#[tokio::test]
async fn merge_never_creates_and_changes_only_its_own_keys() {
    let client = common::client().await;
    let ns = tenant(&client, "merge").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let a = remote("merge/a", "merge-a").await;
    let b = remote("merge/b", "merge-b").await;
    let entries = |keys: &[(&str, &str)]| {
        data(
            &keys
                .iter()
                .map(|(k, r)| (*k, json!({"key": r})))
                .collect::<Vec<_>>(),
        )
    };
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "target": {"name": "shared", "creationPolicy": "Merge"},
                   "data": entries(&[("a", &a), ("b", &b)])}),
        ),
    )
    .await;
    let message = wait_for_reason(&es_api, "app", "SecretMissing").await;
    assert_eq!(
        message,
        "secret will not be created due to CreationPolicy=Merge"
    );
    assert_eq!(
        ready(&es_api, "app").await.unwrap().0,
        "True",
        "a missing target is not an error"
    );
    common::assert_absent(&secrets, "shared").await;

    // Someone else creates the Secret with a key of their own; lockstep merges into it.
    let theirs = Secret {
        metadata: ObjectMeta {
            name: Some("shared".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("theirs".into(), "their-value".into())])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    let merged = wait_for_data(
        &secrets,
        "shared",
        &[
            ("a", "merge-a"),
            ("b", "merge-b"),
            ("theirs", "their-value"),
        ],
    )
    .await;
    assert!(
        merged.owner_references().is_empty(),
        "Merge takes no ownership"
    );
    wait_for_reason(&es_api, "app", "SecretSynced").await;

    // A key lockstep stops writing is removed (server-side apply drops what its manager no longer
    // applies); the other writer's key stays.
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "target": {"name": "shared", "creationPolicy": "Merge"},
                   "data": entries(&[("a", &a)])}),
        ),
    )
    .await;
    let after = wait_for_data(
        &secrets,
        "shared",
        &[("a", "merge-a"), ("theirs", "their-value")],
    )
    .await;
    // The data hash covers the whole Secret, as ESO computes it, so the merged Secret is seen as
    // intact and is not fetched again on every event.
    let expected = lockstep::materialize::data_hash(
        &after
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
    );
    assert_eq!(
        after
            .annotations()
            .get("reconcile.external-secrets.io/data-hash"),
        Some(&expected)
    );
}

#[tokio::test]
async fn creation_policy_none_writes_nothing() {
    let client = common::client().await;
    let ns = tenant(&client, "none").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote("none/password", "none-value").await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"target": {"creationPolicy": "None"},
                   "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    let (status, _, message) = eventually("a Ready condition", WAIT, || async {
        ready(&es_api, "app")
            .await
            .filter(|r| r.1 == "SecretSynced")
    })
    .await;
    assert_eq!(
        (status.as_str(), message.as_str()),
        ("True", "secret synced")
    );
    let all = secrets.list(&Default::default()).await.unwrap().items;
    assert!(
        all.iter().all(|s| !s
            .labels()
            .contains_key("reconcile.external-secrets.io/managed")),
        "creationPolicy None wrote a Secret"
    );
    common::assert_absent(&secrets, "app").await;
}

#[tokio::test]
async fn deletion_policy_delete_deletes_the_secret_when_the_remote_is_gone() {
    let client = common::client().await;
    let ns = tenant(&client, "del-delete").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let value = canary("delete");
    let key = remote("deldelete/password", &value).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "target": {"deletionPolicy": "Delete"},
                   "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    wait_for_data(&secrets, "app", &[("password", &value)]).await;

    delete_remote(&secrets_manager().await, &key).await;
    wait_gone(&secrets, "app", "the Secret to be deleted").await;
    let message = wait_for_reason(&es_api, "app", "SecretDeleted").await;
    assert_eq!(message, "secret deleted due to DeletionPolicy=Delete");
    assert_eq!(ready(&es_api, "app").await.unwrap().0, "True");
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Normal", "Deleted"),
        "secret deleted due to DeletionPolicy=Delete",
    )
    .await;
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&value]).await;
}

#[tokio::test]
async fn deletion_policy_merge_removes_only_the_missing_key() {
    let client = common::client().await;
    let ns = tenant(&client, "del-merge").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let (kept_value, gone_value) = (canary("kept"), canary("gone"));
    let kept = remote("delmerge/kept", &kept_value).await;
    let gone = remote("delmerge/gone", &gone_value).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "target": {"deletionPolicy": "Merge"},
                   "data": data(&[("kept", json!({"key": kept})), ("gone", json!({"key": gone}))])}),
        ),
    )
    .await;
    wait_for_data(
        &secrets,
        "app",
        &[("kept", &kept_value), ("gone", &gone_value)],
    )
    .await;

    delete_remote(&secrets_manager().await, &gone).await;
    wait_for_data(&secrets, "app", &[("kept", &kept_value)]).await;
    wait_for_event(
        &client,
        ns.name(),
        "app",
        ("Normal", "MissingProviderSecret"),
        &format!("secret does not exist at provider using spec.data[1] (key: {gone})"),
    )
    .await;
    let (status, reason, _) = ready(&es_api, "app").await.unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "SecretSynced"));
    assert_no_value_leaked(
        &client,
        ns.name(),
        &[lockstep()],
        &[&kept_value, &gone_value],
    )
    .await;
}

#[tokio::test]
async fn deletion_policy_retain_keeps_the_secret_and_reports_the_missing_remote() {
    let client = common::client().await;
    let ns = tenant(&client, "del-retain").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let value = canary("retain");
    let key = remote("delretain/password", &value).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s",
                   "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    let before = wait_for_data(&secrets, "app", &[("password", &value)]).await;

    delete_remote(&secrets_manager().await, &key).await;
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.starts_with("could not get secret data from provider"),
        "{message}"
    );
    assert!(message.contains(&key), "names the missing key: {message}");
    assert!(
        message.contains("deletionPolicy"),
        "says what to do: {message}"
    );
    wait_for_event(&client, ns.name(), "app", ("Warning", "UpdateFailed"), &key).await;
    assert_unchanged(&secrets, &before).await;
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&value]).await;
}

#[tokio::test]
async fn an_immutable_target_is_written_once_and_never_changed() {
    let client = common::client().await;
    let ns = tenant(&client, "immutable").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let (v1, v2) = (canary("immutable-1"), canary("immutable-2"));
    let key = remote("immutable/password", &v1).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "target": {"immutable": true},
                   "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    let before = wait_for_data(&secrets, "app", &[("password", &v1)]).await;
    assert_eq!(before.immutable, Some(true));

    put_remote(&secrets_manager().await, &key, &v2).await;
    let message = wait_for_reason(&es_api, "app", "SecretSyncedError").await;
    assert!(
        message.starts_with("could not update secret, target is immutable"),
        "{message}"
    );
    assert!(
        !message[1..].contains("could not update secret, target is immutable"),
        "ESO's message is not repeated: {message}"
    );
    assert!(message.contains("delete it"), "says what to do: {message}");
    assert_unchanged(&secrets, &before).await;
    assert_no_value_leaked(&client, ns.name(), &[lockstep()], &[&v1, &v2]).await;
}

/// A second ExternalSecret on the same remote, refreshed every 2s: once it has seen a change,
/// an ExternalSecret that did not pick it up never will by itself.
async fn periodic_witness(es_api: &Api<ExternalSecret>, secrets: &Api<Secret>, key: &str) {
    apply(
        es_api,
        external_secret(
            "witness",
            json!({"refreshInterval": "2s", "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    wait_for_data(secrets, "witness", &[("password", "v1")]).await;
}

#[tokio::test]
async fn refresh_policy_created_once_never_fetches_again() {
    let client = common::client().await;
    let ns = tenant(&client, "once").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote("once/password", "v1").await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "refreshPolicy": "CreatedOnce",
                   "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    let before = wait_for_data(&secrets, "app", &[("password", "v1")]).await;
    periodic_witness(&es_api, &secrets, &key).await;

    put_remote(&secrets_manager().await, &key, "v2").await;
    wait_for_data(&secrets, "witness", &[("password", "v2")]).await;
    // Not even a change of the ExternalSecret fetches again.
    es_api
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        secret_text(&secrets, "app").await.unwrap()["password"],
        "v1"
    );
    assert_eq!(before.data, secrets.get("app").await.unwrap().data);
}

#[tokio::test]
async fn refresh_policy_on_change_fetches_only_when_the_external_secret_changes() {
    let client = common::client().await;
    let ns = tenant(&client, "onchange").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote("onchange/password", "v1").await;
    let es = |extra: &str| {
        external_secret(
            "app",
            json!({"refreshInterval": "2s", "refreshPolicy": "OnChange",
                   "data": data(&[("password", json!({"key": key})), ("extra", json!({"key": extra}))])}),
        )
    };
    apply(&es_api, es(&key)).await;
    wait_for_data(&secrets, "app", &[("password", "v1"), ("extra", "v1")]).await;
    periodic_witness(&es_api, &secrets, &key).await;

    put_remote(&secrets_manager().await, &key, "v2").await;
    wait_for_data(&secrets, "witness", &[("password", "v2")]).await;
    assert_eq!(
        secret_text(&secrets, "app").await.unwrap()["password"],
        "v1",
        "OnChange does not refresh on its interval"
    );

    // A spec change (a new generation) fetches everything again.
    let other = remote("onchange/other", "other-1").await;
    apply(&es_api, es(&other)).await;
    wait_for_data(&secrets, "app", &[("password", "v2"), ("extra", "other-1")]).await;
}

#[tokio::test]
async fn refresh_interval_zero_fetches_once() {
    let client = common::client().await;
    let ns = tenant(&client, "zero").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote("zero/password", "v1").await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "0", "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    wait_for_data(&secrets, "app", &[("password", "v1")]).await;
    periodic_witness(&es_api, &secrets, &key).await;

    put_remote(&secrets_manager().await, &key, "v2").await;
    wait_for_data(&secrets, "witness", &[("password", "v2")]).await;
    assert_eq!(
        secret_text(&secrets, "app").await.unwrap()["password"],
        "v1",
        "refreshInterval 0 fetched again"
    );
    let (status, reason, _) = ready(&es_api, "app").await.unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "SecretSynced"));
}

#[tokio::test]
async fn a_changed_annotation_or_label_forces_a_refresh() {
    let client = common::client().await;
    let ns = tenant(&client, "force").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote("force/password", "v1").await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"refreshInterval": "1h", "data": data(&[("password", json!({"key": key}))])}),
        ),
    )
    .await;
    wait_for_data(&secrets, "app", &[("password", "v1")]).await;
    let sm = secrets_manager().await;

    put_remote(&sm, &key, "v2").await;
    let force = |meta: serde_json::Value| {
        let es_api = es_api.clone();
        async move {
            es_api
                .patch(
                    "app",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "metadata": meta })),
                )
                .await
                .unwrap();
        }
    };
    force(json!({"annotations": {"force-sync": "1"}})).await;
    wait_for_data(&secrets, "app", &[("password", "v2")]).await;

    put_remote(&sm, &key, "v3").await;
    force(json!({"labels": {"refresh": "now"}})).await;
    let secret = wait_for_data(&secrets, "app", &[("password", "v3")]).await;
    // Without a template, ESO copies the ExternalSecret's labels and annotations to the Secret.
    assert_eq!(
        secret.labels().get("refresh").map(String::as_str),
        Some("now")
    );
    assert_eq!(
        secret.annotations().get("force-sync").map(String::as_str),
        Some("1")
    );
}

#[tokio::test]
async fn esos_finalizer_is_removed_so_deletion_does_not_hang() {
    let client = common::client().await;
    let ns = tenant(&client, "finalizer").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote("finalizer/password", "finalizer-value").await;
    let mut es = external_secret(
        "app",
        json!({"data": data(&[("password", json!({"key": key}))])}),
    );
    es["metadata"]["finalizers"] =
        json!(["externalsecrets.external-secrets.io/externalsecret-cleanup"]);
    // Created (not applied), as ESO leaves it: the finalizer belongs to no field manager.
    let es: ExternalSecret = serde_json::from_value(es).unwrap();
    es_api.create(&PostParams::default(), &es).await.unwrap();
    wait_for_data(&secrets, "app", &[("password", "finalizer-value")]).await;
    eventually("ESO's finalizer to be removed", WAIT, || async {
        es_api
            .get("app")
            .await
            .unwrap()
            .finalizers()
            .is_empty()
            .then_some(())
    })
    .await;
    es_api
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&es_api, "app", "the ExternalSecret to be deleted").await;
}

#[tokio::test]
async fn nested_and_array_properties_select_values() {
    let client = common::client().await;
    let ns = tenant(&client, "property").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let json_value = r#"{"db": {"user": "nested-user", "port": 5432},
        "list": [{"name": "first"}, {"name": "second"}], "dotted.key": "escaped-dot"}"#;
    let key = remote("property/json", json_value).await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[
                ("user", json!({"key": key, "property": "db.user"})),
                ("port", json!({"key": key, "property": "db.port"})),
                ("second", json!({"key": key, "property": "list.1.name"})),
                ("dotted", json!({"key": key, "property": "dotted.key"})),
                ("db", json!({"key": key, "property": "db"})),
            ])}),
        ),
    )
    .await;
    wait_for_data(
        &secrets,
        "app",
        &[
            ("user", "nested-user"),
            ("port", "5432"),
            ("second", "second"),
            ("dotted", "escaped-dot"),
            ("db", r#"{"user": "nested-user", "port": 5432}"#),
        ],
    )
    .await;
}

#[tokio::test]
async fn data_from_extract_explodes_a_json_object() {
    let client = common::client().await;
    let ns = tenant(&client, "extract").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let key = remote(
        "extract/json",
        r#"{"username":"extract-user","port":5432,"nested":{"a":1},"flag":true,"with/slash":"x"}"#,
    )
    .await;
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"dataFrom": [{"extract": {"key": key}}],
                   "data": data(&[("override", json!({"key": key, "property": "username"}))])}),
        ),
    )
    .await;
    wait_for_data(
        &secrets,
        "app",
        &[
            ("username", "extract-user"),
            ("port", "5432"),
            ("nested", r#"{"a":1}"#),
            ("flag", "true"),
            // conversionStrategy Default turns characters a key cannot hold into `_`.
            ("with_slash", "x"),
            ("override", "extract-user"),
        ],
    )
    .await;
}

#[tokio::test]
async fn versions_select_awsprevious_and_a_version_id() {
    let client = common::client().await;
    let ns = tenant(&client, "version").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let sm = secrets_manager().await;
    let key = unique("version/password");
    let first = sm
        .create_secret()
        .name(&key)
        .secret_string("version-1")
        .send()
        .await
        .unwrap();
    let first_id = first.version_id().unwrap().to_owned();
    sm.put_secret_value()
        .secret_id(&key)
        .secret_string("version-2")
        .send()
        .await
        .unwrap();
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[
                ("current", json!({"key": key})),
                ("previous", json!({"key": key, "version": "AWSPREVIOUS"})),
                ("by-id", json!({"key": key, "version": format!("uuid/{first_id}")})),
            ])}),
        ),
    )
    .await;
    wait_for_data(
        &secrets,
        "app",
        &[
            ("current", "version-2"),
            ("previous", "version-1"),
            ("by-id", "version-1"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_binary_secret_is_copied_byte_for_byte() {
    let client = common::client().await;
    let ns = tenant(&client, "binary").await;
    let (es_api, secrets) = apis(&client, ns.name());
    let sm = secrets_manager().await;
    let key = unique("binary/blob");
    let bytes: Vec<u8> = vec![0x00, 0xff, 0xfe, 0x80, b'\n', 0x7f, 0x01];
    sm.create_secret()
        .name(&key)
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(bytes.clone()))
        .send()
        .await
        .unwrap();
    apply(
        &es_api,
        external_secret(
            "app",
            json!({"data": data(&[("blob", json!({"key": key}))])}),
        ),
    )
    .await;
    let data = eventually("the binary value", WAIT, || async {
        secrets.get_opt("app").await.unwrap()?.data
    })
    .await;
    assert_eq!(data.get("blob"), Some(&ByteString(bytes)));
}
