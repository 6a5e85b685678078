//! The ExternalSecret controller: resolve the stores, fetch, materialize, apply with the guards,
//! report; then requeue at the next refresh.
mod fetch;
pub(crate) mod refresh;
mod status;
mod target;
mod templates;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store as Reader};
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, watcher};
use kube::{Api, Resource, ResourceExt};
use lockstep_provider_api::ErrorClass;
use serde_json::json;

use self::status::Outcome;
use super::audited;
use super::connect::Audit;
use super::context::{Context, lanes};
use crate::api::conditions::external_secret as reason;
use crate::api::external_secret::{
    CreationPolicy, DeletionPolicy, ExternalSecret, FINALIZER, LABEL_MANAGED, LABEL_MANAGED_VALUE,
};
use crate::api::meta::StoreKind;
use crate::api::secret_store::{ClusterSecretStore, SecretStore};
use crate::audit::Verb;
use crate::fetch::Lane;
use crate::materialize;
use crate::materialize::hash;

/// Failures of the Kubernetes API while writing: retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// Runs the controller until the stream ends (on shutdown).
pub async fn run(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let es_api: Api<ExternalSecret> = ctx.scoped_api();
    let (reader, writer) = kube::runtime::reflector::store();
    // Status writes by lockstep itself do not trigger a reconcile: only what a user changes does
    // (spec, labels, annotations, finalizers; deletion).
    let (readiness, metrics, seen) = (ctx.readiness.clone(), ctx.metrics.clone(), ctx.clone());
    let changes = watcher(es_api, watcher::Config::default())
        .default_backoff()
        // The cache keeps every ExternalSecret: without managedFields, which lockstep never
        // reads and which can be larger than the rest of the object.
        .modify(|es| es.managed_fields_mut().clear())
        .reflect(writer)
        .inspect(move |event| match event {
            // Ready once the first list is in the cache (`/readyz`).
            Ok(watcher::Event::InitDone) => readiness.set(true),
            Ok(watcher::Event::Apply(es) | watcher::Event::InitApply(es)) => seen.status_seen(es),
            // A deleted ExternalSecret's series go, as in ESO.
            Ok(watcher::Event::Delete(es)) => {
                metrics.forget_external_secret(&es.namespace().unwrap_or_default(), &es.name_any())
            }
            _ => {}
        })
        .touched_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::labels)
                .combine(predicates::annotations)
                .combine(predicates::finalizers),
            Default::default(),
        );
    // Only managed Secrets, metadata only: payloads are never cached.
    let managed = watcher(
        ctx.scoped_api::<PartialObjectMeta<Secret>>(),
        watcher::Config::default().labels(&format!("{LABEL_MANAGED}={LABEL_MANAGED_VALUE}")),
    )
    .default_backoff()
    .touched_objects()
    .try_filter({
        let ctx = ctx.clone();
        move |s| {
            let own = ctx.seen_by_watch(
                &s.namespace().unwrap_or_default(),
                &s.name_any(),
                s.resource_version().as_deref(),
            );
            std::future::ready(!own)
        }
    });
    // The stores are cached as they are watched: a reconcile reads its store from here, and a
    // store's change reaches its ExternalSecrets only after the cache has it.
    let (store_reader, store_writer) = kube::runtime::reflector::store();
    let stores = watcher(ctx.scoped_api::<SecretStore>(), watcher::Config::default())
        .default_backoff()
        .modify(|s| s.managed_fields_mut().clear())
        .reflect(store_writer)
        .touched_objects();
    // Scoped to one namespace, lockstep leaves cluster stores (and their users) alone.
    let (cluster_stores, cluster_reader) = match ctx.settings.namespace {
        Some(_) => (futures::stream::pending().boxed(), None),
        None => {
            let (reader, writer) = kube::runtime::reflector::store();
            let stream = watcher(
                Api::<ClusterSecretStore>::all(client.clone()),
                watcher::Config::default(),
            )
            .default_backoff()
            .modify(|s| s.managed_fields_mut().clear())
            .reflect(writer)
            .touched_objects()
            .boxed();
            (stream, Some(reader))
        }
    };
    let _ = ctx.external_secrets.set(reader.clone());
    let _ = ctx.stores.set(super::stores::Cache {
        secret_stores: store_reader,
        cluster_stores: cluster_reader,
    });

    let (r1, r2, r3) = (reader.clone(), reader.clone(), reader.clone());
    Controller::for_stream(changes, reader)
        .with_config(
            kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency),
        )
        .watches_stream(managed, move |s: PartialObjectMeta<Secret>| {
            users_of_secret(&r1, &s)
        })
        .watches_stream(stores, move |s: SecretStore| {
            users_of_store(&r2, StoreKind::SecretStore, &s.name_any(), s.namespace())
        })
        .watches_stream(cluster_stores, move |s: ClusterSecretStore| {
            users_of_store(&r3, StoreKind::ClusterSecretStore, &s.name_any(), None)
        })
        .shutdown_on_signal()
        .run(reconcile_measured, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile loop");
            }
        })
        .await;
}

/// The ExternalSecrets writing the Secret `s`: a Secret edited or deleted by hand is restored now.
fn users_of_secret(
    reader: &Reader<ExternalSecret>,
    s: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<ExternalSecret>> {
    let (ns, name) = (s.namespace(), s.name_any());
    reader
        .state()
        .iter()
        .filter(|es| es.namespace() == ns && es.spec.target_name(&es.name_any()) == name)
        .map(|es| ObjectRef::from_obj(es.as_ref()))
        .collect()
}

/// The ExternalSecrets using a store: a store that becomes ready is used at once, not after a backoff.
fn users_of_store(
    reader: &Reader<ExternalSecret>,
    kind: StoreKind,
    name: &str,
    namespace: Option<String>,
) -> Vec<ObjectRef<ExternalSecret>> {
    reader
        .state()
        .iter()
        .filter(|es| namespace.is_none() || es.namespace() == namespace)
        .filter(|es| {
            fetch::store_refs(es)
                .iter()
                .any(|r| r.kind_or_default() == kind && r.name.as_deref() == Some(name))
        })
        .map(|es| ObjectRef::from_obj(es.as_ref()))
        .collect()
}

fn error_policy(es: Arc<ExternalSecret>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(es.as_ref()).to_string();
    tracing::warn!(externalsecret = %key, error = %err, "reconcile failed");
    Action::requeue(ctx.backoff(&key))
}

/// Every reconcile counts, as ESO's `externalsecret_sync_calls_total` does.
async fn reconcile_measured(es: Arc<ExternalSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
    let es = ctx.with_written_status(es);
    // The wait for a lane comes before the reconcile's own future exists (it is large: every
    // local of every step), so thousands of ExternalSecrets waiting in a wave or a cold start
    // cost a few hundred bytes each instead.
    let Some(turns) = enter_lane(&ctx, &es).await else {
        return Ok(Action::requeue(lanes::BUSY_RETRY));
    };
    let result = Box::pin(reconcile(es, ctx.clone(), turns)).await;
    ctx.metrics
        .reconciled(&namespace, &name, started.elapsed(), result.is_err());
    result
}

/// The turns a sync holds in the two lanes (see `lanes`).
struct Turns {
    /// A periodic refresh: it takes a turn in the refresh lane for its API requests.
    refreshing: bool,
    _in_flight: Option<crate::controller::places::Place>,
    _first: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Waits for a turn in the lane of a due sync: a periodic refresh waits for a turn in the
/// refresh lane before its requests to the API server, so a refresh wave never queues many
/// requests ahead of a new ExternalSecret's; a first sync waits in the first lane. `None`: the
/// refresh lane is full and the controller is bounded (`--concurrent`), try again later.
async fn enter_lane(ctx: &Context, es: &ExternalSecret) -> Option<Turns> {
    let version = hash::synced_resource_version(
        es.metadata.generation,
        es.metadata.labels.as_ref(),
        es.metadata.annotations.as_ref(),
    );
    if !refresh::should_refresh(es, ctx.refresh_slot(es), &version, Timestamp::now()) {
        return Some(Turns {
            refreshing: false,
            _in_flight: None,
            _first: None,
        });
    }
    Some(match refresh::lane(es, &version) {
        Lane::Refresh => Turns {
            refreshing: true,
            _in_flight: Some(ctx.refresh_in_flight(refresh::read_key(es)).await?),
            _first: None,
        },
        Lane::First => Turns {
            refreshing: false,
            _in_flight: None,
            _first: ctx.first_turn().await,
        },
    })
}

/// One sync. The provider reads and API requests it awaits are boxed (`Box::pin`): an async
/// fn's future is as large as the largest future it awaits, and a refresh holds its future
/// while it waits for a lane turn, hundreds at once in a wave (6 KB instead of 23 KB each).
#[tracing::instrument(skip_all, fields(namespace = %es.namespace().unwrap_or_default(), name = %es.name_any()))]
async fn reconcile(
    es: Arc<ExternalSecret>,
    ctx: Arc<Context>,
    turns: Turns,
) -> Result<Action, Error> {
    let started = Timestamp::now();
    let namespace = es.namespace().unwrap_or_default();
    let name = es.name_any();
    let key = ObjectRef::from_obj(es.as_ref()).to_string();
    let es_api: Api<ExternalSecret> = Api::namespaced(ctx.client.clone(), &namespace);

    // ESO's finalizer blocks deletion once ESO is gone; lockstep relies on garbage collection.
    if es.finalizers().iter().any(|f| f == FINALIZER) {
        let kept: Vec<&String> = es.finalizers().iter().filter(|f| *f != FINALIZER).collect();
        let patch =
            json!({"metadata": {"finalizers": kept, "resourceVersion": es.resource_version()}});
        Box::pin(es_api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)))
            .await
            .map_err(kube_err("removing ESO's finalizer"))?;
    }
    if es.meta().deletion_timestamp.is_some() {
        ctx.forget(es.metadata.uid.as_deref().unwrap_or_default());
        ctx.secret_written(&namespace, es.spec.target_name(&name), None);
        return Ok(Action::await_change());
    }
    if let Some(other) = Box::pin(handled_elsewhere(&ctx, &es)).await {
        tracing::debug!(reason = %other, "left to another controller");
        return Ok(Action::await_change());
    }
    if es
        .spec
        .target
        .manifest
        .as_ref()
        .is_some_and(|m| !m.is_secret())
    {
        let detail =
            "spec.target.manifest (generic targets) is not supported: lockstep writes Secrets only"
                .to_string();
        return report_failure(
            &ctx,
            &es,
            reason::MSG_UPDATE_FAILED,
            detail,
            ErrorClass::Invalid,
            started,
        )
        .await;
    }

    let version = hash::synced_resource_version(
        es.metadata.generation,
        es.metadata.labels.as_ref(),
        es.metadata.annotations.as_ref(),
    );
    let slot = ctx.refresh_slot(&es);
    let due = refresh::should_refresh(&es, slot, &version, started);
    let lane = refresh::lane(&es, &version);

    let secret_name = es.spec.target_name(&name).to_owned();
    // The managed-Secret watch says whether the Secret is as lockstep's last write left it.
    let untouched = ctx.untouched_since_written(&namespace, &secret_name);
    // Woken by something other than its own Secret (a store's change, a restart of the watch):
    // with nothing due and the Secret as lockstep left it, there is nothing to read or write.
    if !due && untouched {
        return Ok(requeue_at_refresh(&es, slot, started));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let read_secret = || async {
        secrets
            .get_opt(&secret_name)
            .await
            .map_err(kube_err(format!("reading Secret {secret_name}")))
    };
    // The Secret is read after the provider when its drift is already known: a first sync or a
    // changed spec writes whatever it holds, and a refresh of a Secret the watch saw nobody touch
    // finds it intact. A due reconcile then makes no API request before its provider read, so
    // ExternalSecrets due together reach the fetch layer together and share its calls; an
    // ExternalSecret whose store is not validated yet costs no read; and the read is as fresh
    // as it can be before the write. Otherwise the Secret is read first, to know whether it
    // drifted (a reconcile that is not due stops there when it has not).
    let (read_before, intact) = if due && (lane == Lane::First || untouched) {
        (None, untouched)
    } else {
        let _turn = if turns.refreshing {
            ctx.refresh_turn().await
        } else {
            None
        };
        let existing = Box::pin(read_secret()).await?;
        let intact = target::is_intact(existing.as_ref(), &es);
        if !due && intact {
            return Ok(requeue_at_refresh(&es, slot, started));
        }
        (Some(existing), intact)
    };
    let object = audited::object_ref(&es);
    let audit = Audit {
        auditor: &ctx.settings.audit,
        object: Some(&object),
        // `intact` does not count for a first sync: the trigger is the spec change.
        trigger: audited::trigger_of(&ctx.settings.audit, &es, &version, intact, due),
    };

    // A Secret edited or deleted by hand is restored in the first lane: someone is waiting.
    let lane = if due { lane } else { Lane::First };
    // A refresh takes its lane turn only for its API requests: none is held while the provider
    // is read, so the refreshes due at one instant reach the fetch layer together (and share its
    // calls) instead of passing the lane a few at a time.
    let fetched = Box::pin(fetch::fetch(&ctx, &es, audit, lane)).await;
    let _turn = if turns.refreshing {
        ctx.refresh_turn().await
    } else {
        None
    };
    let fetched = match fetched {
        Ok(f) => f,
        Err(fetch::FetchError::StoreNotValidatedYet) => {
            tracing::debug!("waiting for the store to be validated");
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        Err(e) => {
            let class = e.class();
            return report_failure(
                &ctx,
                &es,
                reason::MSG_GET_PROVIDER_DATA_FAILED,
                e.to_string(),
                class,
                started,
            )
            .await;
        }
    };
    let existing = match read_before {
        Some(existing) => existing,
        None => Box::pin(read_secret()).await?,
    };
    let reference = es.object_ref(&());
    for missing in &fetched.missing {
        let note = format!("secret does not exist at provider using {missing}");
        ctx.event(
            &reference,
            false,
            reason::EVENT_MISSING_PROVIDER_SECRET,
            note,
        )
        .await;
    }

    let policy = es.spec.target.creation_policy;
    let outcome = if fetched.data.is_empty()
        && es.spec.target.deletion_policy != DeletionPolicy::Merge
    {
        match es.spec.target.deletion_policy {
            DeletionPolicy::Delete => {
                if let Some(secret) = existing.as_ref().filter(|s| target::is_ours(s, &es)) {
                    let asked = crate::audit::record::now();
                    let deleted =
                        Box::pin(secrets.delete(&secret.name_any(), &DeleteParams::default()))
                            .await;
                    ctx.secret_written(&namespace, &secret_name, None);
                    let removed = audited::keys_removed(Some(secret), &Default::default());
                    let error = deleted.as_ref().err().map(|e| e.to_string());
                    let (ns, data) = (namespace.as_str(), &fetched.data);
                    let record = audited::Written {
                        verb: Verb::Delete,
                        namespace: ns,
                        name: &secret_name,
                        after: Some(secret),
                        data,
                        removed,
                        error,
                        asked,
                    };
                    audited::secret_written(audit, record);
                    deleted.map_err(kube_err(format!("deleting Secret {secret_name}")))?;
                    ctx.event(
                        &reference,
                        false,
                        reason::EVENT_DELETED,
                        reason::MSG_DELETED.into(),
                    )
                    .await;
                }
                Outcome::Synced {
                    reason: reason::SECRET_DELETED,
                    message: reason::MSG_DELETED,
                }
            }
            _ => Outcome::Synced {
                reason: reason::SECRET_SYNCED,
                message: reason::MSG_SYNCED_RETAIN,
            },
        }
    } else if policy == CreationPolicy::None {
        Outcome::Synced {
            reason: reason::SECRET_SYNCED,
            message: reason::MSG_SYNCED,
        }
    } else if policy == CreationPolicy::Merge && existing.is_none() {
        Outcome::Synced {
            reason: reason::SECRET_MISSING,
            message: reason::MSG_MISSING,
        }
    } else {
        // ESO applies the template only to write: the deletion policy above looks at the
        // fetched data, and a template error leaves the Secret as it is.
        let rendered = match Box::pin(templates::render(
            &ctx.client,
            &es,
            &namespace,
            fetched.data,
        ))
        .await
        {
            Ok(r) => r,
            Err(e) => {
                let class = e.class();
                return report_failure(
                    &ctx,
                    &es,
                    reason::MSG_UPDATE_FAILED,
                    e.to_string(),
                    class,
                    started,
                )
                .await;
            }
        };
        if let Err(e) = materialize::fits_in_a_secret(&rendered.data) {
            return report_failure(
                &ctx,
                &es,
                reason::MSG_UPDATE_FAILED,
                e.to_string(),
                ErrorClass::Invalid,
                started,
            )
            .await;
        }
        if let Err(guard) = target::check(existing.as_ref(), &es, &rendered) {
            let name = guard.reason();
            audited::refused(
                audit,
                &namespace,
                existing.as_ref(),
                &secret_name,
                name,
                guard.to_string(),
            );
            let message = match guard {
                target::GuardError::OwnedByAnother { .. } => reason::MSG_OWNED_BY_OTHER,
                target::GuardError::Immutable { .. } => reason::MSG_UPDATE_IMMUTABLE,
                _ => reason::MSG_UPDATE_FAILED,
            };
            return report_failure(
                &ctx,
                &es,
                message,
                guard.to_string(),
                ErrorClass::Invalid,
                started,
            )
            .await;
        }
        if let Some(why) = ctx.settings.audit.blocks_writes() {
            let detail = format!(
                "not writing Secret {secret_name}: {why}; lockstep runs with --audit-spool-full=block and writes again once the audit sink takes records"
            );
            return report_failure(
                &ctx,
                &es,
                reason::MSG_UPDATE_FAILED,
                detail,
                ErrorClass::Unavailable,
                started,
            )
            .await;
        }
        let desired = target::desired(&es, &secret_name, &rendered, existing.as_ref());
        let params = PatchParams::apply(&target::manager(&es)).force();
        let verb = if existing.is_some() {
            Verb::Update
        } else {
            Verb::Create
        };
        let asked = crate::audit::record::now();
        let applied = Box::pin(secrets.patch(&secret_name, &params, &Patch::Apply(&desired))).await;
        let after = desired
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        let removed = audited::keys_removed(
            existing.as_ref(),
            &target::data_after_apply(existing.as_ref(), &target::manager(&es), &after),
        );
        let unchanged = applied.as_ref().is_ok_and(|w| {
            existing
                .as_ref()
                .is_some_and(|b| b.resource_version() == w.resource_version())
        });
        if !unchanged {
            let record = audited::Written {
                verb,
                namespace: &namespace,
                name: &secret_name,
                after: applied.as_ref().ok().or(existing.as_ref()),
                data: &rendered.data,
                removed,
                error: applied.as_ref().err().map(|e| e.to_string()),
                asked,
            };
            audited::secret_written(audit, record);
        }
        let written = match applied {
            Ok(w) => {
                ctx.secret_written(&namespace, &secret_name, w.resource_version());
                w
            }
            Err(e) => {
                let detail = format!("writing Secret {secret_name}: {e}");
                return report_failure(
                    &ctx,
                    &es,
                    reason::MSG_UPDATE_FAILED,
                    detail,
                    ErrorClass::Unavailable,
                    started,
                )
                .await;
            }
        };
        match existing {
            None => {
                ctx.event(
                    &reference,
                    false,
                    reason::EVENT_CREATED,
                    reason::EVENT_MSG_CREATED.into(),
                )
                .await
            }
            Some(before) if before.resource_version() != written.resource_version() => {
                ctx.event(
                    &reference,
                    false,
                    reason::EVENT_UPDATED,
                    reason::EVENT_MSG_UPDATED.into(),
                )
                .await
            }
            Some(_) => {}
        }
        Outcome::Synced {
            reason: reason::SECRET_SYNCED,
            message: reason::MSG_SYNCED,
        }
    };
    Box::pin(write_status(&ctx, &es, &outcome, started, &version)).await?;
    ctx.succeeded(&key);
    Ok(
        match refresh::after_sync(&es, ctx.refresh_slot(&es), started, Timestamp::now()) {
            Some(d) => Action::requeue(d),
            None => Action::await_change(),
        },
    )
}

/// Why another controller handles this ExternalSecret, if one does: a referenced store of
/// another controller class, or a cluster store while lockstep is scoped to one namespace.
async fn handled_elsewhere(ctx: &Context, es: &ExternalSecret) -> Option<String> {
    let namespace = es.namespace().unwrap_or_default();
    for r in fetch::store_refs(es) {
        if ctx.settings.namespace.is_some() && r.kind_or_default() == StoreKind::ClusterSecretStore
        {
            return Some("a ClusterSecretStore, while lockstep is scoped to one namespace".into());
        }
        if let Ok(store) = super::stores::get(&ctx.client, ctx.stores.get(), &r, &namespace).await
            && !store.is_handled_by(&ctx.settings.controller_class)
        {
            return Some(format!(
                "controller class {:?}",
                store.spec.controller.unwrap_or_default()
            ));
        }
    }
    None
}

fn requeue_at_refresh(es: &ExternalSecret, slot: u64, now: Timestamp) -> Action {
    match refresh::next_refresh_in(es, slot, now) {
        // Just after the due time, so the check finds the interval elapsed, and well within the
        // refresh window of the others due at that instant (a second later, its read would be a
        // call of its own).
        Some(d) => Action::requeue(d + Duration::from_millis(10)),
        None => Action::await_change(),
    }
}

/// Records a failure in the status and a Warning event, and picks the retry: transient failures
/// back off exponentially, invalid configuration is retried slowly (it may depend on objects that
/// lockstep does not watch, such as a credentials Secret).
async fn report_failure(
    ctx: &Context,
    es: &ExternalSecret,
    message: &'static str,
    detail: String,
    class: ErrorClass,
    started: Timestamp,
) -> Result<Action, Error> {
    tracing::warn!(error = %detail, class = class.as_str(), "sync failed");
    ctx.metrics
        .sync_failed(&es.namespace().unwrap_or_default(), &es.name_any());
    ctx.event(
        &es.object_ref(&()),
        true,
        reason::EVENT_UPDATE_FAILED,
        detail.clone(),
    )
    .await;
    let version = es
        .status
        .as_ref()
        .and_then(|s| s.synced_resource_version.clone())
        .unwrap_or_default();
    // Boxed, as in `reconcile`: this future is part of every reconcile's.
    Box::pin(write_status(
        ctx,
        es,
        &Outcome::Failed { message, detail },
        started,
        &version,
    ))
    .await?;
    let key = ObjectRef::from_obj(es).to_string();
    let delay = ctx.backoff(&key);
    Ok(Action::requeue(if class.is_transient() {
        delay
    } else {
        delay.max(Duration::from_secs(60))
    }))
}

async fn write_status(
    ctx: &Context,
    es: &ExternalSecret,
    outcome: &Outcome,
    started: Timestamp,
    version: &str,
) -> Result<(), Error> {
    let secret_name = es.spec.target_name(&es.name_any()).to_owned();
    let next = status::next(es, outcome, started, version, &secret_name);
    let (namespace, name) = (es.namespace().unwrap_or_default(), es.name_any());
    let synced = matches!(outcome, Outcome::Synced { .. });
    ctx.metrics.es_condition(
        &namespace,
        &name,
        "Ready",
        if synced { "True" } else { "False" },
    );
    if let Outcome::Synced { reason, .. } = outcome {
        let keeps_a_secret = *reason == reason::SECRET_SYNCED
            && es.spec.target.creation_policy != CreationPolicy::None;
        ctx.metrics
            .managed_secret(&namespace, &name, keeps_a_secret);
    }
    if !status::differs(es, &next) {
        return Ok(());
    }
    let api: Api<ExternalSecret> =
        Api::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let patch = json!({ "status": next });
    api.patch_status(
        &es.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube_err("writing the ExternalSecret's status"))?;
    ctx.status_written(es.metadata.uid.as_deref().unwrap_or_default(), &next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose client points nowhere: these tests only measure futures, never poll them.
    fn unconnected_context() -> Context {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Context::new(
            kube::Client::try_from(config).unwrap(),
            Default::default(),
            crate::telemetry::Metrics::new(),
            crate::telemetry::Readiness::default(),
        )
    }

    /// A refresh under way holds its reconcile's future while it waits for a lane turn, 512 of
    /// them at once in a wave: the provider reads and API requests it awaits are boxed, so that
    /// the future holds its own locals and not the largest of them (23 KB unboxed, in a debug
    /// build).
    #[tokio::test]
    async fn a_reconcile_waiting_for_its_turn_is_small() {
        let ctx = Arc::new(unconnected_context());
        let es = Arc::new(ExternalSecret::new("x", Default::default()));
        let turns = Turns {
            refreshing: true,
            _in_flight: None,
            _first: None,
        };
        let size = std::mem::size_of_val(&reconcile(es, ctx, turns));
        assert!(size < 10 * 1024, "{size} bytes");
    }

    /// Every refresh let in waits in `fetch` for its batched read, up to 512 at once: the store
    /// lookup and connection it awaits first are boxed, so that waiting holds about 3 KB, not
    /// 18 KB (18,248 bytes unboxed, in the debug and the release build alike).
    #[tokio::test]
    async fn a_refresh_waiting_for_its_read_is_small() {
        let ctx = unconnected_context();
        let es = ExternalSecret::new("x", Default::default());
        let audit = Audit {
            auditor: &ctx.settings.audit,
            object: None,
            trigger: crate::audit::Trigger::Periodic,
        };
        let size = std::mem::size_of_val(&fetch::fetch(&ctx, &es, audit, Lane::Refresh));
        assert!(size < 4 * 1024, "{size} bytes");
    }
}
