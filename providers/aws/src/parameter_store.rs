//! AWS Systems Manager Parameter Store behind lockstep's provider trait
//! (`spec.provider.aws.service: ParameterStore`), as ESO's `parameterstore` provider reads it:
//!
//! - a parameter is read with GetParameter `WithDecryption`, named `prefix + remoteRef.key`;
//!   `remoteRef.version` selects a version number or a label with AWS's `name:selector` syntax;
//! - every parameter type is returned as AWS answers it: a `String` as is, a `SecureString`
//!   decrypted, a `StringList` as its comma-separated text (ESO does not split it either);
//! - `metadataPolicy: Fetch` returns the parameter's tags (ListTagsForResource) as a JSON object
//!   of keys to values, from which `property` selects; the version does not apply to tags;
//! - `dataFrom.find` is in [`find`]; several reads at once use GetParameters, in [`batch`].
//!
//! Where lockstep differs from ESO, and why:
//! - A parameter that does not exist is `NotFound` for tags too (ESO passes ListTagsForResource's
//!   error on as a plain error), so `deletionPolicy: Delete` treats it as gone for both.
//! - ESO asks for the tags of `name:version` when a version is set, which AWS refuses; lockstep
//!   asks for the tags of the parameter, as it does for Secrets Manager.
//! - A version that does not exist (ParameterVersionNotFound) stays an error, as in ESO: it is
//!   not a parameter that is gone, so `deletionPolicy: Delete` does not drop the key for it.
mod batch;
mod find;

use std::collections::BTreeMap;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{Parameter, ResourceTypeForTagging};
use lockstep_provider_api::{
    Capabilities, ErrorClass, Fetched, FindQuery, ProviderError, RemoteRef, SecretProvider,
    SecretValue, Validation, VersionInfo,
};

use crate::errors::{Call, call_error};
use crate::read::tags_json;

/// GetParameters reads at most this many parameters per call.
pub const GET_PARAMETERS_MAX: usize = 10;

#[derive(Debug, Clone)]
pub struct ParameterStore {
    client: Client,
    sts: aws_sdk_sts::Client,
    /// Prepended verbatim to every remote key (`spec.provider.aws.prefix`), not to find queries.
    prefix: String,
}

impl ParameterStore {
    /// Clients for one identity: `config` carries its region, endpoint, credentials and retries.
    pub fn new(config: &aws_config::SdkConfig, prefix: Option<String>) -> Self {
        Self {
            client: Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            prefix: prefix.unwrap_or_default(),
        }
    }

    fn selection(&self, remote: &RemoteRef) -> Selection {
        Selection {
            name: format!("{}{}", self.prefix, remote.key),
            selector: remote.version.clone().filter(|v| !v.is_empty()),
        }
    }
}

/// A parameter and the version of it a read asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Selection {
    /// The full parameter name (or ARN), prefix included.
    pub(crate) name: String,
    /// A version number or a label; the latest version when `None`.
    pub(crate) selector: Option<String>,
}

impl Selection {
    pub(crate) fn latest(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            selector: None,
        }
    }

    /// The name as GetParameter(s) takes it: `name`, or `name:selector`.
    pub(crate) fn request(&self) -> String {
        match &self.selector {
            Some(selector) => format!("{}:{selector}", self.name),
            None => self.name.clone(),
        }
    }

    /// A version number selects a version; anything else is a label (labels cannot start with
    /// a digit, so the two never overlap).
    pub(crate) fn version_number(&self) -> Option<i64> {
        let selector = self.selector.as_deref()?;
        if selector.bytes().all(|b| b.is_ascii_digit()) {
            selector.parse().ok()
        } else {
            None
        }
    }

    /// How messages name the parameter at this version.
    pub(crate) fn describe(&self) -> String {
        match (&self.selector, self.version_number()) {
            (None, _) => format!("parameter {:?}", self.name),
            (Some(_), Some(n)) => format!("parameter {:?} at version {n}", self.name),
            (Some(label), None) => format!("parameter {:?} at label {label:?}", self.name),
        }
    }

    /// The error for this parameter when AWS reports it missing.
    pub(crate) fn not_found(&self) -> ProviderError {
        let mut err = ProviderError::not_found(format!("{} was not found", self.describe()));
        if self.selector.is_some() {
            err.message.push_str("; check remoteRef.version");
        }
        err
    }

    /// What a parameter returned for this selection holds, and which version it is.
    pub(crate) fn fetched(&self, parameter: Parameter) -> Result<Fetched, ProviderError> {
        let version = VersionInfo {
            id: Some(parameter.version.to_string()),
            // A label is the only name of a version Parameter Store reports here.
            stages: match (&self.selector, self.version_number()) {
                (Some(label), None) => vec![label.clone()],
                _ => Vec::new(),
            },
        };
        let value = parameter.value.ok_or_else(|| {
            ProviderError::invalid(format!(
                "{} has no value in the answer of Parameter Store; put a value into it \
                 (PutParameter)",
                self.describe()
            ))
        })?;
        Ok(Fetched {
            value: SecretValue::from(value),
            version,
        })
    }
}

/// The value of one parameter at the version `selection` asks for, decrypted.
pub(crate) async fn get_parameter(
    client: &Client,
    selection: &Selection,
) -> Result<Fetched, ProviderError> {
    let out = client
        .get_parameter()
        .name(selection.request())
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            let mut err = call_error(Call::GetParameter, &selection.describe(), e);
            if err.class == ErrorClass::NotFound && selection.selector.is_some() {
                err.message.push_str("; check remoteRef.version");
            }
            err
        })?;
    let parameter = out.parameter.ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Unavailable,
            format!(
                "Parameter Store answered GetParameter for {} without the parameter; lockstep \
                 retries with backoff",
                selection.describe()
            ),
        )
    })?;
    selection.fetched(parameter)
}

/// The tags of parameter `name` as a JSON object, as ESO returns them for `metadataPolicy: Fetch`.
async fn tags(client: &Client, name: &str) -> Result<Fetched, ProviderError> {
    let out = client
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
        .map_err(|e| call_error(Call::ListTagsForResource, &format!("parameter {name:?}"), e))?;
    let tags = out.tag_list().iter().map(|t| (t.key(), t.value()));
    Ok(Fetched::unversioned(SecretValue::from(tags_json(tags))))
}

#[async_trait::async_trait]
impl SecretProvider for ParameterStore {
    /// The value at `remote.version`, or with `fetch_metadata` the tags as a JSON object.
    /// `remote.property` is not applied here: the controller applies it to these bytes.
    async fn get(&self, remote: &RemoteRef) -> Result<Fetched, ProviderError> {
        let selection = self.selection(remote);
        if remote.fetch_metadata {
            tags(&self.client, &selection.name).await
        } else {
            get_parameter(&self.client, &selection).await
        }
    }

    /// GetParameters, [`GET_PARAMETERS_MAX`] names per call; see [`batch`]. Tags have no batch
    /// call, so `fetch_metadata` reads go one by one.
    async fn get_many(&self, remotes: &[RemoteRef]) -> Vec<Result<Fetched, ProviderError>> {
        let values: Vec<Selection> = remotes
            .iter()
            .filter(|r| !r.fetch_metadata)
            .map(|r| self.selection(r))
            .collect();
        let mut values = batch::get_many(&self.client, &values).await.into_iter();
        let mut out = Vec::with_capacity(remotes.len());
        for remote in remotes {
            let value = if remote.fetch_metadata {
                self.get(remote).await
            } else {
                // batch::get_many answers every selection, in order.
                values.next().unwrap_or_else(|| {
                    Err(ProviderError::new(
                        ErrorClass::Unavailable,
                        format!("parameter {:?} was not read", remote.key),
                    ))
                })
            };
            out.push(value);
        }
        out
    }

    async fn get_map(
        &self,
        remote: &RemoteRef,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let value = self.get(remote).await?.value;
        lockstep_provider_api::json_object(&self.selection(remote).describe(), &value)
    }

    async fn find(
        &self,
        query: &FindQuery,
    ) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
        let plan = find::FindPlan::new(query)?;
        find::find(&self.client, &plan).await
    }

    async fn put(&self, _remote: &RemoteRef, _value: &SecretValue) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("PushSecret is not implemented yet"))
    }

    async fn delete(&self, _remote: &RemoteRef) -> Result<(), ProviderError> {
        Err(ProviderError::invalid("PushSecret is not implemented yet"))
    }

    async fn validate(&self) -> Result<Validation, ProviderError> {
        crate::validate_credentials(&self.sts).await
    }

    /// As ESO's Parameter Store provider reports it.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ReadWrite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, selector: Option<&str>) -> Selection {
        Selection {
            name: name.into(),
            selector: selector.map(str::to_owned),
        }
    }

    #[test]
    fn a_version_or_a_label_is_appended_with_a_colon() {
        assert_eq!(at("/db", None).request(), "/db");
        assert_eq!(at("/db", Some("3")).request(), "/db:3");
        assert_eq!(at("/db", Some("prod")).request(), "/db:prod");
        assert_eq!(at("/db", Some("3")).version_number(), Some(3));
        assert_eq!(at("/db", Some("prod")).version_number(), None);
        assert_eq!(
            at("/db", Some("3")).describe(),
            "parameter \"/db\" at version 3"
        );
        assert_eq!(
            at("/db", Some("prod")).describe(),
            "parameter \"/db\" at label \"prod\""
        );
    }

    #[test]
    fn the_store_prefix_goes_before_the_key_and_an_empty_version_is_none() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let ps = ParameterStore::new(&config, Some("/prod".into()));
        let remote = RemoteRef {
            key: "/db".into(),
            version: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(ps.selection(&remote), at("/prod/db", None));
    }

    #[test]
    fn a_read_reports_the_version_number_and_the_label() {
        let parameter = Parameter::builder()
            .name("/db")
            .value("v")
            .version(4)
            .build();
        let read = at("/db", Some("prod")).fetched(parameter.clone()).unwrap();
        assert_eq!(read.version.id.as_deref(), Some("4"));
        assert_eq!(read.version.stages, ["prod"]);
        let read = at("/db", None).fetched(parameter).unwrap();
        assert!(read.version.stages.is_empty());
        let empty = Parameter::builder().name("/db").version(1).build();
        assert_eq!(
            at("/db", None).fetched(empty).unwrap_err().class,
            ErrorClass::Invalid
        );
    }
}
