//! Fetching everything an ExternalSecret asks for, entry by entry, in ESO's order: `dataFrom`
//! first (later entries overwrite earlier keys), then `data` (which overrides `dataFrom`).
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, ResourceExt};
use lockstep_provider_api::{
    ErrorClass, Fetched as Read, FindQuery, ProviderError, RemoteRef, SecretValue, VersionInfo,
};

use crate::api::external_secret::{
    ConversionStrategy, DeletionPolicy, ExternalSecret, ExternalSecretFind, ExternalSecretRewrite,
    MetadataPolicy, RemoteRef as SpecRemoteRef,
};
use crate::api::meta::{SecretStoreRef, StoreKind};
use crate::audit::record::now;
use crate::controller::audited::{self, ReadSource};
use crate::controller::connect::{self, Audit, ConnectError};
use crate::controller::stores::{self, Store, StoreError};
use crate::fetch::{ClientCache, Lane, Reader};
use crate::materialize::{
    self, AssembleError, DataFromResult, DataFromSource, DataResult, KeyHandling,
};

/// What was fetched, ready to be written.
#[derive(Debug, Default)]
pub struct Fetched {
    pub data: BTreeMap<String, SecretValue>,
    /// Entries skipped because the remote secret no longer exists (deletionPolicy Delete/Merge).
    pub missing: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{store}: {source}")]
    Connect { store: String, source: ConnectError },
    #[error("error processing {entry}, err: {source}")]
    Entry { entry: String, source: EntryError },
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    /// Not a failure: the store's own controller has not looked at it yet, and its status change
    /// will requeue the ExternalSecret.
    #[error("waiting for the store to be validated")]
    StoreNotValidatedYet,
}

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Property(materialize::PropertyError),
    #[error(transparent)]
    Extract(materialize::ExtractError),
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
}

impl FetchError {
    /// The class that decides retry and reason: transient errors back off, the rest wait for a change.
    pub fn class(&self) -> ErrorClass {
        match self {
            FetchError::Store(StoreError::Kube { .. }) => ErrorClass::Unavailable,
            // A store that is not ready yet, or missing, is waited for: its watch requeues us.
            FetchError::Store(_) => ErrorClass::Invalid,
            FetchError::Connect { source, .. } => connect::class_of(source),
            FetchError::Entry {
                source: EntryError::Provider(e),
                ..
            } => e.class,
            FetchError::Entry { .. } | FetchError::Assemble(_) => ErrorClass::Invalid,
            FetchError::StoreNotValidatedYet => ErrorClass::Unavailable,
        }
    }
}

/// One reconcile's view of stores and providers, so an entry repeating a store costs nothing.
struct Resolver<'a> {
    client: &'a Client,
    cache: &'a ClientCache,
    stores: Option<&'a stores::Cache>,
    namespace: String,
    providers: HashMap<(StoreKind, String), (Reader, ReadSource)>,
    namespace_labels: Option<BTreeMap<String, String>>,
    audit: Audit<'a>,
}

impl Resolver<'_> {
    /// The store's provider (from the shared client cache after the store's first use). What
    /// it awaits is boxed: `connect::provider`'s future is about 15 KB, its size set by the
    /// connecting it rarely does (AWS credentials, a TokenRequest), and without the box every
    /// refresh waiting in `fetch` for its batched read would carry that much, hundreds at once
    /// in a wave (BENCHMARKS.md, session 6).
    async fn provider(
        &mut self,
        reference: &SecretStoreRef,
    ) -> Result<(Reader, ReadSource), FetchError> {
        let key = (
            reference.kind_or_default(),
            reference.name.clone().unwrap_or_default(),
        );
        if let Some(p) = self.providers.get(&key) {
            return Ok(p.clone());
        }
        let store = Box::pin(stores::get(
            self.client,
            self.stores,
            reference,
            &self.namespace,
        ))
        .await?;
        Box::pin(self.check_allowed(&store)).await?;
        let connected = Box::pin(connect::provider(
            self.client,
            self.cache,
            &store,
            Some(&self.namespace),
            self.audit,
        ))
        .await
        .map_err(|source| FetchError::Connect {
            store: format!("{} {:?}", store.kind.as_str(), store.name),
            source,
        })?;
        let source = ReadSource {
            store: audited::store_of(&store),
            tenant: connected.tenant,
        };
        self.providers
            .insert(key, (connected.reader.clone(), source.clone()));
        Ok((connected.reader, source))
    }

    async fn check_allowed(&mut self, store: &Store) -> Result<(), FetchError> {
        if store.kind == StoreKind::ClusterSecretStore && !store.spec.conditions.is_empty() {
            if self.namespace_labels.is_none() {
                let api: Api<Namespace> = Api::all(self.client.clone());
                let ns = api
                    .get(&self.namespace)
                    .await
                    .map_err(|source| StoreError::Kube {
                        what: format!("namespace {:?}", self.namespace),
                        source,
                    })?;
                self.namespace_labels = Some(ns.labels().clone());
            }
            let labels = self.namespace_labels.clone().unwrap_or_default();
            if !stores::namespace_allowed(store, &self.namespace, &labels)? {
                return Err(StoreError::NotAllowed {
                    store: store.name.clone(),
                    namespace: self.namespace.clone(),
                }
                .into());
            }
        }
        // The flood gate: only Ready stores are used, so a broken store is reported once, on the store.
        if store
            .status
            .as_ref()
            .is_none_or(|s| s.conditions.is_empty())
        {
            return Err(FetchError::StoreNotValidatedYet);
        }
        if !store.is_ready() {
            let why = store
                .status
                .as_ref()
                .and_then(|s| {
                    s.conditions
                        .iter()
                        .find(|c| c.type_ == crate::api::conditions::READY)
                })
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "it has not been validated yet".into());
            return Err(StoreError::NotReady {
                kind: store.kind.as_str(),
                name: store.name.clone(),
                why,
            }
            .into());
        }
        Ok(())
    }
}

/// Every store an ExternalSecret references.
pub fn store_refs(es: &ExternalSecret) -> Vec<SecretStoreRef> {
    let default = es.spec.secret_store_ref.clone();
    let entry_refs = es
        .spec
        .data_from
        .iter()
        .map(|d| d.source_ref.as_ref().and_then(|s| s.store_ref.clone()))
        .chain(
            es.spec
                .data
                .iter()
                .map(|d| d.source_ref.as_ref().and_then(|s| s.store_ref.clone())),
        );
    let mut refs: Vec<SecretStoreRef> = Vec::new();
    for r in entry_refs.filter_map(|r| r.or_else(|| default.clone())) {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    refs
}

pub async fn fetch(
    ctx: &crate::controller::Context,
    es: &ExternalSecret,
    audit: Audit<'_>,
    lane: Lane,
) -> Result<Fetched, FetchError> {
    let mut resolver = Resolver {
        client: &ctx.client,
        cache: &ctx.clients,
        stores: ctx.stores.get(),
        namespace: es.namespace().unwrap_or_default(),
        providers: HashMap::new(),
        namespace_labels: None,
        audit,
    };
    let skip_missing = es.spec.target.deletion_policy != DeletionPolicy::Retain;
    let default_store = es.spec.secret_store_ref.clone();
    let mut missing = Vec::new();
    let mut data_from = Vec::new();
    let mut data = Vec::new();
    let mut reads = read_explicit_keys(&mut resolver, es, lane).await?;

    for (index, entry) in es.spec.data_from.iter().enumerate() {
        let store_ref = entry
            .source_ref
            .as_ref()
            .and_then(|s| s.store_ref.clone())
            .or_else(|| default_store.clone());
        let label = match &entry.extract {
            Some(r) => format!("spec.dataFrom[{index}] (key={})", r.key),
            None if entry.find.is_some() => format!("spec.dataFrom[{index}].find"),
            None => format!("spec.dataFrom[{index}]"),
        };
        let wrap = |source: EntryError| FetchError::Entry {
            entry: label.clone(),
            source,
        };
        let Some(extract) = &entry.extract else {
            let Some(find) = &entry.find else {
                return Err(wrap(EntryError::Unsupported("dataFrom with a generator")));
            };
            let (provider, source) = resolver
                .provider(&store_ref.ok_or(StoreError::NoStoreRef)?)
                .await?;
            let asked = now();
            let found = provider.find(&find_query(find), lane).await;
            let how = ("find", asked.as_str());
            match &found {
                Ok(map) => map.iter().for_each(|(k, v)| {
                    audited::read(
                        audit,
                        &source,
                        how,
                        k,
                        None,
                        Ok((v, &VersionInfo::default())),
                    )
                }),
                Err(e) => audited::read(audit, &source, how, &label, None, Err(e)),
            }
            match found {
                // Keyed by remote secret name; the key conversion and decoding happen in assemble.
                Ok(map) => data_from.push(DataFromResult {
                    index,
                    source: DataFromSource::Find,
                    data: map,
                    keys: key_handling(&entry.rewrite, find.conversion_strategy),
                    decoding: find.decoding_strategy.unwrap_or_default(),
                    null_bytes: find.null_byte_policy.unwrap_or_default(),
                }),
                Err(e) if e.class == ErrorClass::NotFound && skip_missing => {
                    missing.push(label.clone())
                }
                Err(e) => return Err(wrap(e.into())),
            }
            continue;
        };
        let (_, source) = resolver
            .provider(&store_ref.ok_or(StoreError::NoStoreRef)?)
            .await?;
        let request = remote(extract);
        let (asked, got) = reads.take(Entry::DataFrom(index));
        let mode = if request.fetch_metadata {
            "metadata"
        } else {
            "extract"
        };
        audited::read(
            audit,
            &source,
            (mode, &asked),
            &extract.key,
            request.version.as_deref(),
            got.as_ref().map(|read| (&read.value, &read.version)),
        );
        match got {
            Ok(read) => {
                let value = materialize::property::select_property(
                    &extract.key,
                    &read.value,
                    extract.property.as_deref().unwrap_or_default(),
                )
                .map_err(|e| wrap(EntryError::Property(e)))?;
                let map = materialize::extract::extract_map(&extract.key, &value)
                    .map_err(|e| wrap(EntryError::Extract(e)))?;
                data_from.push(DataFromResult {
                    index,
                    source: DataFromSource::Extract,
                    data: map,
                    keys: key_handling(&entry.rewrite, extract.conversion_strategy),
                    decoding: extract.decoding_strategy.unwrap_or_default(),
                    null_bytes: extract.null_byte_policy.unwrap_or_default(),
                });
            }
            Err(e) if e.class == ErrorClass::NotFound && skip_missing => {
                missing.push(label.clone())
            }
            Err(e) => return Err(wrap(not_found_hint(e).into())),
        }
    }

    for (index, entry) in es.spec.data.iter().enumerate() {
        let store_ref = entry
            .source_ref
            .as_ref()
            .and_then(|s| s.store_ref.clone())
            .or_else(|| default_store.clone());
        let r = &entry.remote_ref;
        let label = format!("spec.data[{index}] (key: {})", r.key);
        let wrap = |source: EntryError| FetchError::Entry {
            entry: label.clone(),
            source,
        };
        let (_, source) = resolver
            .provider(&store_ref.ok_or(StoreError::NoStoreRef)?)
            .await?;
        let request = remote(r);
        let (asked, got) = reads.take(Entry::Data(index));
        let mode = if request.fetch_metadata {
            "metadata"
        } else {
            "data"
        };
        audited::read(
            audit,
            &source,
            (mode, &asked),
            &r.key,
            request.version.as_deref(),
            got.as_ref().map(|read| (&read.value, &read.version)),
        );
        match got {
            Ok(read) => {
                let value = materialize::property::select_property(
                    &r.key,
                    &read.value,
                    r.property.as_deref().unwrap_or_default(),
                )
                .map_err(|e| wrap(EntryError::Property(e)))?;
                data.push(DataResult {
                    index,
                    secret_key: entry.secret_key.clone(),
                    remote_key: r.key.clone(),
                    value,
                    decoding: r.decoding_strategy.unwrap_or_default(),
                    null_bytes: r.null_byte_policy.unwrap_or_default(),
                });
            }
            Err(e) if e.class == ErrorClass::NotFound && skip_missing => {
                missing.push(label.clone())
            }
            Err(e) => return Err(wrap(not_found_hint(e).into())),
        }
    }
    let data = materialize::assemble(data_from, data)?;
    Ok(Fetched { data, missing })
}

/// ESO converts the keys of an entry only when it has no `rewrite`.
fn key_handling(
    rewrite: &[ExternalSecretRewrite],
    conversion: Option<ConversionStrategy>,
) -> KeyHandling {
    if rewrite.is_empty() {
        KeyHandling::Convert(conversion.unwrap_or_default())
    } else {
        KeyHandling::Rewrite(rewrite.to_vec())
    }
}

/// An entry that reads one explicit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Entry {
    DataFrom(usize),
    Data(usize),
}

/// The answers to an ExternalSecret's explicit keys, with when each was asked (for the audit).
#[derive(Default)]
struct Reads(HashMap<Entry, (String, Result<Read, ProviderError>)>);

impl Reads {
    fn take(&mut self, entry: Entry) -> (String, Result<Read, ProviderError>) {
        self.0.remove(&entry).unwrap_or_else(|| {
            // Every explicit entry was read before the entries are walked.
            (
                now(),
                Err(ProviderError::new(
                    ErrorClass::Unavailable,
                    "the entry was not read; lockstep retries",
                )),
            )
        })
    }
}

/// Reads every explicit key (`data`, and `dataFrom.extract`) at once, per store, so the fetch
/// layer can coalesce and batch them with the reads of other ExternalSecrets.
async fn read_explicit_keys(
    resolver: &mut Resolver<'_>,
    es: &ExternalSecret,
    lane: Lane,
) -> Result<Reads, FetchError> {
    let default_store = es.spec.secret_store_ref.clone();
    let store_of = |source: Option<&crate::api::external_secret::StoreSourceRef>| {
        source
            .and_then(|s| s.store_ref.clone())
            .or_else(|| default_store.clone())
            .ok_or(StoreError::NoStoreRef)
    };
    let mut wanted: Vec<(Entry, SecretStoreRef, RemoteRef)> = Vec::new();
    for (index, entry) in es.spec.data_from.iter().enumerate() {
        if let Some(extract) = &entry.extract {
            let store = store_of(entry.source_ref.as_ref())?;
            wanted.push((Entry::DataFrom(index), store, remote(extract)));
        }
    }
    for (index, entry) in es.spec.data.iter().enumerate() {
        let store = store_of(entry.source_ref.as_ref())?;
        wanted.push((Entry::Data(index), store, remote(&entry.remote_ref)));
    }
    let mut per_store: Vec<(Reader, Vec<(Entry, RemoteRef)>)> = Vec::new();
    let mut stores: Vec<SecretStoreRef> = Vec::new();
    for (entry, store, request) in wanted {
        match stores.iter().position(|s| *s == store) {
            Some(i) => per_store[i].1.push((entry, request)),
            None => {
                let (reader, _) = resolver.provider(&store).await?;
                stores.push(store);
                per_store.push((reader, vec![(entry, request)]));
            }
        }
    }
    let reads = per_store.iter().map(|(reader, entries)| async move {
        let requests: Vec<RemoteRef> = entries.iter().map(|(_, r)| r.clone()).collect();
        let asked = now();
        let answers = reader.get_many(&requests, lane).await;
        entries
            .iter()
            .zip(answers)
            .map(|((entry, _), answer)| (*entry, (asked.clone(), answer)))
            .collect::<Vec<_>>()
    });
    let answers = futures::future::join_all(reads).await;
    Ok(Reads(answers.into_iter().flatten().collect()))
}

/// Says what to do about a secret that does not exist, under `deletionPolicy: Retain`.
fn not_found_hint(mut e: ProviderError) -> ProviderError {
    if e.class == ErrorClass::NotFound {
        e.message.push_str(
            "; create it, fix remoteRef.key, or set spec.target.deletionPolicy to Delete or Merge to skip missing secrets",
        );
    }
    e
}

fn find_query(find: &ExternalSecretFind) -> FindQuery {
    FindQuery {
        // An empty prefix selects every name, the same as no path; AWS is not asked to filter on it.
        path: find.path.clone().filter(|p| !p.is_empty()),
        // A `name` without `regexp` matches every name, as ESO's empty pattern does.
        name_regexp: find
            .name
            .as_ref()
            .map(|n| n.regexp.clone().unwrap_or_default()),
        tags: find.tags.clone(),
    }
}

fn remote(r: &SpecRemoteRef) -> RemoteRef {
    RemoteRef {
        key: r.key.clone(),
        // The property is applied here, not by the provider, so every provider reads paths alike.
        property: None,
        version: r.version.clone().filter(|v| !v.is_empty()),
        fetch_metadata: r.metadata_policy == Some(MetadataPolicy::Fetch),
    }
}
