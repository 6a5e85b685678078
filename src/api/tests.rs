//! Tests of the types and the assembled CRDs that need no cluster (`tests/crd_validation.rs` has
//! the ones against the real API server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use serde_json::{Value, json};

use super::external_secret::{CreationPolicy, DeletionPolicy, ExternalSecret};
use super::meta::StoreKind;
use super::provider::{
    Provider, ProviderSelectionError, SUPPORTED_PROVIDERS, SecretStoreProvider,
    UNSUPPORTED_PROVIDERS,
};
use super::provider_aws::AwsService;
use super::secret_store::{ClusterSecretStore, SecretStore};
use super::versions::at_path;
use super::{PushSecret, crds, validation};

const SEED_EXTERNAL_SECRET: &str = include_str!("../../deploy/examples/seed/externalsecret.yaml");
const SEED_SECRET_STORE: &str = include_str!("../../deploy/examples/seed/secretstore.yaml");

fn crd(plural: &str) -> CustomResourceDefinition {
    crds()
        .into_iter()
        .find(|c| c.spec.names.plural == plural)
        .unwrap_or_else(|| panic!("no CRD for {plural}"))
}

fn schema(plural: &str, version: &str) -> JSONSchemaProps {
    crd(plural)
        .spec
        .versions
        .into_iter()
        .find(|v| v.name == version)
        .and_then(|v| v.schema)
        .and_then(|s| s.open_api_v3_schema)
        .unwrap_or_else(|| panic!("{plural} has no schema at {version}"))
}

/// A property of the storage version's schema.
fn schema_at(plural: &str, path: &[&str]) -> JSONSchemaProps {
    let storage = crd(plural)
        .spec
        .versions
        .into_iter()
        .find(|v| v.storage)
        .unwrap()
        .name;
    let mut root = schema(plural, &storage);
    at_path(&mut root, path)
        .cloned()
        .unwrap_or_else(|| panic!("{plural} has no property {}", path.join(".")))
}

fn default_of(plural: &str, path: &[&str]) -> Option<Value> {
    schema_at(plural, path).default.map(|d| d.0)
}

#[test]
fn the_seed_external_secret_deserializes() {
    let es: ExternalSecret = serde_saphyr::from_str(SEED_EXTERNAL_SECRET).unwrap();
    assert_eq!(es.metadata.name.as_deref(), Some("app-secrets"));
    assert_eq!(es.spec.refresh_interval.as_str(), "1h");
    assert_eq!(es.spec.refresh_interval.to_std().unwrap().as_secs(), 3600);
    let store = es.spec.secret_store_ref.as_ref().unwrap();
    assert_eq!(store.name.as_deref(), Some("aws-secretsmanager"));
    assert_eq!(store.kind, Some(StoreKind::SecretStore));
    assert_eq!(es.spec.target.name.as_deref(), Some("app-secrets-k8s"));
    assert_eq!(es.spec.target.creation_policy, CreationPolicy::Owner);
    assert_eq!(es.spec.target.deletion_policy, DeletionPolicy::Retain);
    let keys: Vec<_> = es
        .spec
        .data
        .iter()
        .map(|d| (d.secret_key.as_str(), d.remote_ref.key.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("database-password", "prod/app/db-password"),
            ("api-key", "prod/app/api-key")
        ]
    );
}

#[test]
fn the_seed_secret_store_deserializes() {
    let store: SecretStore = serde_saphyr::from_str(SEED_SECRET_STORE).unwrap();
    let Ok(Provider::Aws(aws)) = store.spec.provider.single() else {
        panic!("the seed store is an AWS store");
    };
    assert_eq!(aws.service, AwsService::SecretsManager);
    assert_eq!(aws.region, "us-east-1");
    let sa = aws
        .auth
        .as_ref()
        .and_then(|a| a.jwt.as_ref())
        .and_then(|j| j.service_account_ref.as_ref())
        .unwrap();
    assert_eq!(sa.name, "external-secrets-sa");
    assert_eq!(sa.namespace, None);
}

/// An ESO manifest using most fields round-trips through the Rust types unchanged (defaults are
/// written explicitly, since the types fill them in).
#[test]
fn a_full_external_secret_round_trips() {
    let manifest = json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "full", "namespace": "team"},
        "spec": {
            "secretStoreRef": {"name": "store", "kind": "ClusterSecretStore"},
            "refreshPolicy": "Periodic",
            "refreshInterval": "15m",
            "syncWindows": {"kind": "deny", "windows": [{"schedule": "0 22 * * 1-5", "duration": "8h"}]},
            "target": {
                "name": "full-secret",
                "creationPolicy": "CreateOrMerge",
                "deletionPolicy": "Merge",
                "immutable": true,
                "template": {
                    "type": "kubernetes.io/dockerconfigjson",
                    "engineVersion": "v2",
                    "mergePolicy": "Merge",
                    "metadata": {"labels": {"a": "b"}, "annotations": {"c": "{{ .d }}"}, "finalizers": ["x/y"]},
                    "data": {".dockerconfigjson": "{{ .config | toString }}"},
                    "templateFrom": [
                        {"configMap": {"name": "tpl", "items": [{"key": "k", "templateAs": "KeysAndValues"}]}, "target": "Annotations"},
                        {"literal": "a: b", "target": "Data", "valuesDecodingStrategy": "Base64"}
                    ]
                }
            },
            "data": [{
                "secretKey": "password",
                "remoteRef": {
                    "key": "db", "property": "password", "version": "AWSPREVIOUS",
                    "metadataPolicy": "Fetch", "conversionStrategy": "Unicode",
                    "decodingStrategy": "Auto", "nullBytePolicy": "Fail"
                },
                "sourceRef": {"storeRef": {"name": "other", "kind": "SecretStore"}}
            }],
            "dataFrom": [
                {"extract": {"key": "blob"}, "rewrite": [
                    {"regexp": {"source": "(.*)", "target": "app_$1"}},
                    {"transform": {"template": "{{ .value | upper }}"}},
                    {"merge": {"into": "all", "priority": ["a"], "priorityPolicy": "IgnoreNotFound", "conflictPolicy": "Ignore", "strategy": "JSON"}}
                ]},
                {"find": {"path": "team/", "name": {"regexp": "^db-"}, "tags": {"env": "prod"}, "conversionStrategy": "Default", "decodingStrategy": "None", "nullBytePolicy": "Ignore"}},
                {"sourceRef": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password", "name": "pw"}}}
            ]
        }
    });
    let es: ExternalSecret = serde_json::from_value(manifest.clone()).unwrap();
    assert_eq!(serde_json::to_value(&es).unwrap(), manifest);
}

#[test]
fn a_store_with_each_supported_provider_round_trips() {
    for provider in [
        json!({"aws": {
            "service": "ParameterStore", "region": "eu-central-1", "role": "arn:aws:iam::1:role/r",
            "additionalRoles": ["arn:aws:iam::1:role/a"], "externalID": "ext",
            "sessionTags": [{"key": "team", "value": "a"}], "transitiveTagKeys": ["team"],
            "sessionTagsPolicy": "Custom", "customSessionTags": {"cost": "center"}, "prefix": "p/",
            "secretsManager": {"forceDeleteWithoutRecovery": true},
            "auth": {"secretRef": {
                "accessKeyIDSecretRef": {"name": "aws", "key": "id"},
                "secretAccessKeySecretRef": {"name": "aws", "key": "secret"},
                "sessionTokenSecretRef": {"name": "aws", "key": "token", "namespace": "ops"}
            }}
        }}),
        json!({"fake": {"data": [{"key": "k", "value": "v", "version": "1"}], "validationResult": 1}}),
        json!({"kubernetes": {
            "server": {"url": "https://k8s.example", "caBundle": "Y2E=", "caProvider": {"type": "ConfigMap", "name": "ca", "key": "ca.crt"}},
            "auth": {"serviceAccount": {"name": "reader", "audiences": ["k8s"]}},
            "remoteNamespace": "apps"
        }}),
        json!({"webhook": {
            "url": "https://api.example/{{ .remoteRef.key }}", "method": "POST", "headers": {"X": "y"},
            "body": "{}", "timeout": "5s", "result": {"jsonPath": "$.value"},
            "auth": {"ntlm": {"usernameSecret": {"name": "u", "key": "u"}, "passwordSecret": {"name": "p", "key": "p"}}},
            "secrets": [{"name": "creds", "secretRef": {"name": "c", "key": "k"}}],
            "caProvider": {"type": "Secret", "name": "ca", "namespace": "ops"}
        }}),
    ] {
        let manifest = json!({
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "s", "namespace": "n"},
            "spec": {
                "controller": "dev",
                "provider": provider,
                "retrySettings": {"maxRetries": 5, "retryInterval": "10s"},
                "refreshInterval": 300
            }
        });
        let store: SecretStore = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(serde_json::to_value(&store).unwrap(), manifest);
        assert!(store.spec.provider.single().is_ok());
    }
}

#[test]
fn a_cluster_secret_store_serializes_with_its_kind() {
    let store: ClusterSecretStore = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": "shared"},
        "spec": {
            "provider": {"fake": {"data": []}},
            "conditions": [{"namespaces": ["a"], "namespaceRegexes": ["^team-"], "namespaceSelector": {"matchLabels": {"x": "y"}}}]
        }
    }))
    .unwrap();
    let value = serde_json::to_value(&store).unwrap();
    assert_eq!(value["apiVersion"], "external-secrets.io/v1");
    assert_eq!(value["kind"], "ClusterSecretStore");
    assert_eq!(
        value["spec"]["conditions"][0]["namespaceRegexes"][0],
        "^team-"
    );
}

#[test]
fn a_push_secret_round_trips() {
    let manifest = json!({
        "apiVersion": "external-secrets.io/v1alpha1",
        "kind": "PushSecret",
        "metadata": {"name": "push", "namespace": "n"},
        "spec": {
            "refreshInterval": "10m",
            "updatePolicy": "IfNotExists",
            "deletionPolicy": "Delete",
            "secretStoreRefs": [{"name": "aws", "kind": "SecretStore"}, {"labelSelector": {"matchLabels": {"push": "yes"}}, "kind": "ClusterSecretStore"}],
            "selector": {"secret": {"name": "source"}},
            "data": [{
                "match": {"secretKey": "password", "remoteRef": {"remoteKey": "team/db", "property": "password"}},
                "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1", "kind": "PushSecretMetadata", "spec": {"secretPushFormat": "string"}},
                "conversionStrategy": "ReverseUnicode"
            }],
            "dataTo": [{"storeRef": {"name": "aws", "kind": "SecretStore"}, "match": {"regexp": "^db_"}, "rewrite": [{"regexp": {"source": "^db_", "target": ""}}], "conversionStrategy": "None"}],
            "template": {"engineVersion": "v2", "mergePolicy": "Replace", "data": {"x": "{{ .password }}"}}
        }
    });
    let ps: PushSecret = serde_json::from_value(manifest.clone()).unwrap();
    assert_eq!(serde_json::to_value(&ps).unwrap(), manifest);
}

#[test]
fn crds_come_in_a_stable_order_with_eso_names() {
    let names: Vec<_> = crds()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "externalsecrets.external-secrets.io",
            "secretstores.external-secrets.io",
            "clustersecretstores.external-secrets.io",
            "clusterexternalsecrets.external-secrets.io",
            "pushsecrets.external-secrets.io",
            "clusterpushsecrets.external-secrets.io",
        ]
    );
    for crd in crds() {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "external-secrets.io");
        assert_eq!(
            names.categories.as_deref(),
            Some(&["external-secrets".to_owned()][..])
        );
        assert_eq!(
            crd.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("external-secrets.io/component"))
                .map(String::as_str),
            Some("controller"),
            "{}",
            names.kind
        );
        assert!(
            crd.spec.conversion.is_none(),
            "no conversion webhook: strategy None"
        );
        for version in &crd.spec.versions {
            assert!(
                version
                    .subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some(),
                "{} has status",
                names.kind
            );
        }
    }
    let short = |plural: &str| crd(plural).spec.names.short_names.unwrap_or_default();
    assert_eq!(short("externalsecrets"), ["es"]);
    assert_eq!(short("secretstores"), ["ss"]);
    assert_eq!(short("clustersecretstores"), ["css"]);
    assert_eq!(short("clusterexternalsecrets"), ["ces"]);
    assert_eq!(short("pushsecrets"), ["ps"]);
    assert!(short("clusterpushsecrets").is_empty());
    assert_eq!(crd("clustersecretstores").spec.scope, "Cluster");
    assert_eq!(crd("clusterexternalsecrets").spec.scope, "Cluster");
    assert_eq!(crd("clusterpushsecrets").spec.scope, "Cluster");
    assert_eq!(crd("secretstores").spec.scope, "Namespaced");
}

#[test]
fn v1_is_stored_and_v1beta1_is_served_with_the_identical_schema() {
    for plural in [
        "externalsecrets",
        "secretstores",
        "clustersecretstores",
        "clusterexternalsecrets",
    ] {
        let crd = crd(plural);
        let versions: Vec<_> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(
            versions,
            [("v1", true, true), ("v1beta1", true, false)],
            "{plural}"
        );
        let (v1, v1beta1) = (&crd.spec.versions[0], &crd.spec.versions[1]);
        assert_eq!(
            v1.schema, v1beta1.schema,
            "{plural}: v1 and v1beta1 schemas differ"
        );
        assert_eq!(
            v1.additional_printer_columns,
            v1beta1.additional_printer_columns
        );
        assert_eq!(v1.selectable_fields, v1beta1.selectable_fields);
        assert_eq!(v1.subresources, v1beta1.subresources);
    }
    for plural in ["pushsecrets", "clusterpushsecrets"] {
        let versions: Vec<_> = crd(plural)
            .spec
            .versions
            .iter()
            .map(|v| (v.name.clone(), v.served, v.storage))
            .collect();
        assert_eq!(versions, [("v1alpha1".to_owned(), true, true)], "{plural}");
    }
}

#[test]
fn printer_columns_and_selectable_fields_are_esos() {
    let columns = |plural: &str| -> Vec<(String, String)> {
        crd(plural).spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.json_path))
            .collect()
    };
    let ready = r#".status.conditions[?(@.type=="Ready")]"#;
    let owned = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        columns("externalsecrets"),
        owned(&[
            ("StoreType", ".spec.secretStoreRef.kind"),
            ("Store", ".spec.secretStoreRef.name"),
            ("Refresh Interval", ".spec.refreshInterval"),
            ("Status", &format!("{ready}.reason")),
            ("Ready", &format!("{ready}.status")),
            ("Last Sync", ".status.refreshTime"),
        ])
    );
    for plural in ["secretstores", "clustersecretstores"] {
        assert_eq!(
            columns(plural),
            owned(&[
                ("AGE", ".metadata.creationTimestamp"),
                ("Status", &format!("{ready}.reason")),
                ("Capabilities", ".status.capabilities"),
                ("Ready", &format!("{ready}.status")),
            ])
        );
    }
    assert_eq!(
        columns("clusterexternalsecrets"),
        owned(&[
            ("Store", ".spec.externalSecretSpec.secretStoreRef.name"),
            ("Refresh Interval", ".spec.refreshTime"),
            ("Ready", &format!("{ready}.status")),
        ])
    );
    assert_eq!(
        columns("pushsecrets"),
        owned(&[
            ("AGE", ".metadata.creationTimestamp"),
            ("Status", &format!("{ready}.reason")),
            ("Last Sync", ".status.refreshTime"),
        ])
    );
    assert_eq!(
        columns("clusterpushsecrets"),
        owned(&[
            ("AGE", ".metadata.creationTimestamp"),
            ("Status", &format!("{ready}.reason"))
        ])
    );
    let selectable: Vec<_> = crd("externalsecrets").spec.versions[0]
        .selectable_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.json_path)
        .collect();
    assert_eq!(
        selectable,
        [
            ".spec.secretStoreRef.name",
            ".spec.secretStoreRef.kind",
            ".spec.target.name",
            ".spec.refreshInterval"
        ]
    );
}

#[test]
fn defaults_are_esos() {
    let es = "externalsecrets";
    assert_eq!(
        default_of(es, &["spec", "refreshInterval"]),
        Some(json!("1h0m0s"))
    );
    assert_eq!(
        default_of(es, &["spec", "target"]),
        Some(json!({"creationPolicy": "Owner", "deletionPolicy": "Retain"}))
    );
    assert_eq!(
        default_of(es, &["spec", "target", "creationPolicy"]),
        Some(json!("Owner"))
    );
    assert_eq!(
        default_of(es, &["spec", "target", "deletionPolicy"]),
        Some(json!("Retain"))
    );
    let template = ["spec", "target", "template"];
    assert_eq!(
        default_of(es, &[&template[..], &["engineVersion"]].concat()),
        Some(json!("v2"))
    );
    assert_eq!(
        default_of(es, &[&template[..], &["mergePolicy"]].concat()),
        Some(json!("Replace"))
    );
    let mut root = schema(es, "v1");
    let template_from = at_path(&mut root, &[&template[..], &["templateFrom"]].concat()).unwrap();
    let item = match template_from.items.as_ref().unwrap() {
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => s.as_ref().clone(),
        other => panic!("templateFrom items: {other:?}"),
    };
    let mut item = item;
    assert_eq!(
        at_path(&mut item, &["target"])
            .unwrap()
            .default
            .clone()
            .map(|d| d.0),
        Some(json!("Data"))
    );
    let items = at_path(&mut item, &["configMap", "items"]).unwrap().clone();
    let k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(mut ref_item) =
        items.items.unwrap()
    else {
        panic!("configMap.items")
    };
    assert_eq!(
        at_path(&mut ref_item, &["templateAs"])
            .unwrap()
            .default
            .clone()
            .map(|d| d.0),
        Some(json!("Values"))
    );

    // ESO v2.9 removed the defaults of the three strategy fields (issue #6797).
    let mut data_item = data_item(es);
    for field in [
        "conversionStrategy",
        "decodingStrategy",
        "metadataPolicy",
        "nullBytePolicy",
    ] {
        let prop = at_path(&mut data_item, &["remoteRef", field]).unwrap();
        assert_eq!(prop.default, None, "remoteRef.{field} has no default");
        assert!(prop.enum_.is_some(), "remoteRef.{field} is an enum");
    }

    let aws = ["spec", "provider", "aws"];
    assert_eq!(
        default_of("secretstores", &[&aws[..], &["sessionTagsPolicy"]].concat()),
        Some(json!("None"))
    );
    assert_eq!(
        default_of(
            "secretstores",
            &["spec", "provider", "kubernetes", "remoteNamespace"]
        ),
        Some(json!("default"))
    );
    assert_eq!(
        default_of(
            "secretstores",
            &["spec", "provider", "kubernetes", "server", "url"]
        ),
        Some(json!("kubernetes.default"))
    );

    let ps = "pushsecrets";
    assert_eq!(
        default_of(ps, &["spec", "refreshInterval"]),
        Some(json!("1h0m0s"))
    );
    assert_eq!(
        default_of(ps, &["spec", "updatePolicy"]),
        Some(json!("Replace"))
    );
    assert_eq!(
        default_of(ps, &["spec", "deletionPolicy"]),
        Some(json!("None"))
    );
}

fn data_item(plural: &str) -> JSONSchemaProps {
    let data = schema_at(plural, &["spec", "data"]);
    match data.items.unwrap() {
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => *s,
        other => panic!("data items: {other:?}"),
    }
}

#[test]
fn enums_are_esos() {
    let values = |plural: &str, path: &[&str]| -> Vec<String> {
        schema_at(plural, path)
            .enum_
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.0.as_str().unwrap().to_owned())
            .collect()
    };
    let es = "externalsecrets";
    assert_eq!(
        values(es, &["spec", "target", "creationPolicy"]),
        ["Owner", "Orphan", "Merge", "None", "CreateOrMerge"]
    );
    assert_eq!(
        values(es, &["spec", "target", "deletionPolicy"]),
        ["Delete", "Merge", "Retain"]
    );
    assert_eq!(
        values(es, &["spec", "refreshPolicy"]),
        ["CreatedOnce", "Periodic", "OnChange"]
    );
    assert_eq!(
        values(es, &["spec", "secretStoreRef", "kind"]),
        ["SecretStore", "ClusterSecretStore"]
    );
    let mut item = data_item(es);
    let remote = |item: &mut JSONSchemaProps, f: &str| -> Vec<String> {
        at_path(item, &["remoteRef", f])
            .unwrap()
            .enum_
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.0.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        remote(&mut item, "decodingStrategy"),
        ["Auto", "Base64", "Base64URL", "None"]
    );
    assert_eq!(
        remote(&mut item, "conversionStrategy"),
        ["Default", "Unicode"]
    );
    assert_eq!(remote(&mut item, "metadataPolicy"), ["None", "Fetch"]);
    assert_eq!(remote(&mut item, "nullBytePolicy"), ["Ignore", "Fail"]);
    assert_eq!(
        values("secretstores", &["spec", "provider", "aws", "service"]),
        ["SecretsManager", "ParameterStore", "CertificateManager"]
    );
    assert_eq!(
        values(
            "secretstores",
            &["spec", "provider", "aws", "sessionTagsPolicy"]
        ),
        ["None", "Simple", "Custom"]
    );
    assert_eq!(
        values("pushsecrets", &["spec", "updatePolicy"]),
        ["Replace", "IfNotExists"]
    );
    assert_eq!(
        values("pushsecrets", &["spec", "deletionPolicy"]),
        ["Delete", "None"]
    );
}

#[test]
fn no_schema_is_nullable_but_refresh_time() {
    fn nullable_paths(schema: &JSONSchemaProps, path: String, out: &mut Vec<String>) {
        if schema.nullable == Some(true) {
            out.push(path.clone());
        }
        for (name, child) in schema.properties.iter().flatten() {
            nullable_paths(child, format!("{path}.{name}"), out);
        }
        if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(item)) =
            &schema.items
        {
            nullable_paths(item, format!("{path}[]"), out);
        }
        if let Some(values) = &schema.enum_ {
            assert!(
                values.iter().all(|v| !v.0.is_null()),
                "{path}: null in enum"
            );
        }
    }
    for crd in crds() {
        let mut found = Vec::new();
        let schema = crd.spec.versions[0]
            .schema
            .clone()
            .unwrap()
            .open_api_v3_schema
            .unwrap();
        nullable_paths(&schema, String::new(), &mut found);
        let expected: Vec<String> = match crd.spec.names.kind.as_str() {
            "ExternalSecret" | "PushSecret" => vec![".status.refreshTime".into()],
            _ => vec![],
        };
        assert_eq!(found, expected, "{}", crd.spec.names.kind);
    }
}

#[test]
fn the_provider_schema_declares_every_eso_provider_and_a_rule_for_each_unsupported_one() {
    for plural in ["secretstores", "clustersecretstores"] {
        let provider = schema_at(plural, &["spec", "provider"]);
        let declared: BTreeSet<String> = provider
            .properties
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect();
        let expected: BTreeSet<String> = SUPPORTED_PROVIDERS
            .iter()
            .chain(UNSUPPORTED_PROVIDERS.iter())
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(declared, expected);
        assert_eq!(expected.len(), 43, "ESO v2.9 has 43 providers");
        for key in UNSUPPORTED_PROVIDERS {
            let opaque = &provider.properties.as_ref().unwrap()[key];
            assert_eq!(opaque.type_.as_deref(), Some("object"));
            assert_eq!(opaque.x_kubernetes_preserve_unknown_fields, Some(true));
        }
        let rules: Vec<(String, Option<String>)> = provider
            .x_kubernetes_validations
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.rule, r.message))
            .collect();
        let expected: Vec<(String, Option<String>)> = validation::provider_rules()
            .into_iter()
            .map(|r| {
                let message = match r.message {
                    validation::Message::Fixed(m) => Some(m),
                    validation::Message::Expression(_) => None,
                };
                (r.rule, message)
            })
            .collect();
        assert_eq!(rules, expected);
    }
}

/// The keys the typed arms serialize to are exactly the supported list.
#[test]
fn the_supported_provider_list_matches_the_typed_arms() {
    let all: SecretStoreProvider = serde_json::from_value(json!({
        "aws": {"service": "SecretsManager", "region": "us-east-1"},
        "fake": {"data": []},
        "kubernetes": {},
        "webhook": {"url": "https://x"}
    }))
    .unwrap();
    assert!(
        all.unsupported.is_empty(),
        "every supported key has a typed arm"
    );
    let keys: Vec<String> = serde_json::to_value(&all)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, SUPPORTED_PROVIDERS);
    assert_eq!(all.configured_keys(), SUPPORTED_PROVIDERS);
    assert_eq!(
        all.single().unwrap_err().to_string(),
        "exactly one provider must be set (supported: aws, fake, kubernetes, webhook); found 4"
    );
}

#[test]
fn a_stored_unsupported_provider_is_kept_and_reported() {
    let provider: SecretStoreProvider =
        serde_json::from_value(json!({"vault": {"server": "https://vault"}})).unwrap();
    assert_eq!(
        provider.single(),
        Err(ProviderSelectionError::Unsupported("vault".into()))
    );
    assert_eq!(
        provider.single().unwrap_err().to_string(),
        validation::unsupported_provider_message("vault")
    );
    assert_eq!(
        serde_json::to_value(&provider).unwrap(),
        json!({"vault": {"server": "https://vault"}})
    );
}

#[test]
fn store_rules_differ_by_kind() {
    let rules_at = |plural: &str, path: &[&str]| -> Vec<String> {
        schema_at(plural, path)
            .x_kubernetes_validations
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.rule)
            .collect()
    };
    let ca = ["spec", "provider", "kubernetes", "server", "caProvider"];
    assert_eq!(rules_at("secretstores", &ca), ["!has(self.namespace)"]);
    assert_eq!(
        rules_at("clustersecretstores", &ca),
        ["has(self.namespace)"]
    );
    for (path, _) in validation::kind_specific_store_rules(true) {
        assert_eq!(
            rules_at("clustersecretstores", path),
            ["has(self.namespace)"],
            "{}",
            path.join(".")
        );
        assert!(
            rules_at("secretstores", path)
                .iter()
                .all(|r| r != "has(self.namespace)")
        );
    }
}

#[test]
fn every_status_has_observed_generation() {
    for crd in crds() {
        let mut schema = crd.spec.versions[0]
            .schema
            .clone()
            .unwrap()
            .open_api_v3_schema
            .unwrap();
        let generation = at_path(&mut schema, &["status", "observedGeneration"])
            .unwrap_or_else(|| panic!("{} has no status.observedGeneration", crd.spec.names.kind));
        assert_eq!(generation.type_.as_deref(), Some("integer"));
    }
}

#[test]
fn duplicate_secret_keys_are_refused_by_the_list_type() {
    let data = schema_at("externalsecrets", &["spec", "data"]);
    assert_eq!(data.x_kubernetes_list_type.as_deref(), Some("map"));
    assert_eq!(
        data.x_kubernetes_list_map_keys,
        Some(vec!["secretKey".to_owned()])
    );
}

#[test]
fn webhook_header_values_and_body_stay_out_of_debug() {
    let store: SecretStore = serde_json::from_value(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "s"},
        "spec": {"provider": {"webhook": {
            "url": "https://api.example",
            "headers": {"Authorization": "Bearer hunter2"},
            "body": "{\"token\": \"hunter3\"}"
        }}}
    }))
    .unwrap();
    let debug = format!("{store:?}");
    assert!(debug.contains("Authorization"));
    assert!(
        !debug.contains("hunter2") && !debug.contains("hunter3"),
        "{debug}"
    );
}
