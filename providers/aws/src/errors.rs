//! Provider errors that say what failed and what to do about it: which call, on which secret,
//! and for a refusal which IAM permission is missing. Built only from AWS error codes and
//! messages and from names lockstep chose, never from a secret value.
use std::error::Error as StdError;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use lockstep_provider_api::{ErrorClass, ProviderError};

use crate::classify_error_code;

/// An AWS call, named as in CloudTrail and IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    GetSecretValue,
    DescribeSecret,
    ListSecrets,
    BatchGetSecretValue,
    GetCallerIdentity,
    AssumeRole,
    AssumeRoleWithWebIdentity,
    GetParameter,
    GetParameters,
    GetParametersByPath,
    DescribeParameters,
    ListTagsForResource,
}

impl Call {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::GetSecretValue => "GetSecretValue",
            Self::DescribeSecret => "DescribeSecret",
            Self::ListSecrets => "ListSecrets",
            Self::BatchGetSecretValue => "BatchGetSecretValue",
            Self::GetCallerIdentity => "GetCallerIdentity",
            Self::AssumeRole => "AssumeRole",
            Self::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            Self::GetParameter => "GetParameter",
            Self::GetParameters => "GetParameters",
            Self::GetParametersByPath => "GetParametersByPath",
            Self::DescribeParameters => "DescribeParameters",
            Self::ListTagsForResource => "ListTagsForResource",
        }
    }

    fn service(self) -> &'static str {
        match self {
            Self::GetCallerIdentity | Self::AssumeRole | Self::AssumeRoleWithWebIdentity => "STS",
            Self::GetParameter
            | Self::GetParameters
            | Self::GetParametersByPath
            | Self::DescribeParameters
            | Self::ListTagsForResource => "Parameter Store",
            _ => "Secrets Manager",
        }
    }

    fn is_parameter_store(self) -> bool {
        self.service() == "Parameter Store"
    }

    /// What must be granted for this call to succeed.
    fn permission(self) -> &'static str {
        match self {
            Self::GetSecretValue => {
                "the IAM policy of the identity this store uses must allow \
                 secretsmanager:GetSecretValue on it (and kms:Decrypt on its KMS key if that is a \
                 customer managed key)"
            }
            Self::DescribeSecret => {
                "the IAM policy of the identity this store uses must allow \
                 secretsmanager:DescribeSecret on it (metadataPolicy: Fetch reads the secret's tags)"
            }
            Self::ListSecrets => {
                "the IAM policy of the identity this store uses must allow \
                 secretsmanager:ListSecrets (dataFrom.find lists the secrets to match)"
            }
            Self::BatchGetSecretValue => {
                "the IAM policy of the identity this store uses must allow \
                 secretsmanager:BatchGetSecretValue, secretsmanager:ListSecrets, and \
                 secretsmanager:GetSecretValue on every secret dataFrom.find selects"
            }
            // GetCallerIdentity needs no permission: a denial means the credentials themselves.
            Self::GetCallerIdentity => "check the store's auth",
            Self::AssumeRole => {
                "the role's trust policy must allow this identity sts:AssumeRole (and \
                 sts:TagSession when session tags are set), and its policy must allow it \
                 to assume the role"
            }
            Self::AssumeRoleWithWebIdentity => {
                "the role's trust policy must trust the cluster's OIDC issuer for this \
                 ServiceAccount and audience (sts:AssumeRoleWithWebIdentity)"
            }
            Self::GetParameter => {
                "the IAM policy of the identity this store uses must allow ssm:GetParameter on \
                 it (and kms:Decrypt on its KMS key for a SecureString under a customer managed \
                 key)"
            }
            Self::GetParameters => {
                "the IAM policy of the identity this store uses must allow ssm:GetParameters on \
                 these parameters (and kms:Decrypt on the KMS key of SecureStrings under a \
                 customer managed key)"
            }
            Self::GetParametersByPath => {
                "the IAM policy of the identity this store uses must allow \
                 ssm:GetParametersByPath on the path (dataFrom.find with name.regexp reads the \
                 parameters under find.path, / when it is unset)"
            }
            Self::DescribeParameters => {
                "the IAM policy of the identity this store uses must allow \
                 ssm:DescribeParameters (dataFrom.find with tags lists the parameters to match)"
            }
            Self::ListTagsForResource => {
                "the IAM policy of the identity this store uses must allow \
                 ssm:ListTagsForResource on it (metadataPolicy: Fetch reads the parameter's tags)"
            }
        }
    }
}

/// The error of a failed call on `subject` (such as `secret "team/db"`).
pub(crate) fn call_error<E>(
    call: Call,
    subject: &str,
    err: SdkError<E, HttpResponse>,
) -> ProviderError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &err {
        // An IAM denial without an error code in the body (some endpoints and proxies answer a
        // bare or HTML 403) is still a denial, not an outage to retry.
        SdkError::ServiceError(service)
            if service.err().code().is_none() && service.raw().status().as_u16() == 403 =>
        {
            service_error(
                call,
                subject,
                Some("AccessDenied"),
                Some("HTTP 403 without details"),
            )
        }
        SdkError::ServiceError(service) => {
            service_error(call, subject, service.err().code(), service.err().message())
        }
        SdkError::ConstructionFailure(_) => ProviderError::invalid(format!(
            "the {} request for {subject} could not be built: {}; check spec.provider.aws.region \
             and the endpoint settings (AWS_ENDPOINT_URL)",
            call.name(),
            sanitize(&DisplayErrorContext(&err).to_string()),
        )),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ProviderError::new(
            ErrorClass::Unavailable,
            format!(
                "could not reach {service} for {} on {subject}: {}; check \
                 spec.provider.aws.region and network access to the {service} endpoint (a VPC \
                 endpoint, a proxy, or AWS_ENDPOINT_URL); lockstep retries with backoff",
                call.name(),
                sanitize(&root_cause(&err)),
                service = call.service(),
            ),
        ),
        _ => ProviderError::new(
            ErrorClass::Unavailable,
            format!(
                "the answer of {} to {} on {subject} could not be read: {}; lockstep retries \
                 with backoff",
                call.service(),
                call.name(),
                sanitize(&DisplayErrorContext(&err).to_string()),
            ),
        ),
    }
}

/// The innermost cause of a transport failure ("Connection refused (os error 111)", "timed
/// out"): the SDK's own wrappers add only their internal names.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The error for an error code AWS returned for a call on `subject`.
pub(crate) fn service_error(
    call: Call,
    subject: &str,
    code: Option<&str>,
    message: Option<&str>,
) -> ProviderError {
    let message = sanitize(message.unwrap_or("no details"));
    let code_text = code.unwrap_or("unknown error");
    let call_name = call.name();
    if is_scheduled_for_deletion(code, &message) {
        return ProviderError::not_found(format!(
            "{subject} is scheduled for deletion in Secrets Manager ({call_name}: {message}); \
             restore it (RestoreSecret) to keep using it"
        ));
    }
    let class = classify_error_code(code);
    let text = match class {
        ErrorClass::NotFound => {
            format!("{subject} was not found ({call_name}: {message})")
        }
        ErrorClass::AccessDenied if is_permission_denial(code) => format!(
            "{call_name} on {subject} was denied ({message}); {}",
            call.permission()
        ),
        ErrorClass::AccessDenied => format!(
            "{call_name} on {subject} was refused because the credentials are not valid \
             ({code_text}: {message}); check the store's auth: the access keys in \
             auth.secretRef, the ServiceAccount of auth.jwt, or the roles lockstep assumes"
        ),
        ErrorClass::Throttled => format!(
            "{call_name} on {subject} was throttled by AWS ({message}); lockstep backs off and \
             retries; if this persists raise refreshInterval, or tune the store's \
             spec.retrySettings"
        ),
        ErrorClass::Unavailable => format!(
            "{} failed on {call_name} for {subject} ({code_text}: {message}); lockstep retries \
             with backoff",
            call.service()
        ),
        ErrorClass::Invalid => format!(
            "{call_name} on {subject} was refused ({code_text}: {message}); {}",
            if call.is_parameter_store() {
                parameter_store_hint(code)
            } else {
                invalid_hint(code)
            }
        ),
    };
    ProviderError::new(class, text)
}

/// ESO reads a secret scheduled for deletion as a missing one (`NoSecretErr`). AWS answers
/// InvalidRequestException "... because it was marked for deletion"; ESO also checks
/// InvalidParameterException, and emulators say "marked deleted".
fn is_scheduled_for_deletion(code: Option<&str>, message: &str) -> bool {
    matches!(
        code,
        Some("InvalidRequestException" | "InvalidParameterException")
    ) && (message.contains("marked for deletion") || message.contains("marked deleted"))
}

/// A refusal by IAM policy, as opposed to credentials that did not authenticate.
fn is_permission_denial(code: Option<&str>) -> bool {
    matches!(code, Some("AccessDeniedException" | "AccessDenied"))
}

fn invalid_hint(code: Option<&str>) -> &'static str {
    match code {
        Some("DecryptionFailure") => {
            "the identity needs kms:Decrypt on the secret's KMS key, and the key must be enabled"
        }
        Some("InvalidRequestException") => {
            "check the secret's state in Secrets Manager, and remoteRef.version if it is set"
        }
        Some("InvalidParameterException" | "ValidationException") => {
            "check remoteRef.key and remoteRef.version (a VersionId is written uuid/<VersionId>, \
             anything else is a staging label), or the dataFrom.find filters"
        }
        _ => "fix the ExternalSecret or the store configuration",
    }
}

fn parameter_store_hint(code: Option<&str>) -> &'static str {
    match code {
        Some("ParameterVersionNotFound") => {
            "check remoteRef.version: for Parameter Store it is a version number of the \
             parameter (such as 3) or one of its labels"
        }
        Some("InvalidKeyId") => {
            "the identity needs kms:Decrypt on the parameter's KMS key, and the key must be \
             enabled"
        }
        Some("InvalidFilterKey" | "InvalidFilterOption" | "InvalidFilterValue") => {
            "check dataFrom.find: tag keys and values as Parameter Store accepts them, and \
             find.path a hierarchy such as /team/app"
        }
        _ => {
            "check remoteRef.key (a parameter name such as /team/app/db), remoteRef.version (a \
             version number or label), or dataFrom.find (find.path a hierarchy such as \
             /team/app)"
        }
    }
}

/// Drops what AWS messages may carry that is no business of a status condition: the signing
/// details after ` Credential=` (the access key ID), as ESO's `SanitizeErr` does.
pub(crate) fn sanitize(message: &str) -> String {
    match message.find(" Credential=") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "secret \"team/db\"";

    #[test]
    fn access_denied_names_the_call_the_secret_and_the_permission() {
        let err = service_error(
            Call::GetSecretValue,
            SECRET,
            Some("AccessDeniedException"),
            Some(
                "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: secretsmanager:GetSecretValue",
            ),
        );
        assert_eq!(err.class, ErrorClass::AccessDenied);
        assert!(
            err.message
                .starts_with("GetSecretValue on secret \"team/db\" was denied")
        );
        assert!(
            err.message
                .contains("must allow secretsmanager:GetSecretValue on it")
        );
    }

    #[test]
    fn each_call_asks_for_its_own_permission() {
        for (call, action) in [
            (Call::DescribeSecret, "secretsmanager:DescribeSecret"),
            (Call::ListSecrets, "secretsmanager:ListSecrets"),
            (
                Call::BatchGetSecretValue,
                "secretsmanager:BatchGetSecretValue",
            ),
        ] {
            let err = service_error(call, SECRET, Some("AccessDeniedException"), None);
            assert!(err.message.contains(action), "{}", err.message);
        }
    }

    #[test]
    fn bad_credentials_point_at_the_store_auth() {
        let err = service_error(
            Call::GetSecretValue,
            SECRET,
            Some("UnrecognizedClientException"),
            Some("The security token included in the request is invalid."),
        );
        assert_eq!(err.class, ErrorClass::AccessDenied);
        assert!(err.message.contains("auth.secretRef"), "{}", err.message);
    }

    #[test]
    fn a_secret_scheduled_for_deletion_is_missing_as_in_eso() {
        for (code, message) in [
            (
                "InvalidRequestException",
                "You can't perform this operation on the secret because it was marked for deletion.",
            ),
            (
                "InvalidParameterException",
                "You can't perform this operation on the secret because it was marked for deletion.",
            ),
            (
                "InvalidRequestException",
                "You tried to perform the operation on a secret that's currently marked deleted.",
            ),
        ] {
            let err = service_error(Call::GetSecretValue, SECRET, Some(code), Some(message));
            assert_eq!(err.class, ErrorClass::NotFound, "{code}: {message}");
            assert!(err.message.contains("RestoreSecret"));
        }
        let other = service_error(
            Call::GetSecretValue,
            SECRET,
            Some("InvalidRequestException"),
            Some("something else"),
        );
        assert_eq!(other.class, ErrorClass::Invalid);
    }

    #[test]
    fn classes_and_hints_for_the_other_codes() {
        let not_found = service_error(
            Call::GetSecretValue,
            SECRET,
            Some("ResourceNotFoundException"),
            Some("Secrets Manager can't find the specified secret."),
        );
        assert_eq!(not_found.class, ErrorClass::NotFound);
        assert!(
            not_found
                .message
                .starts_with("secret \"team/db\" was not found")
        );

        let throttled = service_error(Call::ListSecrets, SECRET, Some("ThrottlingException"), None);
        assert_eq!(throttled.class, ErrorClass::Throttled);
        assert!(throttled.message.contains("retrySettings"));

        let kms = service_error(
            Call::GetSecretValue,
            SECRET,
            Some("DecryptionFailure"),
            None,
        );
        assert_eq!(kms.class, ErrorClass::Invalid);
        assert!(kms.message.contains("kms:Decrypt"));

        let internal = service_error(
            Call::GetSecretValue,
            SECRET,
            Some("InternalServiceError"),
            None,
        );
        assert_eq!(internal.class, ErrorClass::Unavailable);
    }

    #[test]
    fn signing_details_are_dropped() {
        assert_eq!(
            sanitize(
                "The request signature we calculated does not match. Credential=AKIAEXAMPLE/20260101/us-east-1"
            ),
            "The request signature we calculated does not match."
        );
        let err = service_error(
            Call::GetSecretValue,
            SECRET,
            Some("SignatureDoesNotMatch"),
            Some("mismatch Credential=AKIAEXAMPLE/x"),
        );
        assert!(!err.message.contains("AKIAEXAMPLE"), "{}", err.message);
    }
}
