//! The Helm chart (deploy/charts/lockstep): `helm lint`, `helm template` for the main value
//! combinations, least-privilege RBAC (no wildcards; scoped to one namespace it cannot read
//! Secrets elsewhere), the restricted Pod Security profile checked by the real PodSecurity
//! admission, CRDs from the one `crds/` directory, and `lockstep run` under the rendered
//! ServiceAccount's identity (a TokenRequest token) doing a full sync: proof the RBAC suffices.
//! helm is built from its pinned Go module by `scripts/build-tools.sh` (tools/helm).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ops;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::Scope;
use kube::{Api, Client};
use serde_json::{Value, json};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("deploy/charts/lockstep")
}

fn helm(args: &[&str]) -> String {
    let bin = root().join("target/bin/helm");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/build-tools.sh (or make tools)",
        bin.display()
    );
    let out = Command::new(&bin)
        .args(args)
        .output()
        .expect("running helm");
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm prints UTF-8")
}

/// `helm template` with `--set` values: the rendered objects.
fn render(release: &str, namespace: &str, set: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut args = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
    ];
    for s in set {
        args.extend(["--set", s]);
    }
    let text = helm(&args);
    serde_saphyr::from_multiple::<Value>(&text)
        .expect("helm renders YAML")
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn rules(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
        .flat_map(|o| o["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn grants(rules: &[Value], group: &str, resource: &str, verb: &str) -> bool {
    let has = |v: &Value, s: &str| v.as_array().unwrap().iter().any(|x| x == s);
    rules.iter().any(|r| {
        has(&r["apiGroups"], group) && has(&r["resources"], resource) && has(&r["verbs"], verb)
    })
}

#[test]
fn helm_lint_passes() {
    let chart = chart();
    helm(&["lint", "--strict", chart.to_str().unwrap()]);
    helm(&[
        "lint",
        "--strict",
        chart.to_str().unwrap(),
        "--set",
        "scope.namespaced=true,networkPolicy.enabled=true,metrics.serviceMonitor.enabled=true,audit.sinks={stdout}",
    ]);
}

#[test]
fn the_chart_installs_the_crds_of_the_repository() {
    let dir = chart().join("crds");
    let mut ours: Vec<_> = std::fs::read_dir(root().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    ours.sort();
    let mut charted: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    charted.sort();
    assert_eq!(ours, charted, "deploy/charts/lockstep/crds must be crds/");
    for name in &ours {
        assert_eq!(
            std::fs::read(root().join("crds").join(name)).unwrap(),
            std::fs::read(dir.join(name)).unwrap(),
            "{name:?} drifted from crds/: deploy/charts/lockstep/crds is a link to ../../../crds"
        );
    }
    // Helm installs crds/ before the templates and never deletes them on uninstall, so removing
    // the chart cannot cascade into deleting every managed Secret.
    let chart = chart();
    let text = helm(&["template", "x", chart.to_str().unwrap(), "--include-crds"]);
    assert_eq!(
        text.matches("kind: CustomResourceDefinition").count(),
        ours.len()
    );
    let plain = helm(&["template", "x", chart.to_str().unwrap()]);
    assert!(
        !plain.contains("kind: CustomResourceDefinition"),
        "CRDs are not templates"
    );
}

#[test]
fn helm_template_for_the_main_value_combinations() {
    // Defaults: two replicas, a PDB, cluster-wide RBAC, the restricted profile.
    let objects = render("lockstep", "ops", &[]);
    let deployment = of_kind(&objects, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--leader-elect=true"), "{args:?}");
    assert!(
        args.contains(&"--leader-election-namespace=ops"),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "{args:?}"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(of_kind(&objects, "PodDisruptionBudget").len(), 1);
    assert_eq!(of_kind(&objects, "ClusterRole").len(), 1);
    assert!(of_kind(&objects, "NetworkPolicy").is_empty());
    assert!(of_kind(&objects, "ServiceMonitor").is_empty());
    let r = rules(&objects);
    assert!(grants(
        &r,
        "external-secrets.io",
        "clustersecretstores",
        "watch"
    ));
    assert!(grants(&r, "coordination.k8s.io", "leases", "patch"));

    // IRSA, token requests limited by name, NetworkPolicy and ServiceMonitor.
    let objects = render(
        "lockstep",
        "ops",
        &[
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/lockstep",
            "rbac.tokenServiceAccounts={tenant,app}",
            "networkPolicy.enabled=true",
            "metrics.serviceMonitor.enabled=true",
        ],
    );
    let sa = of_kind(&objects, "ServiceAccount")[0];
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::1:role/lockstep"
    );
    let token_rule = rules(&objects)
        .into_iter()
        .find(|r| r["resources"] == json!(["serviceaccounts/token"]))
        .unwrap();
    assert_eq!(token_rule["resourceNames"], json!(["tenant", "app"]));
    assert_eq!(of_kind(&objects, "NetworkPolicy").len(), 1);
    assert_eq!(of_kind(&objects, "ServiceMonitor").len(), 1);

    // Namespaced: Roles only, nothing cluster-wide.
    let objects = render(
        "lockstep",
        "ops",
        &["scope.namespaced=true", "scope.namespace=team"],
    );
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let role = of_kind(&objects, "Role")
        .into_iter()
        .find(|r| r["metadata"]["namespace"] == "team")
        .unwrap();
    assert!(!grants(
        &rules(std::slice::from_ref(role)),
        "external-secrets.io",
        "clustersecretstores",
        "get"
    ));
    let args =
        of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            .clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--namespace=team"))
    );

    // One replica without leader election: no PDB, no Lease Role.
    let objects = render(
        "lockstep",
        "ops",
        &["replicaCount=1", "leaderElection.enabled=false"],
    );
    assert!(of_kind(&objects, "PodDisruptionBudget").is_empty());
    assert!(!grants(
        &rules(&objects),
        "coordination.k8s.io",
        "leases",
        "get"
    ));
}

#[test]
fn no_wildcard_in_any_rendering() {
    for set in [
        vec![],
        vec!["scope.namespaced=true"],
        vec!["rbac.tokenServiceAccounts={tenant}"],
    ] {
        for rule in rules(&render("lockstep", "ops", &set)) {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                if let Some(items) = rule[field].as_array() {
                    assert!(
                        !items.iter().any(|i| i.as_str().unwrap_or("").contains('*')),
                        "a wildcard in {field} with {set:?}: {rule}"
                    );
                }
            }
            let verbs = rule["verbs"].as_array().unwrap();
            for v in verbs {
                assert!(
                    ![
                        "escalate",
                        "bind",
                        "impersonate",
                        "deletecollection",
                        "update"
                    ]
                    .contains(&v.as_str().unwrap()),
                    "{v} is more than lockstep uses: {rule}"
                );
            }
        }
    }
}

/// Server-side applies every rendered object except the workload (no kubelet here).
async fn apply_rendered(client: &Client, objects: &[Value]) {
    for obj in objects {
        let kind = obj["kind"].as_str().unwrap();
        if [
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "ServiceMonitor",
            "NetworkPolicy",
        ]
        .contains(&kind)
        {
            continue;
        }
        let (group, version) = obj["apiVersion"]
            .as_str()
            .unwrap()
            .split_once('/')
            .unwrap_or(("", obj["apiVersion"].as_str().unwrap()));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                obj["metadata"]["namespace"].as_str().unwrap(),
                &resource,
            ),
        };
        api.patch(
            obj["metadata"]["name"].as_str().unwrap(),
            &PatchParams::apply("lockstep-chart-test").force(),
            &Patch::Apply(obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {kind}: {e}"));
    }
}

/// A client, and a kubeconfig file, acting as the ServiceAccount `namespace/name` with a
/// short-lived TokenRequest token.
async fn as_service_account(admin: &Client, namespace: &str, name: &str) -> (Client, PathBuf) {
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let admin_config = kube::config::Kubeconfig::read_from(common::env("KUBECONFIG")).unwrap();
    let cluster = admin_config.clusters[0].cluster.clone().unwrap();
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": cluster.server,
            "certificate-authority-data": cluster.certificate_authority_data,
        }}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": name}}],
        "current-context": "sa",
    });
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kubeconfig-{}", common::unique(name)));
    std::fs::write(&path, serde_json::to_string(&kubeconfig).unwrap()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&path).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    (Client::try_from(config).unwrap(), path)
}

/// A remote secret, a store for `class` and an ExternalSecret in `tenant`; waits for the sync.
async fn full_sync(admin: &Client, tenant: &str, class: &str, lockstep: &ops::Lockstep) {
    let value = common::canary("chart");
    let key = common::unique("chart/password");
    ops::put(&key, &value).await;
    let es: Api<lockstep::api::external_secret::ExternalSecret> =
        Api::namespaced(admin.clone(), tenant);
    // A template kept in a ConfigMap: reading it needs the chart's `get` on configmaps.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(admin.clone(), tenant);
    common::apply(
        &config_maps,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "templates"},
               "data": {"url": "https://app:{{ .password }}@db"}}),
    )
    .await;
    common::apply(
        &es,
        common::external_secret(
            "app",
            json!({
                "data": common::data(&[("password", json!({"key": key}))]),
                "target": {"template": {"mergePolicy": "Merge", "templateFrom": [
                    {"configMap": {"name": "templates", "items": [{"key": "url"}]}},
                ]}},
            }),
        ),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), tenant);
    let url = format!("https://app:{value}@db");
    common::wait_for_data(&secrets, "app", &[("password", &value), ("url", &url)]).await;
    // The status is written just after the Secret: wait for it rather than read it once.
    common::wait_for_reason(&es, "app", "SecretSynced").await;
    let _ = class;
    let log = std::fs::read_to_string(&lockstep.log).unwrap();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "lockstep was refused something under the chart's RBAC:\n{log}"
    );
}

#[tokio::test]
async fn lockstep_runs_under_the_cluster_wide_rbac_of_the_chart() {
    let admin = common::client().await;
    let release_ns = common::TestNamespace::new(&admin, "chart-rel").await;
    let class = common::unique("chart");
    let tenant = ops::namespace_with_store(&admin, "chart-tenant", &class).await;
    let release = common::unique("lockstep");
    let objects = render(&release, release_ns.name(), &[]);
    apply_rendered(&admin, &objects).await;
    let (_, kubeconfig) = as_service_account(&admin, release_ns.name(), &release).await;
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let lockstep = ops::Lockstep::start_cluster_wide(
        &class,
        &[&format!(
            "--leader-election-namespace={}",
            release_ns.name()
        )],
        &[("KUBECONFIG", &kubeconfig)],
    );
    full_sync(&admin, tenant.name(), &class, &lockstep).await;
}

#[tokio::test]
async fn namespaced_rbac_suffices_in_its_namespace_and_nothing_else() {
    let admin = common::client().await;
    let class = common::unique("chart-ns");
    let tenant = ops::namespace_with_store(&admin, "chart-scoped", &class).await;
    let other = common::TestNamespace::new(&admin, "chart-other").await;
    let secrets_elsewhere: Api<Secret> = Api::namespaced(admin.clone(), other.name());
    common::apply(
        &secrets_elsewhere,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "private"},
               "stringData": {"k": "v"}}),
    )
    .await;
    // Installed into the tenant's namespace, scoped to it.
    let release = common::unique("lockstep");
    let objects = render(
        &release,
        tenant.name(),
        &[
            "scope.namespaced=true",
            "rbac.tokenServiceAccounts={tenant}",
        ],
    );
    apply_rendered(&admin, &objects).await;
    let (client, kubeconfig) = as_service_account(&admin, tenant.name(), &release).await;

    // Minimal: no Secret of another namespace, no cluster-wide list, no token for another SA.
    let err = Api::<Secret>::namespaced(client.clone(), other.name())
        .get("private")
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );
    let err = Api::<Secret>::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );
    let err = Api::<Namespace>::all(client.clone())
        .get(other.name())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );
    common::service_account(&admin, tenant.name(), "someone-else", None).await;
    let err = Api::<ServiceAccount>::namespaced(client.clone(), tenant.name())
        .create_token_request(
            "someone-else",
            &PostParams::default(),
            &TokenRequest::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );

    // Sufficient: a full sync under that identity.
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let lockstep = ops::Lockstep::start(tenant.name(), &class, &[], &[("KUBECONFIG", &kubeconfig)]);
    full_sync(&admin, tenant.name(), &class, &lockstep).await;
}

#[tokio::test]
async fn the_pod_meets_the_restricted_pod_security_profile() {
    let admin = common::client().await;
    let ns = common::TestNamespace::new(&admin, "chart-pss").await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .patch(
            ns.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}})),
        )
        .await
        .unwrap();
    let objects = render("lockstep", ns.name(), &[]);
    apply_rendered(&admin, &objects).await;
    let template = &of_kind(&objects, "Deployment")[0]["spec"]["template"];
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "lockstep-pss", "namespace": ns.name()},
        "spec": template["spec"],
    });
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(admin.clone(), ns.name());
    // The profile is enforced here: the same Pod without its securityContext is refused.
    let mut loose = pod.clone();
    loose["metadata"]["name"] = json!("lockstep-loose");
    loose["spec"]["securityContext"] = json!({});
    loose["spec"]["containers"][0]["securityContext"] = json!({});
    let loose = serde_json::from_value(loose).unwrap();
    let refused = pods
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &loose,
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("restricted"), "{refused}");
    let pod = serde_json::from_value(pod).unwrap();
    // A dry run goes through admission (PodSecurity included) and stores nothing.
    pods.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &pod,
    )
    .await
    .unwrap_or_else(|e| panic!("the restricted profile refused the chart's Pod: {e}"));
}

#[tokio::test]
async fn audit_values_give_the_key_secret_and_a_writable_spool_nothing_more() {
    let admin = common::client().await;
    let release_ns = common::TestNamespace::new(&admin, "chart-audit-rel").await;
    let class = common::unique("chart-audit");
    let tenant = ops::namespace_with_store(&admin, "chart-audit", &class).await;
    let release = common::unique("lockstep");
    let objects = render(
        &release,
        release_ns.name(),
        &[
            "scope.namespaced=true",
            &format!("scope.namespace={}", tenant.name()),
            "audit.sinks={stdout,https://audit.example/ingest}",
        ],
    );
    // The flags, and a volume where the read-only root filesystem would refuse the spool.
    let pod = &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"];
    let args = pod["containers"][0]["args"].as_array().unwrap();
    for flag in [
        "--audit-log=stdout",
        "--audit-log=https://audit.example/ingest",
        "--audit-spool-dir=/var/lib/lockstep/audit-spool",
        "--audit-spool-full=drop",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} missing: {args:?}");
    }
    assert_eq!(
        pod["containers"][0]["volumeMounts"],
        json!([{"name": "audit", "mountPath": "/var/lib/lockstep"}])
    );
    assert_eq!(pod["volumes"][0]["name"], "audit");
    assert!(pod["volumes"][0]["emptyDir"].is_object(), "{pod}");
    // Without sinks: no volume, no audit flag, no key Role.
    let plain = render(&release, release_ns.name(), &[]);
    let plain_pod = &of_kind(&plain, "Deployment")[0]["spec"]["template"]["spec"];
    assert!(plain_pod["volumes"].is_null(), "{plain_pod}");
    assert!(!rules(&plain).iter().any(|r| {
        r["resourceNames"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x == "lockstep-audit-key"))
    }));

    apply_rendered(&admin, &objects).await;
    let (client, kubeconfig) = as_service_account(&admin, release_ns.name(), &release).await;
    // Only the key Secret is readable in the release namespace.
    let release_secrets: Api<Secret> = Api::namespaced(client.clone(), release_ns.name());
    let err = release_secrets.list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );

    // Sufficient: lockstep audits a full sync under that identity and creates the key Secret.
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    let lockstep = ops::Lockstep::start(
        tenant.name(),
        &class,
        &[
            "--audit-log=stdout",
            &format!("--leader-election-namespace={}", release_ns.name()),
        ],
        &[
            ("KUBECONFIG", &kubeconfig),
            ("POD_NAMESPACE", release_ns.name()),
        ],
    );
    full_sync(&admin, tenant.name(), &class, &lockstep).await;
    let key: Api<Secret> = Api::namespaced(admin.clone(), release_ns.name());
    assert!(key.get_opt("lockstep-audit-key").await.unwrap().is_some());
    let log = std::fs::read_to_string(&lockstep.log).unwrap();
    assert!(
        log.contains("\"apiVersion\":\"audit.lockstep.dev/v1\""),
        "no audit record:\n{log}"
    );
}
