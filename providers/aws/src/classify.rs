use lockstep_provider_api::ErrorClass;

/// Maps an AWS error code to lockstep's error classes. Unknown codes are treated as the provider
/// being unavailable, so they are retried with backoff rather than parked as invalid.
pub fn classify_error_code(code: Option<&str>) -> ErrorClass {
    match code.unwrap_or_default() {
        // Parameter Store: a missing parameter, and ListTagsForResource's word for one.
        "ResourceNotFoundException" | "ParameterNotFound" | "InvalidResourceId" => {
            ErrorClass::NotFound
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "InvalidIdentityToken"
        | "IDPRejectedClaim" => ErrorClass::AccessDenied,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ErrorClass::Throttled,
        "InvalidParameterException"
        | "InvalidRequestException"
        | "ValidationException"
        | "DecryptionFailure"
        | "InvalidParameterValue"
        | "MalformedPolicyDocument"
        | "PackedPolicyTooLarge"
        | "RegionDisabledException"
        // Parameter Store. A missing version is not a missing parameter: ESO reports it as an
        // error rather than as a secret that is gone, so deletionPolicy Delete does not drop it.
        | "ParameterVersionNotFound"
        | "InvalidKeyId"
        | "InvalidFilterKey"
        | "InvalidFilterOption"
        | "InvalidFilterValue"
        | "InvalidNextToken"
        | "InvalidResourceType" => ErrorClass::Invalid,
        _ => ErrorClass::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_codes_secrets_manager_returns() {
        assert_eq!(
            classify_error_code(Some("ResourceNotFoundException")),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify_error_code(Some("AccessDeniedException")),
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify_error_code(Some("ThrottlingException")),
            ErrorClass::Throttled
        );
        assert_eq!(
            classify_error_code(Some("InvalidRequestException")),
            ErrorClass::Invalid
        );
        assert_eq!(
            classify_error_code(Some("InternalServiceError")),
            ErrorClass::Unavailable
        );
        assert_eq!(classify_error_code(None), ErrorClass::Unavailable);
    }

    #[test]
    fn classifies_the_codes_parameter_store_returns() {
        for (code, class) in [
            ("ParameterNotFound", ErrorClass::NotFound),
            ("InvalidResourceId", ErrorClass::NotFound),
            ("ParameterVersionNotFound", ErrorClass::Invalid),
            ("InvalidKeyId", ErrorClass::Invalid),
            ("InvalidFilterKey", ErrorClass::Invalid),
            ("InternalServerError", ErrorClass::Unavailable),
        ] {
            assert_eq!(classify_error_code(Some(code)), class, "{code}");
        }
    }

    #[test]
    fn classifies_the_codes_sts_returns() {
        assert_eq!(
            classify_error_code(Some("InvalidIdentityToken")),
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify_error_code(Some("RegionDisabledException")),
            ErrorClass::Invalid
        );
        assert_eq!(
            classify_error_code(Some("IDPCommunicationError")),
            ErrorClass::Unavailable
        );
    }
}
