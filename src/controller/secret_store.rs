//! The SecretStore and ClusterSecretStore controllers: build the provider client, validate it, and
//! report `Ready` with ESO's reasons; then validate again on the store's refresh interval.
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use lockstep_provider_api::{Capabilities as ProviderCapabilities, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::aws_identity::AuthError;
use super::connect::{self, ConnectError};
use super::context::Context;
use super::store_refs::RefError;
use super::stores::Store;
use crate::api::conditions::store as reason;
use crate::api::conditions::{Condition, ConditionStatus, READY};
use crate::api::meta::StoreKind;
use crate::api::secret_store::{
    Capabilities, ClusterSecretStore, SecretStore, SecretStoreSpec, SecretStoreStatus,
};

#[derive(Debug, thiserror::Error)]
#[error("writing the status of {store}: {source}")]
pub struct Error {
    store: String,
    source: kube::Error,
}

/// The two store kinds share everything but their scope.
pub trait StoreKindExt:
    Resource<DynamicType = ()>
    + HasStatus<Status = SecretStoreStatus>
    + Clone
    + Serialize
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    const KIND: StoreKind;
    fn spec(&self) -> &SecretStoreSpec;
    /// The API the object lives in (namespaced or cluster-wide).
    fn api_for(&self, client: kube::Client) -> Api<Self>;
    /// The objects of this kind lockstep handles.
    fn watched(ctx: &Context) -> Api<Self>;
}

impl StoreKindExt for SecretStore {
    const KIND: StoreKind = StoreKind::SecretStore;
    fn spec(&self) -> &SecretStoreSpec {
        &self.spec
    }
    fn api_for(&self, client: kube::Client) -> Api<Self> {
        Api::namespaced(client, &self.namespace().unwrap_or_default())
    }
    fn watched(ctx: &Context) -> Api<Self> {
        ctx.scoped_api()
    }
}

impl StoreKindExt for ClusterSecretStore {
    const KIND: StoreKind = StoreKind::ClusterSecretStore;
    fn spec(&self) -> &SecretStoreSpec {
        &self.spec
    }
    fn api_for(&self, client: kube::Client) -> Api<Self> {
        Api::all(client)
    }
    fn watched(ctx: &Context) -> Api<Self> {
        Api::all(ctx.client.clone())
    }
}

pub async fn run<K: StoreKindExt>(ctx: Arc<Context>) {
    let api = K::watched(&ctx);
    Controller::new(api, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "store reconcile loop");
            }
        })
        .await;
}

fn error_policy<K: StoreKindExt>(store: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(store.as_ref()).to_string();
    tracing::warn!(store = %key, error = %err, "store reconcile failed");
    Action::requeue(ctx.backoff(&key))
}

#[tracing::instrument(skip_all, fields(kind = K::KIND.as_str(), namespace = %obj.namespace().unwrap_or_default(), name = %obj.name_any()))]
async fn reconcile<K: StoreKindExt>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let spec = obj.spec().clone();
    if !Store::handles(&spec, &ctx.settings.controller_class) {
        return Ok(Action::await_change());
    }
    let store = Store {
        kind: K::KIND,
        name: obj.name_any(),
        namespace: obj.namespace(),
        generation: obj.meta().generation.unwrap_or_default(),
        spec,
        status: obj.status().cloned(),
    };
    let refresh = match store.spec.refresh_interval() {
        Ok(Some(d)) => d,
        _ => ctx.settings.store_refresh,
    };
    // A SecretStore is validated as its own namespace uses it, so ExternalSecrets reuse these credentials.
    let consumer = store.namespace.clone();
    let audit = connect::Audit {
        auditor: &ctx.settings.audit,
        object: None,
        trigger: crate::audit::Trigger::StoreChange,
    };
    let connected = connect::provider(
        &ctx.client,
        &ctx.clients,
        &store,
        consumer.as_deref(),
        audit,
    )
    .await
    .map(|c| c.reader.provider().clone());
    let (condition, capabilities) = match connected {
        Ok(provider) => match provider.validate().await {
            Ok(Validation::Ready) => (
                ok(reason::VALID, reason::MSG_VALID),
                Some(provider.capabilities()),
            ),
            Ok(Validation::Unknown) => (
                ok(reason::VALIDATION_UNKNOWN, reason::MSG_VALIDATION_UNKNOWN),
                Some(provider.capabilities()),
            ),
            Err(e) => (failed(reason::MSG_VALIDATION_FAILED, &e.to_string()), None),
        },
        // A ClusterSecretStore whose auth depends on the ExternalSecret's namespace cannot be
        // checked alone: ESO reports it Ready with ValidationUnknown, and so does lockstep.
        Err(
            ConnectError::Auth(AuthError::Referent { .. })
            | ConnectError::Reference(RefError::Referent { .. }),
        ) => (
            ok(reason::VALIDATION_UNKNOWN, reason::MSG_VALIDATION_UNKNOWN),
            None,
        ),
        Err(e) => {
            ctx.clients.forget_store(&store.id());
            (failed(reason::MSG_CLIENT_FAILED, &e.to_string()), None)
        }
    };
    let key = ObjectRef::from_obj(obj.as_ref()).to_string();
    let previous = obj.status().cloned().unwrap_or_default();
    let status = next_status(&previous, condition, capabilities, store.generation);
    let ready_now = status.conditions[0].status == ConditionStatus::True;
    ctx.metrics.store_condition(
        K::KIND == StoreKind::ClusterSecretStore,
        &store.namespace.clone().unwrap_or_default(),
        &store.name,
        READY,
        if ready_now { "True" } else { "False" },
    );
    if status != previous {
        let ready = &status.conditions[0];
        let warning = ready.status != ConditionStatus::True;
        let event_reason = ready.reason.clone().unwrap_or_default();
        ctx.event(
            &obj.object_ref(&()),
            warning,
            &event_reason,
            ready.message.clone().unwrap_or_default(),
        )
        .await;
        obj.api_for(ctx.client.clone())
            .patch_status(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
            .map_err(|source| Error {
                store: key.clone(),
                source,
            })?;
    }
    if status.conditions[0].status == ConditionStatus::True {
        ctx.succeeded(&key);
        Ok(Action::requeue(refresh))
    } else {
        Ok(Action::requeue(
            ctx.backoff(&key).max(Duration::from_secs(30)).min(refresh),
        ))
    }
}

fn ok(reason: &'static str, message: &'static str) -> (ConditionStatus, &'static str, String) {
    (ConditionStatus::True, reason, message.to_owned())
}

fn failed(message: &'static str, detail: &str) -> (ConditionStatus, &'static str, String) {
    (
        ConditionStatus::False,
        reason::INVALID_PROVIDER_CONFIG,
        format!("{message}: {detail}"),
    )
}

/// The store's next status; `lastTransitionTime` moves only when Ready flips.
fn next_status(
    previous: &SecretStoreStatus,
    (status, reason, message): (ConditionStatus, &'static str, String),
    capabilities: Option<ProviderCapabilities>,
    generation: i64,
) -> SecretStoreStatus {
    let old = previous.conditions.iter().find(|c| c.type_ == READY);
    let transition = match old {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::now(),
        )),
    };
    SecretStoreStatus {
        conditions: vec![Condition {
            type_: READY.into(),
            status,
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: transition,
        }],
        capabilities: capabilities.map(|c| match c {
            ProviderCapabilities::ReadOnly => Capabilities::ReadOnly,
            ProviderCapabilities::WriteOnly => Capabilities::WriteOnly,
            ProviderCapabilities::ReadWrite => Capabilities::ReadWrite,
        }),
        observed_generation: Some(generation),
    }
}
