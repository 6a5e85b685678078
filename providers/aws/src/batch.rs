//! Reading many explicit keys at once: up to [`BATCH_SIZE`] secrets per BatchGetSecretValue,
//! each answer and each per-secret error mapped back to the request that named it.
//!
//! BatchGetSecretValue reads only the `AWSCURRENT` version and no tags, so a request for another
//! stage, for a VersionId, or for metadata (`metadataPolicy: Fetch`) is read on its own, with
//! GetSecretValue or DescribeSecret, exactly as [`SecretsManager::get`](crate::SecretsManager)
//! reads it.
//!
//! BatchGetSecretValue needs its own IAM action (`secretsmanager:BatchGetSecretValue`), which
//! ESO's users learned the hard way when ESO started to call it. An identity that may only call
//! GetSecretValue is not an error here: a denied batch is read again one by one, and the
//! provider remembers not to try batches with this identity again.
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{ApiErrorType, SecretValueEntry};
use lockstep_provider_api::{ErrorClass, Fetched, ProviderError, SecretValue, VersionInfo};

use crate::errors::{Call, call_error, service_error};
use crate::find::BATCH_SIZE;
use crate::read::{CURRENT, Version};

/// Whether a request can be answered by BatchGetSecretValue: the current value, no metadata.
pub(crate) fn batchable(version: Option<&str>, fetch_metadata: bool) -> bool {
    !fetch_metadata && matches!(Version::of(version), Ok(Version::Stage(CURRENT)))
}

/// Reads the secrets `ids` (current versions); the answer at `i` is for `ids[i]`. `None` at `i`
/// means the batch said nothing about `ids[i]` (or this identity may not batch), so the caller
/// reads it on its own. A failed call answers each of its secrets with the call's error.
pub(crate) async fn current_values(
    client: &Client,
    ids: &[String],
    denied: &AtomicBool,
) -> Vec<Option<Result<Fetched, ProviderError>>> {
    let mut out: Vec<Option<Result<Fetched, ProviderError>>> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH_SIZE) {
        if denied.load(Ordering::Relaxed) {
            out.extend(chunk.iter().map(|_| None));
            continue;
        }
        let subject = format!("{} secrets ({})", chunk.len(), names(chunk));
        let answer = client
            .batch_get_secret_value()
            .set_secret_id_list(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| call_error(Call::BatchGetSecretValue, &subject, e));
        match answer {
            Ok(answer) => {
                let values = answer.secret_values.unwrap_or_default();
                let errors = answer.errors.unwrap_or_default();
                out.extend(chunk.iter().map(|id| answer_for(id, &values, &errors)));
            }
            // The identity may read each secret but not batch them: read one by one from now on.
            Err(e) if e.class == ErrorClass::AccessDenied => {
                denied.store(true, Ordering::Relaxed);
                out.extend(chunk.iter().map(|_| None));
            }
            Err(e) => out.extend(chunk.iter().map(|_| Some(Err(e.clone())))),
        }
    }
    out
}

/// At most three names, for messages.
fn names(ids: &[String]) -> String {
    let mut shown: Vec<String> = ids.iter().take(3).map(|id| format!("{id:?}")).collect();
    if ids.len() > 3 {
        shown.push(format!("and {} more", ids.len() - 3));
    }
    shown.join(", ")
}

/// The answer for the request `id` among a batch's values and errors.
fn answer_for(
    id: &str,
    values: &[SecretValueEntry],
    errors: &[ApiErrorType],
) -> Option<Result<Fetched, ProviderError>> {
    if let Some(error) = errors.iter().find(|e| e.secret_id() == Some(id)) {
        return Some(Err(service_error(
            Call::GetSecretValue,
            &format!("secret {id:?} (read by BatchGetSecretValue)"),
            error.error_code(),
            error.message(),
        )));
    }
    let entry = values.iter().find(|v| names_secret(id, v))?;
    let value = match (&entry.secret_string, &entry.secret_binary) {
        (Some(text), _) => SecretValue::from(text.clone()),
        (None, Some(binary)) => SecretValue::new(binary.as_ref().to_vec()),
        (None, None) => {
            return Some(Err(ProviderError::invalid(format!(
                "secret {id:?} holds neither SecretString nor SecretBinary: put a value into it \
                 (PutSecretValue)"
            ))));
        }
    };
    Some(Ok(Fetched {
        value,
        version: VersionInfo {
            id: entry.version_id.clone(),
            stages: entry.version_stages.clone().unwrap_or_default(),
        },
    }))
}

/// Whether the request `id` (a name, an ARN, or a partial ARN without the six random characters
/// AWS appends) names the secret of `entry`.
fn names_secret(id: &str, entry: &SecretValueEntry) -> bool {
    if entry.name() == Some(id) || entry.arn() == Some(id) {
        return true;
    }
    // A partial ARN: the full ARN is the id, a hyphen and six characters.
    id.starts_with("arn:")
        && entry.arn().is_some_and(|arn| {
            arn.len() == id.len() + 7 && arn.starts_with(id) && arn.as_bytes()[id.len()] == b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> SecretValueEntry {
        SecretValueEntry::builder()
            .name(name)
            .arn(format!(
                "arn:aws:secretsmanager:us-east-1:1:secret:{name}-AbCdEf"
            ))
            .secret_string(value)
            .version_id(format!("v-{name}"))
            .version_stages("AWSCURRENT")
            .build()
    }

    #[test]
    fn only_current_values_without_metadata_are_batched() {
        assert!(batchable(None, false));
        assert!(batchable(Some("AWSCURRENT"), false));
        assert!(!batchable(Some("AWSPREVIOUS"), false));
        assert!(!batchable(Some("uuid/1234"), false));
        assert!(!batchable(None, true));
        assert!(
            !batchable(Some("uuid/"), false),
            "an invalid version is read alone"
        );
    }

    #[test]
    fn each_request_gets_its_own_value_or_error() {
        let values = [entry("team/a", "va"), entry("team/b", "vb")];
        let errors = [ApiErrorType::builder()
            .secret_id("team/gone")
            .error_code("ResourceNotFoundException")
            .message("Secrets Manager can't find the specified secret.")
            .build()];
        let a = answer_for("team/a", &values, &errors).unwrap().unwrap();
        assert_eq!(a.value.expose(), b"va");
        assert_eq!(a.version.id.as_deref(), Some("v-team/a"));
        assert_eq!(a.version.stages, ["AWSCURRENT"]);
        let by_arn = answer_for(
            "arn:aws:secretsmanager:us-east-1:1:secret:team/b-AbCdEf",
            &values,
            &errors,
        )
        .unwrap()
        .unwrap();
        assert_eq!(by_arn.value.expose(), b"vb");
        let by_partial_arn = answer_for(
            "arn:aws:secretsmanager:us-east-1:1:secret:team/b",
            &values,
            &errors,
        )
        .unwrap()
        .unwrap();
        assert_eq!(by_partial_arn.value.expose(), b"vb");
        let gone = answer_for("team/gone", &values, &errors)
            .unwrap()
            .unwrap_err();
        assert_eq!(gone.class, ErrorClass::NotFound);
        assert!(gone.message.contains("\"team/gone\""), "{}", gone.message);
        assert!(
            answer_for("team/c", &values, &errors).is_none(),
            "a secret the batch said nothing about is read on its own"
        );
        // A name that is a prefix of another is not mistaken for it.
        assert!(answer_for("team", &values, &errors).is_none());
    }

    #[test]
    fn a_denied_secret_names_the_permission() {
        let errors = [ApiErrorType::builder()
            .secret_id("team/x")
            .error_code("AccessDeniedException")
            .message("not authorized")
            .build()];
        let err = answer_for("team/x", &[], &errors).unwrap().unwrap_err();
        assert_eq!(err.class, ErrorClass::AccessDenied);
        assert!(
            err.message.contains("secretsmanager:GetSecretValue"),
            "{}",
            err.message
        );
    }

    #[test]
    fn messages_name_a_few_secrets() {
        let ids: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
        assert_eq!(names(&ids[..2]), "\"s0\", \"s1\"");
        assert_eq!(names(&ids), "\"s0\", \"s1\", \"s2\", and 2 more");
    }
}
