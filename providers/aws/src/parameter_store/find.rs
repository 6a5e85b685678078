//! `dataFrom.find` on Parameter Store: every parameter whose name or tags match, one key per
//! parameter, keyed by its full name and holding its latest value, decrypted (ESO's
//! `GetAllSecrets` for Parameter Store).
//!
//! As in ESO:
//! - `name.regexp` or `tags` is required (`path` alone is not enough);
//! - with `name.regexp` alone, GetParametersByPath reads every parameter under `path` (`/` when
//!   unset), recursively, and the unanchored pattern keeps the matching names. If the identity
//!   may not call GetParametersByPath, DescribeParameters with a recursive `Path` filter lists the
//!   names instead, and only the matches are read;
//! - with `tags`, DescribeParameters lists the parameters carrying every tag (`tag:<key>` equals
//!   the value) under `path` (recursive), and those are read;
//! - values are returned as stored, never exploded; the store's `prefix` is not applied.
//!
//! Where lockstep differs from ESO, and why:
//! - With both `name.regexp` and `tags`, ESO ignores the tags; lockstep keeps the parameters that
//!   match both, as its Secrets Manager provider does: a filter the user wrote is never dropped.
//! - ESO reads the listed parameters one GetParameter each; lockstep reads them ten per
//!   GetParameters call (one by one only if that call is refused), and skips a parameter deleted
//!   between the listing and the read rather than failing.
use std::collections::BTreeMap;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::ParameterStringFilter;
use lockstep_provider_api::{ErrorClass, FindQuery, ProviderError, SecretValue};
use regex::Regex;

use super::batch::{Answer, get_parameters};
use super::{GET_PARAMETERS_MAX, Selection, get_parameter};
use crate::errors::{Call, call_error};
use crate::find::Pages;

/// GetParametersByPath returns at most this many parameters per page.
const BY_PATH_PAGE_SIZE: i32 = 10;
/// DescribeParameters returns at most this many parameters per page.
const DESCRIBE_PAGE_SIZE: i32 = 50;
/// The path of every parameter.
const ROOT: &str = "/";

/// What to ask Parameter Store, decided from the query alone.
#[derive(Debug)]
pub(crate) struct FindPlan {
    how: How,
    /// Matched by lockstep against the full names.
    name: Option<Regex>,
    /// The query in words, for messages.
    description: String,
}

#[derive(Debug, Clone, PartialEq)]
enum How {
    /// GetParametersByPath under this path.
    ByPath(String),
    /// DescribeParameters with these filters, then a read of what they list.
    Describe(Vec<ParameterStringFilter>),
}

impl FindPlan {
    pub(crate) fn new(query: &FindQuery) -> Result<Self, ProviderError> {
        if query.name_regexp.is_none() && query.tags.is_empty() {
            return Err(ProviderError::invalid(
                "unexpected find operator: dataFrom.find needs name.regexp or tags (path alone \
                 selects nothing, as in ESO); add name.regexp (\".*\" takes every parameter \
                 under path) or tags",
            ));
        }
        let name = query
            .name_regexp
            .as_deref()
            .map(|re| {
                Regex::new(re).map_err(|e| {
                    ProviderError::invalid(format!(
                        "could not compile find.name.regexp {re:?}: {e}; write an RE2 regular \
                         expression such as ^/team/app/.*"
                    ))
                })
            })
            .transpose()?;
        let how = if query.tags.is_empty() {
            How::ByPath(query.path.clone().unwrap_or_else(|| ROOT.to_owned()))
        } else {
            let mut filters: Vec<ParameterStringFilter> = query
                .tags
                .iter()
                .map(|(key, value)| filter(&format!("tag:{key}"), "Equals", value))
                .collect::<Result<_, _>>()?;
            if let Some(path) = &query.path {
                filters.push(filter("Path", "Recursive", path)?);
            }
            How::Describe(filters)
        };
        Ok(Self {
            how,
            name,
            description: describe(query),
        })
    }
}

fn filter(key: &str, option: &str, value: &str) -> Result<ParameterStringFilter, ProviderError> {
    ParameterStringFilter::builder()
        .key(key)
        .option(option)
        .values(value)
        .build()
        .map_err(|e| ProviderError::invalid(format!("dataFrom.find filter {key:?}: {e}")))
}

fn describe(query: &FindQuery) -> String {
    let mut parts = Vec::new();
    if let Some(path) = &query.path {
        parts.push(format!("path {path:?}"));
    }
    if let Some(re) = &query.name_regexp {
        parts.push(format!("name.regexp {re:?}"));
    }
    if !query.tags.is_empty() {
        let tags: Vec<String> = query.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("tags {}", tags.join(",")));
    }
    format!(
        "the parameters matching dataFrom.find ({})",
        parts.join(", ")
    )
}

/// Runs the plan: values keyed by parameter name.
pub(crate) async fn find(
    client: &Client,
    plan: &FindPlan,
) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
    match &plan.how {
        How::ByPath(path) => match by_path(client, plan, path).await? {
            Some(found) => Ok(found),
            None => {
                tracing::info!(
                    path = %path,
                    "GetParametersByPath was denied; listing with DescribeParameters instead \
                     (granting ssm:GetParametersByPath saves calls)"
                );
                let names = list(client, plan, &[filter("Path", "Recursive", path)?]).await?;
                read(client, plan, &names).await
            }
        },
        How::Describe(filters) => {
            let names = list(client, plan, filters).await?;
            read(client, plan, &names).await
        }
    }
}

/// Every matching parameter under `path`, or `None` when the identity may not call
/// GetParametersByPath (ESO then falls back to DescribeParameters, and so does lockstep).
async fn by_path(
    client: &Client,
    plan: &FindPlan,
    path: &str,
) -> Result<Option<BTreeMap<String, SecretValue>>, ProviderError> {
    let mut found = BTreeMap::new();
    let mut pages = Pages::default();
    loop {
        let out = match client
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .max_results(BY_PATH_PAGE_SIZE)
            .set_next_token(pages.token.clone())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("AccessDeniedException") && found.is_empty() => {
                return Ok(None);
            }
            Err(e) => return Err(call_error(Call::GetParametersByPath, &plan.description, e)),
        };
        for parameter in out.parameters.unwrap_or_default() {
            let (Some(name), Some(value)) = (parameter.name, parameter.value) else {
                continue;
            };
            if plan.name.as_ref().is_none_or(|re| re.is_match(&name)) {
                found.insert(name, SecretValue::from(value));
            }
        }
        if !pages.advance(
            out.next_token.as_deref(),
            Call::GetParametersByPath,
            &plan.description,
        )? {
            return Ok(Some(found));
        }
    }
}

/// The names DescribeParameters lists with `filters` that match the name pattern, if any.
async fn list(
    client: &Client,
    plan: &FindPlan,
    filters: &[ParameterStringFilter],
) -> Result<Vec<String>, ProviderError> {
    let mut names = Vec::new();
    let mut pages = Pages::default();
    loop {
        let out = client
            .describe_parameters()
            .set_parameter_filters(Some(filters.to_vec()))
            .max_results(DESCRIBE_PAGE_SIZE)
            .set_next_token(pages.token.clone())
            .send()
            .await
            .map_err(|e| call_error(Call::DescribeParameters, &plan.description, e))?;
        for parameter in out.parameters() {
            let Some(name) = parameter.name() else {
                continue;
            };
            if plan.name.as_ref().is_none_or(|re| re.is_match(name)) {
                names.push(name.to_owned());
            }
        }
        if !pages.advance(
            out.next_token(),
            Call::DescribeParameters,
            &plan.description,
        )? {
            return Ok(names);
        }
    }
}

/// The latest value of each listed parameter, ten per GetParameters call. A parameter deleted
/// since it was listed is skipped; any other failure fails the find.
async fn read(
    client: &Client,
    plan: &FindPlan,
    names: &[String],
) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
    let mut found = BTreeMap::new();
    for chunk in names.chunks(GET_PARAMETERS_MAX) {
        let batch: Vec<Selection> = chunk.iter().map(Selection::latest).collect();
        let answers = match get_parameters(client, &batch).await {
            Ok(answers) => answers,
            // ESO reads found parameters with GetParameter, so an identity may allow only that.
            Err(e) if e.class == ErrorClass::AccessDenied => {
                batch.iter().map(|_| Answer::Unmatched).collect()
            }
            Err(e) => return Err(with_find(e, plan)),
        };
        for (selection, answer) in batch.iter().zip(answers) {
            let value = match answer {
                Answer::Found(value) => value,
                Answer::Missing => continue,
                Answer::Unmatched => get_parameter(client, selection).await,
            };
            match value {
                Ok(read) => {
                    found.insert(selection.name.clone(), read.value);
                }
                Err(e) if e.class == ErrorClass::NotFound => continue,
                Err(e) => return Err(with_find(e, plan)),
            }
        }
    }
    Ok(found)
}

fn with_find(mut e: ProviderError, plan: &FindPlan) -> ProviderError {
    e.message = format!("reading {}: {}", plan.description, e.message);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(path: Option<&str>, name: Option<&str>, tags: &[(&str, &str)]) -> FindQuery {
        FindQuery {
            path: path.map(str::to_owned),
            name_regexp: name.map(str::to_owned),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn filters(plan: &FindPlan) -> Vec<String> {
        match &plan.how {
            How::ByPath(path) => vec![format!("by path {path}")],
            How::Describe(filters) => filters
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {}",
                        f.key(),
                        f.option().unwrap_or_default(),
                        f.values().join(",")
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn path_alone_is_not_enough() {
        let err = FindPlan::new(&query(Some("/team"), None, &[])).unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(err.message.starts_with("unexpected find operator"));
    }

    #[test]
    fn a_name_pattern_reads_by_path_from_the_root_by_default() {
        let plan = FindPlan::new(&query(None, Some("db"), &[])).unwrap();
        assert_eq!(filters(&plan), ["by path /"]);
        let name = plan.name.unwrap();
        assert!(name.is_match("/team/db/password"), "unanchored");
        let plan = FindPlan::new(&query(Some("/team"), Some(""), &[])).unwrap();
        assert_eq!(filters(&plan), ["by path /team"]);
    }

    #[test]
    fn tags_and_path_become_describe_filters() {
        let plan = FindPlan::new(&query(
            Some("/team"),
            Some("db$"),
            &[("env", "prod"), ("app", "web")],
        ))
        .unwrap();
        assert_eq!(
            filters(&plan),
            [
                "tag:app Equals web",
                "tag:env Equals prod",
                "Path Recursive /team"
            ]
        );
        assert!(plan.name.is_some(), "the name pattern still applies");
        assert_eq!(
            plan.description,
            "the parameters matching dataFrom.find (path \"/team\", name.regexp \"db$\", tags app=web,env=prod)"
        );
    }

    #[test]
    fn a_bad_pattern_is_invalid_and_named() {
        let err = FindPlan::new(&query(None, Some("(unclosed"), &[])).unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(err.message.contains("\"(unclosed\""), "{}", err.message);
    }
}
