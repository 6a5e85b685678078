//! API server answers as classified provider errors that say which permission or object is
//! missing, where, and what to do. Messages carry names, never values.
use lockstep_provider_api::{ErrorClass, ProviderError};

/// What was asked of the API server, for the message.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The RBAC verb (`get`, `list`, `create`).
    pub verb: &'static str,
    /// The resource, plural (`secrets`, `selfsubjectaccessreviews`).
    pub resource: &'static str,
    /// The object's name, for a single object.
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    /// `the API server https://...`.
    pub server: &'a str,
}

impl Call<'_> {
    fn target(&self) -> String {
        let place = match self.namespace {
            Some(ns) => format!(" in namespace {ns}"),
            None => String::new(),
        };
        match self.name {
            Some(name) => format!("{} {name:?}{place} of {}", self.resource, self.server),
            None => format!("{}{place} of {}", self.resource, self.server),
        }
    }
}

/// Classifies a failed call.
pub fn classify(call: Call<'_>, err: kube::Error) -> ProviderError {
    let target = call.target();
    match err {
        kube::Error::Api(status) => {
            let (class, message) = match status.code {
                401 => (
                    ErrorClass::AccessDenied,
                    format!(
                        "{} refused the store's credentials (401 Unauthorized) when asked to {} {target}: \
                         check the token, client certificate or kubeconfig the store names",
                        call.server, call.verb
                    ),
                ),
                403 => (ErrorClass::AccessDenied, forbidden(call)),
                404 => (
                    ErrorClass::NotFound,
                    format!(
                        "Secret {:?} does not exist in namespace {} of {}",
                        call.name.unwrap_or_default(),
                        call.namespace.unwrap_or_default(),
                        call.server
                    ),
                ),
                429 => (
                    ErrorClass::Throttled,
                    format!(
                        "{} is throttling requests to {} {target}",
                        call.server, call.verb
                    ),
                ),
                code if code >= 500 => (
                    ErrorClass::Unavailable,
                    format!(
                        "{} failed to {} {target}: {} {}",
                        call.server, call.verb, code, status.reason
                    ),
                ),
                code => (
                    ErrorClass::Invalid,
                    format!(
                        "{} refused to {} {target}: {code} {}",
                        call.server, call.verb, status.reason
                    ),
                ),
            };
            ProviderError::new(class, message)
        }
        other => ProviderError::new(
            ErrorClass::Unavailable,
            format!(
                "cannot reach {} to {} {target}: {other}; check server.url and the CA the store trusts",
                call.server, call.verb
            ),
        ),
    }
}

/// The message of a missing permission: which verb on which resource in which namespace.
pub fn forbidden(call: Call<'_>) -> String {
    let place = call
        .namespace
        .map(|ns| format!(" in namespace {ns}"))
        .unwrap_or_default();
    format!(
        "the store's identity may not {verb} {resource}{place} of {server}: grant it {verb} on \
         {resource}{place} (a Role and RoleBinding there), or change remoteNamespace",
        verb = call.verb,
        resource = call.resource,
        server = call.server,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: "secrets \"db\" is forbidden: User \"x\" cannot get resource".into(),
            ..Default::default()
        }))
    }

    fn call() -> Call<'static> {
        Call {
            verb: "get",
            resource: "secrets",
            name: Some("db"),
            namespace: Some("team-b"),
            server: "the API server https://k8s.test",
        }
    }

    #[test]
    fn a_forbidden_read_names_the_verb_the_resource_and_the_namespace() {
        let e = classify(call(), status(403, "Forbidden"));
        assert_eq!(e.class, ErrorClass::AccessDenied);
        assert!(
            e.message
                .contains("may not get secrets in namespace team-b"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("grant it get on secrets in namespace team-b"),
            "{}",
            e.message
        );
    }

    #[test]
    fn other_answers_are_classified() {
        assert_eq!(
            classify(call(), status(404, "NotFound")).class,
            ErrorClass::NotFound
        );
        assert_eq!(
            classify(call(), status(401, "Unauthorized")).class,
            ErrorClass::AccessDenied
        );
        assert_eq!(
            classify(call(), status(429, "TooManyRequests")).class,
            ErrorClass::Throttled
        );
        assert_eq!(
            classify(call(), status(503, "ServiceUnavailable")).class,
            ErrorClass::Unavailable
        );
        assert_eq!(
            classify(call(), status(422, "Invalid")).class,
            ErrorClass::Invalid
        );
        let missing = classify(call(), status(404, "NotFound"));
        assert!(
            missing
                .message
                .contains("Secret \"db\" does not exist in namespace team-b"),
            "{}",
            missing.message
        );
    }
}
