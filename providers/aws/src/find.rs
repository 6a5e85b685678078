//! `dataFrom.find`: every secret whose name or tags match, one key per secret, keyed by the full
//! secret name and holding its current value (ESO's `GetAllSecrets`, eso-compatibility.md 4.3).
//!
//! As in ESO:
//! - `name.regexp` or `tags` is required (`path` alone is not enough);
//! - each tag becomes a `tag-key` and a `tag-value` filter and `path` a `name` filter, evaluated
//!   by AWS: prefix matches, tag keys and values matched independently, not as pairs;
//! - `name.regexp` is unanchored and matched client-side against the full name;
//! - values are the raw `SecretString` (`SecretBinary` when the entry has one), never exploded;
//! - the store's `prefix` is not applied to `path` nor to the regexp;
//! - with only filters (tags, path) the values come from BatchGetSecretValue with those filters,
//!   20 secrets per call.
//!
//! Where lockstep differs from ESO, and why:
//! - With `name.regexp` ESO reads every secret under `path` with BatchGetSecretValue (or, without
//!   `path`, one GetSecretValue per match) and drops the non-matching ones after reading them.
//!   lockstep lists the names with ListSecrets (same filters, 100 per page), matches them, and
//!   reads only the matches, 20 per BatchGetSecretValue: values the ExternalSecret did not ask
//!   for are never read (nor logged as reads in CloudTrail), and 100 matches cost 5 reads instead
//!   of 100. It also avoids ESO's double `prefix` on that path.
//! - ESO drops the per-secret errors of BatchGetSecretValue silently, so a secret the identity
//!   may not read vanishes from the Secret. lockstep skips only secrets that are gone (not found,
//!   or scheduled for deletion since they were listed) and fails on any other per-secret error,
//!   which keeps the last good Secret and says which secret failed.
//! - Name patterns are Rust `regex` syntax, which is RE2's; `\d`, `\w`, `\s` and `\b` are
//!   Unicode-aware where RE2's are ASCII, which cannot differ on AWS secret names (ASCII only).
use std::collections::{BTreeMap, HashMap};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretValueEntry};
use lockstep_provider_api::{ErrorClass, FindQuery, ProviderError, SecretValue};
use regex::Regex;

use crate::errors::{Call, call_error, service_error};

/// BatchGetSecretValue reads at most this many secrets per call.
pub(crate) const BATCH_SIZE: usize = 20;
/// ListSecrets returns at most this many names per page.
const LIST_PAGE_SIZE: i32 = 100;
/// ListSecrets and BatchGetSecretValue accept at most this many filters.
const MAX_FILTERS: usize = 10;

/// What to ask AWS, decided from the query alone.
#[derive(Debug)]
pub(crate) struct FindPlan {
    /// Evaluated by AWS.
    pub(crate) filters: Vec<Filter>,
    /// Evaluated by lockstep on the listed names; `None` reads what the filters select directly.
    pub(crate) name: Option<Regex>,
    /// The query in words, for messages.
    pub(crate) description: String,
}

impl FindPlan {
    pub(crate) fn new(query: &FindQuery) -> Result<Self, ProviderError> {
        if query.name_regexp.is_none() && query.tags.is_empty() {
            return Err(ProviderError::invalid(
                "unexpected find operator: dataFrom.find needs name.regexp or tags (path alone \
                 selects nothing, as in ESO); add name.regexp (\".*\" takes every secret under \
                 path) or tags",
            ));
        }
        let name = query
            .name_regexp
            .as_deref()
            .map(|re| {
                Regex::new(re).map_err(|e| {
                    ProviderError::invalid(format!(
                        "could not compile find.name.regexp {re:?}: {e}; write an RE2 regular \
                         expression such as ^team/.*"
                    ))
                })
            })
            .transpose()?;
        let mut filters = Vec::new();
        for (key, value) in &query.tags {
            filters.push(filter(FilterNameStringType::TagKey, key));
            filters.push(filter(FilterNameStringType::TagValue, value));
        }
        if let Some(path) = &query.path {
            filters.push(filter(FilterNameStringType::Name, path));
        }
        if filters.len() > MAX_FILTERS {
            return Err(ProviderError::invalid(format!(
                "dataFrom.find has {} tags{}, and AWS accepts at most {MAX_FILTERS} filters per \
                 request (each tag takes two, path one): match on at most {} tags and narrow \
                 further with name.regexp",
                query.tags.len(),
                if query.path.is_some() {
                    " and a path"
                } else {
                    ""
                },
                (MAX_FILTERS - usize::from(query.path.is_some())) / 2,
            )));
        }
        Ok(Self {
            filters,
            name,
            description: describe(query),
        })
    }
}

fn filter(key: FilterNameStringType, value: &str) -> Filter {
    Filter::builder().key(key).values(value).build()
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
    format!("the secrets matching dataFrom.find ({})", parts.join(", "))
}

/// Runs the plan: values keyed by secret name.
pub(crate) async fn find(
    client: &Client,
    plan: &FindPlan,
) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
    match &plan.name {
        None => read_by_filters(client, plan).await,
        Some(name) => {
            let matches = list_matching(client, plan, name).await?;
            read_by_ids(client, &matches).await
        }
    }
}

/// The ARN and name of every listed secret whose name matches.
async fn list_matching(
    client: &Client,
    plan: &FindPlan,
    name: &Regex,
) -> Result<Vec<(String, String)>, ProviderError> {
    let mut matches = Vec::new();
    let mut pages = Pages::default();
    loop {
        let out = client
            .list_secrets()
            .set_filters(Some(plan.filters.clone()))
            .max_results(LIST_PAGE_SIZE)
            .set_next_token(pages.token.clone())
            .send()
            .await
            .map_err(|e| call_error(Call::ListSecrets, &plan.description, e))?;
        for entry in out.secret_list() {
            let Some(secret_name) = entry.name() else {
                continue;
            };
            if name.is_match(secret_name) {
                // The ARN, because a name that ends in a hyphen and six characters can be read
                // as a partial ARN of another secret.
                let id = entry.arn().unwrap_or(secret_name);
                matches.push((id.to_owned(), secret_name.to_owned()));
            }
        }
        if !pages.advance(out.next_token(), Call::ListSecrets, &plan.description)? {
            return Ok(matches);
        }
    }
}

/// Reads the listed secrets, [`BATCH_SIZE`] per call.
async fn read_by_ids(
    client: &Client,
    secrets: &[(String, String)],
) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
    let names: HashMap<&str, &str> = secrets
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let mut data = BTreeMap::new();
    for batch in secrets.chunks(BATCH_SIZE) {
        let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        let subject = format!("{} secrets found by dataFrom.find", ids.len());
        let out = client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids))
            .send()
            .await
            .map_err(|e| call_error(Call::BatchGetSecretValue, &subject, e))?;
        check_entry_errors(out.errors(), &names)?;
        collect(out.secret_values, &mut data);
    }
    Ok(data)
}

/// Reads what the filters select, [`BATCH_SIZE`] per call, as ESO does without a name pattern.
async fn read_by_filters(
    client: &Client,
    plan: &FindPlan,
) -> Result<BTreeMap<String, SecretValue>, ProviderError> {
    let mut data = BTreeMap::new();
    let mut pages = Pages::default();
    loop {
        let out = client
            .batch_get_secret_value()
            .set_filters(Some(plan.filters.clone()))
            .max_results(BATCH_SIZE as i32)
            .set_next_token(pages.token.clone())
            .send()
            .await
            .map_err(|e| call_error(Call::BatchGetSecretValue, &plan.description, e))?;
        check_entry_errors(out.errors(), &HashMap::new())?;
        let next = out.next_token.clone();
        collect(out.secret_values, &mut data);
        if !pages.advance(
            next.as_deref(),
            Call::BatchGetSecretValue,
            &plan.description,
        )? {
            return Ok(data);
        }
    }
}

/// Adds the values of `entries` to `data`, keyed by secret name; `SecretBinary` wins over
/// `SecretString` as in ESO's `setSecretValues`.
fn collect(entries: Option<Vec<SecretValueEntry>>, data: &mut BTreeMap<String, SecretValue>) {
    for entry in entries.unwrap_or_default() {
        let Some(name) = entry.name else {
            continue;
        };
        let value = match (entry.secret_binary, entry.secret_string) {
            (Some(binary), _) => SecretValue::new(binary.into_inner()),
            (None, Some(text)) => SecretValue::from(text),
            (None, None) => continue,
        };
        data.insert(name, value);
    }
}

/// Skips secrets that are gone; fails on any other per-secret error, naming the secret.
fn check_entry_errors(
    errors: &[aws_sdk_secretsmanager::types::ApiErrorType],
    names: &HashMap<&str, &str>,
) -> Result<(), ProviderError> {
    for error in errors {
        let id = error.secret_id().unwrap_or("(unnamed)");
        let name = names.get(id).copied().unwrap_or(id);
        let err = service_error(
            Call::GetSecretValue,
            &format!("secret {name:?} (read by BatchGetSecretValue for dataFrom.find)"),
            error.error_code(),
            error.message(),
        );
        if err.class != ErrorClass::NotFound {
            return Err(err);
        }
    }
    Ok(())
}

/// The pagination state of one listing.
#[derive(Debug, Default)]
pub(crate) struct Pages {
    pub(crate) token: Option<String>,
}

impl Pages {
    /// Moves to the next page; `false` at the end. A token that does not change would loop
    /// forever, so it is an error.
    pub(crate) fn advance(
        &mut self,
        next: Option<&str>,
        call: Call,
        subject: &str,
    ) -> Result<bool, ProviderError> {
        match next.filter(|t| !t.is_empty()) {
            None => Ok(false),
            Some(t) if self.token.as_deref() == Some(t) => Err(ProviderError::new(
                ErrorClass::Unavailable,
                format!(
                    "{} for {subject} returned the same page token twice; the endpoint does \
                     not paginate correctly, lockstep retries with backoff",
                    call.name()
                ),
            )),
            Some(t) => {
                self.token = Some(t.to_owned());
                Ok(true)
            }
        }
    }
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

    fn keys(plan: &FindPlan) -> Vec<(String, String)> {
        plan.filters
            .iter()
            .map(|f| {
                (
                    f.key().map(|k| k.as_str().to_owned()).unwrap_or_default(),
                    f.values().join(","),
                )
            })
            .collect()
    }

    #[test]
    fn path_alone_is_not_enough() {
        let err = FindPlan::new(&query(Some("team/"), None, &[])).unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(
            err.message.contains("name.regexp or tags"),
            "{}",
            err.message
        );
    }

    #[test]
    fn tags_and_path_become_filters_in_esos_order() {
        let plan = FindPlan::new(&query(
            Some("team/"),
            None,
            &[("env", "prod"), ("app", "web")],
        ))
        .unwrap();
        assert!(plan.name.is_none());
        assert_eq!(
            keys(&plan),
            [
                ("tag-key", "app"),
                ("tag-value", "web"),
                ("tag-key", "env"),
                ("tag-value", "prod"),
                ("name", "team/"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn a_name_pattern_is_unanchored_and_client_side() {
        let plan = FindPlan::new(&query(None, Some("db"), &[])).unwrap();
        assert!(plan.filters.is_empty());
        let name = plan.name.unwrap();
        assert!(name.is_match("team/db/password"));
        assert!(!name.is_match("team/cache"));
        // An empty pattern takes everything, as ESO's does.
        let all = FindPlan::new(&query(Some("x/"), Some(""), &[])).unwrap();
        assert!(all.name.unwrap().is_match("x/anything"));
    }

    #[test]
    fn a_bad_pattern_is_invalid_and_named() {
        let err = FindPlan::new(&query(None, Some("(unclosed"), &[])).unwrap_err();
        assert_eq!(err.class, ErrorClass::Invalid);
        assert!(err.message.contains("\"(unclosed\""), "{}", err.message);
    }

    #[test]
    fn too_many_filters_are_refused_before_asking_aws() {
        let tags: Vec<(String, String)> =
            (0..5).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(FindPlan::new(&query(None, None, &tags)).is_ok());
        let err = FindPlan::new(&query(Some("p/"), None, &tags)).unwrap_err();
        assert!(err.message.contains("at most 4 tags"), "{}", err.message);
    }

    #[test]
    fn the_description_names_the_query() {
        let plan =
            FindPlan::new(&query(Some("team/"), Some("^team/db"), &[("env", "prod")])).unwrap();
        assert_eq!(
            plan.description,
            "the secrets matching dataFrom.find (path \"team/\", name.regexp \"^team/db\", tags env=prod)"
        );
    }

    #[test]
    fn binary_wins_and_empty_entries_are_skipped() {
        let entries = vec![
            SecretValueEntry::builder()
                .name("a")
                .secret_string("text")
                .build(),
            SecretValueEntry::builder()
                .name("b")
                .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![
                    0, 1, 255,
                ]))
                .secret_string("ignored")
                .build(),
            SecretValueEntry::builder().name("c").build(),
        ];
        let mut data = BTreeMap::new();
        collect(Some(entries), &mut data);
        assert_eq!(data["a"].expose(), b"text");
        assert_eq!(data["b"].expose(), &[0, 1, 255]);
        assert!(!data.contains_key("c"));
    }

    #[test]
    fn gone_secrets_are_skipped_and_other_errors_fail() {
        use aws_sdk_secretsmanager::types::ApiErrorType;
        let gone = ApiErrorType::builder()
            .secret_id("arn:1")
            .error_code("ResourceNotFoundException")
            .message("Secrets Manager can't find the specified secret.")
            .build();
        let names = HashMap::from([("arn:1", "team/a"), ("arn:2", "team/b")]);
        assert!(check_entry_errors(std::slice::from_ref(&gone), &names).is_ok());
        let denied = ApiErrorType::builder()
            .secret_id("arn:2")
            .error_code("AccessDeniedException")
            .message("not authorized")
            .build();
        let err = check_entry_errors(&[gone, denied], &names).unwrap_err();
        assert_eq!(err.class, ErrorClass::AccessDenied);
        assert!(err.message.contains("\"team/b\""), "{}", err.message);
        assert!(
            err.message.contains("secretsmanager:GetSecretValue"),
            "{}",
            err.message
        );
    }

    #[test]
    fn pagination_stops_at_the_end_and_on_a_repeated_token() {
        let mut pages = Pages::default();
        assert!(pages.advance(Some("t1"), Call::ListSecrets, "s").unwrap());
        assert!(pages.advance(Some("t2"), Call::ListSecrets, "s").unwrap());
        assert!(pages.advance(Some("t2"), Call::ListSecrets, "s").is_err());
        assert!(!pages.advance(None, Call::ListSecrets, "s").unwrap());
        assert!(!pages.advance(Some(""), Call::ListSecrets, "s").unwrap());
    }
}
