//! Reading several parameters with GetParameters, [`GET_PARAMETERS_MAX`] per call, each answer
//! going back to the read that asked for it.
//!
//! - A name listed in `InvalidParameters` fails only its own read: `NotFound`. When the read
//!   named a version or label, the parameter is read alone to tell a missing parameter from a
//!   missing version (AWS lists both the same way).
//! - A call that fails as a whole for a reason that retrying will not fix (a refusal, a name AWS
//!   rejects) is repeated one GetParameter per parameter, so one bad read fails alone, and an
//!   identity granted only `ssm:GetParameter` (what ESO needs) keeps working.
//! - A throttled or unreachable call fails every read of the batch: repeating it per parameter
//!   would only add load.
use std::collections::{HashMap, HashSet};

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::Parameter;
use lockstep_provider_api::{ErrorClass, Fetched, ProviderError};

use super::{GET_PARAMETERS_MAX, Selection, get_parameter};
use crate::errors::{Call, call_error};

/// What one GetParameters call said about one selection it asked for.
#[derive(Debug)]
pub(crate) enum Answer {
    Found(Result<Fetched, ProviderError>),
    /// Listed in `InvalidParameters`.
    Missing,
    /// Not in the answer in a way that can be told apart (two reads of one name, and an endpoint
    /// that does not say which selector it served): read it alone.
    Unmatched,
}

/// One GetParameters call for at most [`GET_PARAMETERS_MAX`] distinct selections; the answers
/// are in the order of `batch`.
pub(crate) async fn get_parameters(
    client: &Client,
    batch: &[Selection],
) -> Result<Vec<Answer>, ProviderError> {
    debug_assert!(batch.len() <= GET_PARAMETERS_MAX);
    let out = client
        .get_parameters()
        .set_names(Some(batch.iter().map(Selection::request).collect()))
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| call_error(Call::GetParameters, &describe(batch), e))?;
    let invalid = out.invalid_parameters.unwrap_or_default();
    Ok(match_answers(
        batch,
        out.parameters.unwrap_or_default(),
        &invalid,
    ))
}

/// The value of each selection, in order; duplicates are read once.
pub(crate) async fn get_many(
    client: &Client,
    selections: &[Selection],
) -> Vec<Result<Fetched, ProviderError>> {
    let mut seen = HashSet::new();
    let distinct: Vec<&Selection> = selections.iter().filter(|s| seen.insert(*s)).collect();
    let mut values: HashMap<&Selection, Result<Fetched, ProviderError>> = HashMap::new();
    for chunk in distinct.chunks(GET_PARAMETERS_MAX) {
        let batch: Vec<Selection> = chunk.iter().map(|s| (*s).clone()).collect();
        match get_parameters(client, &batch).await {
            Ok(answers) => {
                for (selection, answer) in chunk.iter().zip(answers) {
                    let value = match answer {
                        Answer::Found(value) => value,
                        Answer::Missing if selection.selector.is_none() => {
                            Err(selection.not_found())
                        }
                        Answer::Missing | Answer::Unmatched => {
                            get_parameter(client, selection).await
                        }
                    };
                    values.insert(selection, value);
                }
            }
            Err(e) if e.class.is_transient() => {
                values.extend(chunk.iter().map(|s| (*s, Err(e.clone()))));
            }
            Err(e) => {
                tracing::info!(
                    error = %e,
                    "GetParameters failed as a whole; reading its {} parameters one by one",
                    chunk.len()
                );
                for selection in chunk {
                    values.insert(selection, get_parameter(client, selection).await);
                }
            }
        }
    }
    selections
        .iter()
        .map(|s| {
            values.get(s).cloned().unwrap_or_else(|| {
                Err(ProviderError::new(
                    ErrorClass::Unavailable,
                    format!("{} was not read", s.describe()),
                ))
            })
        })
        .collect()
}

/// Which returned parameter answers which selection.
fn match_answers(
    batch: &[Selection],
    parameters: Vec<Parameter>,
    invalid: &[String],
) -> Vec<Answer> {
    let mut answers: Vec<Answer> = batch
        .iter()
        .map(|s| {
            if invalid.contains(&s.request()) {
                Answer::Missing
            } else {
                Answer::Unmatched
            }
        })
        .collect();
    for parameter in parameters {
        let owner = (0..batch.len()).find(|&i| {
            matches!(answers[i], Answer::Unmatched) && answers_to(&parameter, &batch[i], batch)
        });
        if let Some(i) = owner {
            answers[i] = Answer::Found(batch[i].fetched(parameter));
        }
    }
    answers
}

/// Whether `parameter` answers `selection`. AWS names the selector it served (`:3`, `:prod`);
/// where it is not named (moto, for one), a version number still tells, and so does being the
/// only read of that name in the batch.
fn answers_to(parameter: &Parameter, selection: &Selection, batch: &[Selection]) -> bool {
    let name = selection.name.as_str();
    if parameter.name.as_deref() != Some(name) && parameter.arn.as_deref() != Some(name) {
        return false;
    }
    let served = parameter
        .selector
        .as_deref()
        .map(|s| s.trim_start_matches(':'))
        .filter(|s| !s.is_empty());
    match (served, selection.selector.as_deref()) {
        (Some(served), Some(asked)) => served == asked,
        (Some(_), None) => false,
        (None, Some(_)) => selection.version_number() == Some(parameter.version),
        (None, None) => batch.iter().filter(|s| s.name == selection.name).count() == 1,
    }
}

fn describe(batch: &[Selection]) -> String {
    match batch {
        [one] => one.describe(),
        _ => {
            let names: Vec<String> = batch.iter().map(|s| format!("{:?}", s.request())).collect();
            format!("parameters {}", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(name: &str, selector: Option<&str>) -> Selection {
        Selection {
            name: name.into(),
            selector: selector.map(str::to_owned),
        }
    }

    fn param(name: &str, version: i64, selector: Option<&str>, value: &str) -> Parameter {
        Parameter::builder()
            .name(name)
            .version(version)
            .set_selector(selector.map(str::to_owned))
            .value(value)
            .build()
    }

    fn summary(answers: &[Answer]) -> Vec<String> {
        answers
            .iter()
            .map(|a| match a {
                Answer::Found(Ok(f)) => String::from_utf8_lossy(f.value.expose()).into_owned(),
                Answer::Found(Err(e)) => format!("error {}", e.class.as_str()),
                Answer::Missing => "missing".into(),
                Answer::Unmatched => "unmatched".into(),
            })
            .collect()
    }

    #[test]
    fn each_answer_goes_to_the_read_that_asked() {
        let batch = [sel("/a", None), sel("/b", None), sel("/gone", None)];
        let answers = match_answers(
            &batch,
            vec![param("/b", 1, None, "B"), param("/a", 7, None, "A")],
            &["/gone".into()],
        );
        assert_eq!(summary(&answers), ["A", "B", "missing"]);
    }

    #[test]
    fn aws_names_the_selector_it_served() {
        let batch = [
            sel("/a", None),
            sel("/a", Some("2")),
            sel("/a", Some("prod")),
        ];
        let answers = match_answers(
            &batch,
            vec![
                param("/a", 5, Some(":prod"), "labelled"),
                param("/a", 2, Some(":2"), "second"),
                param("/a", 9, None, "latest"),
            ],
            &[],
        );
        // Without a selector, "/a" alone is ambiguous among three reads of /a: read it alone.
        assert_eq!(summary(&answers), ["unmatched", "second", "labelled"]);
    }

    #[test]
    fn without_selectors_a_version_number_or_a_unique_name_tells() {
        let batch = [
            sel("/a", Some("2")),
            sel("/b", None),
            sel("/c", Some("prod")),
        ];
        let answers = match_answers(
            &batch,
            vec![
                param("/a", 2, None, "a2"),
                param("/b", 4, None, "b"),
                param("/c", 3, None, "c"),
            ],
            &[],
        );
        assert_eq!(summary(&answers), ["a2", "b", "unmatched"]);
    }

    #[test]
    fn a_parameter_asked_for_by_arn_matches_its_arn() {
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/a";
        let batch = [sel(arn, None)];
        let p = Parameter::builder()
            .name("/a")
            .arn(arn)
            .version(1)
            .value("A")
            .build();
        assert_eq!(summary(&match_answers(&batch, vec![p], &[])), ["A"]);
    }

    #[test]
    fn a_batch_is_described_by_its_names() {
        assert_eq!(describe(&[sel("/a", None)]), "parameter \"/a\"");
        assert_eq!(
            describe(&[sel("/a", None), sel("/b", Some("3"))]),
            "parameters \"/a\", \"/b:3\""
        );
    }
}
