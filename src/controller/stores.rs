//! Finding the store an ExternalSecret entry uses, and deciding whether lockstep may use it for
//! that ExternalSecret: controller class, ClusterSecretStore `conditions`, and readiness.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store as Reader};
use kube::{Api, Client, ResourceExt};
use regex::Regex;

use crate::api::conditions::{ConditionStatus, READY};
use crate::api::meta::{SecretStoreRef, StoreKind};
use crate::api::secret_store::{
    ClusterSecretStore, ClusterSecretStoreCondition, SecretStore, SecretStoreSpec,
    SecretStoreStatus,
};

/// The label every namespace carries with its own name (set by the API server).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A store as an ExternalSecret sees it.
#[derive(Debug, Clone)]
pub struct Store {
    pub kind: StoreKind,
    pub name: String,
    /// `None` for a ClusterSecretStore.
    pub namespace: Option<String>,
    pub generation: i64,
    pub spec: SecretStoreSpec,
    pub status: Option<SecretStoreStatus>,
}

impl Store {
    /// `Kind/namespace/name`, the key of its cached clients.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.kind.as_str(),
            self.namespace.as_deref().unwrap_or(""),
            self.name
        )
    }

    pub fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
        })
    }

    /// Whether a lockstep started with `class` handles this store (an empty class matches all).
    pub fn is_handled_by(&self, class: &str) -> bool {
        Self::handles(&self.spec, class)
    }

    pub fn handles(spec: &SecretStoreSpec, class: &str) -> bool {
        spec.controller
            .as_deref()
            .is_none_or(|c| c.is_empty() || c == class)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} does not exist{hint}")]
    Missing {
        kind: &'static str,
        name: String,
        hint: String,
    },
    #[error(
        "the ExternalSecret names no store: set spec.secretStoreRef, or sourceRef.storeRef on every entry"
    )]
    NoStoreRef,
    #[error(
        "using cluster store {store:?} is not allowed from namespace {namespace:?}: denied by spec.condition; ask the cluster's administrators to admit this namespace in the ClusterSecretStore's spec.conditions, or use a SecretStore in this namespace"
    )]
    NotAllowed { store: String, namespace: String },
    #[error("{kind} {name:?} is not ready: {why}")]
    NotReady {
        kind: &'static str,
        name: String,
        why: String,
    },
    #[error(
        "ClusterSecretStore {store:?} has an invalid namespaceRegexes entry {regex:?}: {reason}"
    )]
    BadRegex {
        store: String,
        regex: String,
        reason: String,
    },
    #[error("reading {what}: {source}")]
    Kube { what: String, source: kube::Error },
}

/// See [`Cache::ready`].
const FIRST_LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The stores as the ExternalSecret controller's watches last saw them, so a reconcile does not
/// read its store from the API server (twice) every time. A store the cache does not hold yet
/// (its watch has not caught up, or it does not exist) is read from the API server.
#[derive(Clone)]
pub struct Cache {
    pub secret_stores: Reader<SecretStore>,
    pub cluster_stores: Option<Reader<ClusterSecretStore>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

impl Cache {
    /// Waits for the first list of stores: until then a reconcile would read its store with a
    /// GET of its own (at a cold start, one per ExternalSecret). A list that does not come (no
    /// permission to list stores) is waited for [`FIRST_LIST_WAIT`] at most, then stores are read
    /// one by one.
    async fn ready(&self) {
        let both = async {
            let _ = self.secret_stores.wait_until_ready().await;
            if let Some(cluster) = &self.cluster_stores {
                let _ = cluster.wait_until_ready().await;
            }
        };
        let _ = tokio::time::timeout(FIRST_LIST_WAIT, both).await;
    }

    fn get(&self, kind: StoreKind, name: &str, es_namespace: &str) -> Option<Store> {
        match kind {
            StoreKind::SecretStore => {
                let s = self
                    .secret_stores
                    .get(&ObjectRef::new(name).within(es_namespace))?;
                Some(Store {
                    kind,
                    name: name.to_owned(),
                    namespace: s.namespace(),
                    generation: s.metadata.generation.unwrap_or_default(),
                    spec: s.spec.clone(),
                    status: s.status.clone(),
                })
            }
            StoreKind::ClusterSecretStore => {
                let s = self.cluster_stores.as_ref()?.get(&ObjectRef::new(name))?;
                Some(Store {
                    kind,
                    name: name.to_owned(),
                    namespace: None,
                    generation: s.metadata.generation.unwrap_or_default(),
                    spec: s.spec.clone(),
                    status: s.status.clone(),
                })
            }
        }
    }
}

/// The store `reference` names, from `cache` when it holds it, else from the API server.
pub async fn get(
    client: &Client,
    cache: Option<&Cache>,
    reference: &SecretStoreRef,
    es_namespace: &str,
) -> Result<Store, StoreError> {
    let name = reference
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(StoreError::NoStoreRef)?;
    let kind = reference.kind_or_default();
    if let Some(cache) = cache {
        cache.ready().await;
        if let Some(store) = cache.get(kind, &name, es_namespace) {
            return Ok(store);
        }
    }
    let kube_err = |source| StoreError::Kube {
        what: format!("{} {name:?}", kind.as_str()),
        source,
    };
    let store = match kind {
        StoreKind::SecretStore => {
            let api: Api<SecretStore> = Api::namespaced(client.clone(), es_namespace);
            api.get_opt(&name).await.map_err(kube_err)?.map(|s| Store {
                kind,
                name: name.clone(),
                namespace: s.namespace(),
                generation: s.metadata.generation.unwrap_or_default(),
                spec: s.spec,
                status: s.status,
            })
        }
        StoreKind::ClusterSecretStore => {
            let api: Api<ClusterSecretStore> = Api::all(client.clone());
            api.get_opt(&name).await.map_err(kube_err)?.map(|s| Store {
                kind,
                name: name.clone(),
                namespace: None,
                generation: s.metadata.generation.unwrap_or_default(),
                spec: s.spec,
                status: s.status,
            })
        }
    };
    store.ok_or_else(|| StoreError::Missing {
        kind: kind.as_str(),
        hint: match kind {
            StoreKind::SecretStore => format!(
                " in namespace {es_namespace:?}: create it, or use kind: ClusterSecretStore"
            ),
            StoreKind::ClusterSecretStore => ": create it, or use kind: SecretStore".into(),
        },
        name,
    })
}

/// Whether a ClusterSecretStore's `conditions` admit a namespace with these labels. Any condition
/// may match; within one, a selector, a listed name or a regex each suffice. No conditions: all.
pub fn namespace_allowed(
    store: &Store,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<bool, StoreError> {
    if store.kind != StoreKind::ClusterSecretStore || store.spec.conditions.is_empty() {
        return Ok(true);
    }
    for condition in &store.spec.conditions {
        if condition_matches(condition, namespace, namespace_labels).map_err(
            |(regex, reason)| StoreError::BadRegex {
                store: store.name.clone(),
                regex,
                reason,
            },
        )? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn condition_matches(
    condition: &ClusterSecretStoreCondition,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<bool, (String, String)> {
    if condition.namespaces.iter().any(|n| n == namespace) {
        return Ok(true);
    }
    if let Some(selector) = &condition.namespace_selector
        && selector_matches(selector, labels, namespace)
    {
        return Ok(true);
    }
    for pattern in &condition.namespace_regexes {
        let re = Regex::new(pattern).map_err(|e| (pattern.clone(), e.to_string()))?;
        if re.is_match(namespace) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
    namespace: &str,
) -> bool {
    let mut labels = labels.clone();
    labels
        .entry(NAMESPACE_NAME_LABEL.into())
        .or_insert_with(|| namespace.into());
    match Selector::try_from(selector.clone()) {
        Ok(sel) => sel.matches(&labels),
        // An invalid selector matches nothing rather than everything.
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::secret_store::SecretStoreSpec;

    fn cluster_store(conditions: Vec<ClusterSecretStoreCondition>) -> Store {
        Store {
            kind: StoreKind::ClusterSecretStore,
            name: "shared".into(),
            namespace: None,
            generation: 1,
            spec: SecretStoreSpec {
                conditions,
                ..Default::default()
            },
            status: None,
        }
    }

    #[test]
    fn conditions_admit_by_name_selector_or_regex() {
        let labels = BTreeMap::from([("team".to_string(), "payments".to_string())]);
        let by_name = cluster_store(vec![ClusterSecretStoreCondition {
            namespaces: vec!["a".into()],
            ..Default::default()
        }]);
        assert!(namespace_allowed(&by_name, "a", &labels).unwrap());
        assert!(!namespace_allowed(&by_name, "b", &labels).unwrap());

        let selector = LabelSelector {
            match_labels: Some(labels.clone()),
            ..Default::default()
        };
        let by_label = cluster_store(vec![ClusterSecretStoreCondition {
            namespace_selector: Some(selector),
            ..Default::default()
        }]);
        assert!(namespace_allowed(&by_label, "b", &labels).unwrap());
        assert!(!namespace_allowed(&by_label, "b", &BTreeMap::new()).unwrap());

        let by_regex = cluster_store(vec![ClusterSecretStoreCondition {
            namespace_regexes: vec!["^team-".into()],
            ..Default::default()
        }]);
        assert!(namespace_allowed(&by_regex, "team-x", &BTreeMap::new()).unwrap());
        assert!(!namespace_allowed(&by_regex, "other", &BTreeMap::new()).unwrap());

        assert!(namespace_allowed(&cluster_store(vec![]), "any", &BTreeMap::new()).unwrap());
    }

    #[test]
    fn a_bad_regex_is_an_error_that_names_it() {
        let store = cluster_store(vec![ClusterSecretStoreCondition {
            namespace_regexes: vec!["(".into()],
            ..Default::default()
        }]);
        let err = namespace_allowed(&store, "a", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("\"(\""), "{err}");
    }

    #[test]
    fn controller_classes() {
        let mut store = cluster_store(vec![]);
        assert!(store.is_handled_by("default"));
        store.spec.controller = Some("other".into());
        assert!(!store.is_handled_by("default"));
        assert!(store.is_handled_by("other"));
    }
}
