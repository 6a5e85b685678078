//! The CEL rules (`x-kubernetes-validations`) that replace ESO's validating webhook. lockstep has
//! no admission webhook: every check ESO's webhook makes is here, or in the OpenAPI constraints
//! on the types, and the API server enforces it.
//!
//! Each function is a schemars transform attached to the type it validates, so a rule follows
//! its type wherever the type is embedded (an ExternalSecret spec inside a ClusterExternalSecret
//! is checked the same way). Rules that depend on the kind (SecretStore or ClusterSecretStore)
//! are added per CRD by [`kind_specific_store_rules`].
//!
//! Two of ESO's webhook checks cannot be expressed here, and the controller makes them instead:
//! - a SecretStore's Secret and ServiceAccount references must stay in the store's namespace:
//!   CEL cannot read `metadata.namespace`;
//! - a ClusterSecretStore's `conditions[].namespaceRegexes` must compile: CEL has no way to ask
//!   whether a string is a valid regular expression.
//!
//! CEL's cost estimate needs bounds: every list a rule iterates has a `maxItems`, every string a
//! rule compares has a `maxLength` (see the types), and the API server accepts the CRDs
//! (`tests/crd_validation.rs` installs them).
use schemars::Schema;
use serde_json::{Value, json};

use super::provider::{SUPPORTED_PROVIDERS, UNSUPPORTED_PROVIDERS};
use super::provider_aws::RESERVED_SESSION_TAG_KEYS;

/// The key rules live under.
pub const VALIDATIONS: &str = "x-kubernetes-validations";

/// One rule and the message a user sees when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub rule: String,
    pub message: Message,
    /// Where the error points, relative to the rule's object (for example `.data`).
    pub field_path: Option<String>,
    /// `FieldValueInvalid` (the API server's default), `FieldValueForbidden`,
    /// `FieldValueRequired` or `FieldValueDuplicate`.
    pub reason: Option<&'static str>,
}

/// A fixed message, or a CEL expression that computes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Fixed(String),
    Expression(String),
}

impl Rule {
    pub fn new(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            rule: rule.into(),
            message: Message::Fixed(message.into()),
            field_path: None,
            reason: None,
        }
    }

    pub fn with_message_expression(rule: impl Into<String>, expression: impl Into<String>) -> Self {
        Self {
            rule: rule.into(),
            message: Message::Expression(expression.into()),
            field_path: None,
            reason: None,
        }
    }

    pub fn at(mut self, field_path: impl Into<String>) -> Self {
        self.field_path = Some(field_path.into());
        self
    }

    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut rule = serde_json::Map::new();
        rule.insert("rule".into(), self.rule.clone().into());
        match &self.message {
            Message::Fixed(text) => rule.insert("message".into(), text.clone().into()),
            Message::Expression(expr) => {
                rule.insert("messageExpression".into(), expr.clone().into())
            }
        };
        if let Some(path) = &self.field_path {
            rule.insert("fieldPath".into(), path.clone().into());
        }
        if let Some(reason) = self.reason {
            rule.insert("reason".into(), reason.into());
        }
        Value::Object(rule)
    }
}

/// Appends rules to a schema object.
fn add(schema: &mut Schema, rules: impl IntoIterator<Item = Rule>) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let list = object
        .entry(VALIDATIONS)
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        list.extend(rules.into_iter().map(|r| r.to_json()));
    }
}

/// `has(self.a) ? 1 : 0 + ...`: how many of these fields are set.
fn count_set<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    fields
        .into_iter()
        .map(|f| format!("(has(self.{f}) ? 1 : 0)"))
        .collect::<Vec<_>>()
        .join(" + ")
}

// ---------------------------------------------------------------------------------------------
// ExternalSecret

/// Messages of the ExternalSecret rules, for tests and documentation.
pub mod messages {
    pub const DATA_OR_DATA_FROM: &str = "either data or dataFrom must be specified: an ExternalSecret with neither has nothing to fetch";
    pub const DELETE_NEEDS_OWNER: &str = "deletionPolicy Delete cannot be combined with creationPolicy Merge, None or CreateOrMerge: lockstep deletes only Secrets it owns; set creationPolicy: Owner, or use deletionPolicy Retain or Merge";
    pub const MERGE_NEEDS_SECRET: &str = "deletionPolicy Merge cannot be combined with creationPolicy None: there is no Secret to merge into";
    pub const TEMPLATE_FROM_TARGET: &str = "templateFrom[].target must be Data, Annotations or Labels (any case) when the ExternalSecret writes a Secret";
    pub const SERVICE_ACCOUNT_TOKEN: &str = "type kubernetes.io/service-account-token is not allowed: lockstep never writes ServiceAccount token Secrets (request short-lived tokens with the TokenRequest API instead)";
    pub const BOOTSTRAP_TOKEN: &str = "type bootstrap.kubernetes.io/token is not allowed: lockstep never writes bootstrap token Secrets";
    pub const DATA_FROM_ONE_SOURCE: &str = "extract, find and sourceRef.generatorRef cannot be set at the same time: each dataFrom entry reads from one of them";
    pub const DATA_FROM_NEEDS_SOURCE: &str =
        "each dataFrom entry needs one of extract, find or sourceRef";
    pub const SOURCE_REF_ONE: &str = "sourceRef must set exactly one of storeRef or generatorRef";
    pub const REWRITE_ONE: &str =
        "each rewrite entry must set exactly one of merge, regexp or transform";
}

pub fn external_secret_spec(schema: &mut Schema) {
    add(
        schema,
        [
            Rule::new(
                "(has(self.data) && size(self.data) > 0) || (has(self.dataFrom) && size(self.dataFrom) > 0)",
                messages::DATA_OR_DATA_FROM,
            )
            .reason("FieldValueRequired"),
            // Duplicate `data[].secretKey` values are refused always (ESO: only with Retain),
            // by the list type of `data` rather than a rule: see `ExternalSecretSpec::data`.
        ],
    );
}

pub fn external_secret_target(schema: &mut Schema) {
    add(
        schema,
        [
            Rule::new(
                "!(has(self.deletionPolicy) && self.deletionPolicy == 'Delete' && has(self.creationPolicy) && self.creationPolicy in ['Merge', 'None', 'CreateOrMerge'])",
                messages::DELETE_NEEDS_OWNER,
            )
            .at(".deletionPolicy"),
            Rule::new(
                "!(has(self.deletionPolicy) && self.deletionPolicy == 'Merge' && has(self.creationPolicy) && self.creationPolicy == 'None')",
                messages::MERGE_NEEDS_SECRET,
            )
            .at(".deletionPolicy"),
            // Any other target is a path into the written object: for a Secret it would reach
            // `type`, `immutable` or `metadata.ownerReferences`. Generic targets may use paths.
            Rule::new(
                "!has(self.template) || !has(self.template.templateFrom) \
                 || (has(self.manifest) && !(self.manifest.apiVersion == 'v1' && self.manifest.kind == 'Secret')) \
                 || self.template.templateFrom.all(t, !has(t.target) || t.target == '' || t.target.lowerAscii() in ['data', 'annotations', 'labels'])",
                messages::TEMPLATE_FROM_TARGET,
            ),
        ],
    );
}

pub fn template(schema: &mut Schema) {
    add(
        schema,
        [
            // ESO refuses this type only with the ServiceAccount annotation; lockstep refuses the
            // type outright: such a Secret makes the token controller mint a long-lived token.
            Rule::new(
                "!has(self.type) || self.type != 'kubernetes.io/service-account-token'",
                messages::SERVICE_ACCOUNT_TOKEN,
            )
            .at(".type")
            .reason("FieldValueForbidden"),
            Rule::new(
                "!has(self.type) || self.type != 'bootstrap.kubernetes.io/token'",
                messages::BOOTSTRAP_TOKEN,
            )
            .at(".type")
            .reason("FieldValueForbidden"),
        ],
    );
}

pub fn data_from_entry(schema: &mut Schema) {
    add(
        schema,
        [
            Rule::new(
                "(has(self.extract) ? 1 : 0) + (has(self.find) ? 1 : 0) + (has(self.sourceRef) && has(self.sourceRef.generatorRef) ? 1 : 0) <= 1",
                messages::DATA_FROM_ONE_SOURCE,
            ),
            Rule::new(
                "has(self.extract) || has(self.find) || has(self.sourceRef)",
                messages::DATA_FROM_NEEDS_SOURCE,
            )
            .reason("FieldValueRequired"),
        ],
    );
}

pub fn store_source_ref(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            format!("{} == 1", count_set(["storeRef", "generatorRef"])),
            messages::SOURCE_REF_ONE,
        )],
    );
}

pub fn rewrite(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            format!("{} == 1", count_set(["merge", "regexp", "transform"])),
            messages::REWRITE_ONE,
        )],
    );
}

// ---------------------------------------------------------------------------------------------
// Stores

/// `spec.refreshInterval` of a store: seconds, or a Go duration.
pub const STORE_REFRESH_INTERVAL: &str =
    "refreshInterval must be a number of seconds or a duration such as 30s, 5m or 1h";

pub fn secret_store_spec(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            format!(
                "!has(self.refreshInterval) || (type(self.refreshInterval) == int ? self.refreshInterval >= 0 : self.refreshInterval.matches(r'{}'))",
                super::meta::GO_DURATION
            ),
            STORE_REFRESH_INTERVAL,
        )
        .at(".refreshInterval")],
    );
}

/// The message for a provider key lockstep does not implement.
pub fn unsupported_provider_message(key: &str) -> String {
    format!(
        "provider \"{key}\" is not supported by lockstep yet; supported providers: {}",
        SUPPORTED_PROVIDERS.join(", ")
    )
}

/// The rules of `spec.provider`, in the order they are attached.
pub fn provider_rules() -> Vec<Rule> {
    let all = SUPPORTED_PROVIDERS
        .iter()
        .chain(UNSUPPORTED_PROVIDERS.iter())
        .copied();
    let count = count_set(all);
    // `string(count)` would be cheaper to read, but CEL's cost estimate cannot bound the length
    // of an int's text and refuses it; indexing a list of the possible counts is bounded.
    let numbers = (0..=SUPPORTED_PROVIDERS.len() + UNSUPPORTED_PROVIDERS.len())
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut rules = vec![Rule::with_message_expression(
        format!("{count} == 1"),
        format!(
            "'exactly one provider must be set (supported: {}); found ' + [{numbers}][{count}]",
            SUPPORTED_PROVIDERS.join(", ")
        ),
    )];
    rules.extend(UNSUPPORTED_PROVIDERS.iter().map(|key| {
        Rule::new(
            format!("!has(self.{key})"),
            unsupported_provider_message(key),
        )
        .at(format!(".{key}"))
    }));
    rules
}

/// Declares ESO's other providers as opaque objects (so they reach the rules instead of being
/// pruned), and attaches the rules.
pub fn provider(schema: &mut Schema) {
    if let Some(Value::Object(properties)) =
        schema.as_object_mut().and_then(|o| o.get_mut("properties"))
    {
        for key in UNSUPPORTED_PROVIDERS {
            properties.insert(
                key.to_owned(),
                json!({
                    "description": format!("ESO's {key} provider; not supported by lockstep yet."),
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                }),
            );
        }
    }
    add(schema, provider_rules());
}

pub fn aws_provider(schema: &mut Schema) {
    let reserved = RESERVED_SESSION_TAG_KEYS
        .iter()
        .map(|k| format!("!('{k}' in self.customSessionTags)"))
        .collect::<Vec<_>>()
        .join(" && ");
    add(
        schema,
        [Rule::new(
            format!("!has(self.customSessionTags) || ({reserved})"),
            format!(
                "customSessionTags cannot use the reserved keys {}: lockstep sets them itself",
                RESERVED_SESSION_TAG_KEYS.join(", ")
            ),
        )
        .at(".customSessionTags")],
    );
}

pub fn aws_secrets_manager(schema: &mut Schema) {
    add(
        schema,
        [
            Rule::new(
                "!has(self.recoveryWindowInDays) || self.recoveryWindowInDays == 0 || (self.recoveryWindowInDays >= 7 && self.recoveryWindowInDays <= 30)",
                "recoveryWindowInDays must be between 7 and 30 days",
            )
            .at(".recoveryWindowInDays"),
            Rule::new(
                "!(has(self.forceDeleteWithoutRecovery) && self.forceDeleteWithoutRecovery && has(self.recoveryWindowInDays) && self.recoveryWindowInDays != 0)",
                "forceDeleteWithoutRecovery cannot be combined with recoveryWindowInDays: choose one",
            ),
        ],
    );
}

pub fn kubernetes_auth(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            format!("{} == 1", count_set(["cert", "token", "serviceAccount"])),
            "kubernetes auth must set exactly one of cert, token or serviceAccount",
        )],
    );
}

pub fn kubernetes_cert_auth(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            "has(self.clientCert.name) && has(self.clientCert.key)",
            "cert.clientCert needs both name and key",
        )
        .at(".clientCert")],
    );
}

pub fn kubernetes_token_auth(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            "has(self.bearerToken.name) && has(self.bearerToken.key)",
            "token.bearerToken needs both name and key",
        )
        .at(".bearerToken")],
    );
}

/// Where a rule goes in a store CRD's schema, as property names from the root.
pub type SchemaPath = &'static [&'static str];

/// Rules that differ between SecretStore and ClusterSecretStore (ESO's webhook asks the kind).
pub fn kind_specific_store_rules(cluster: bool) -> Vec<(SchemaPath, Rule)> {
    const CA_PROVIDER: SchemaPath = &["spec", "provider", "kubernetes", "server", "caProvider"];
    if !cluster {
        return vec![(
            CA_PROVIDER,
            Rule::new(
                "!has(self.namespace)",
                "caProvider.namespace must be empty in a SecretStore: it reads from its own namespace",
            )
            .at(".namespace")
            .reason("FieldValueForbidden"),
        )];
    }
    let needs_namespace = |what: &str| {
        Rule::new(
            "has(self.namespace)",
            format!("{what}.namespace is required in a ClusterSecretStore: it has no namespace of its own"),
        )
        .reason("FieldValueRequired")
    };
    vec![
        (CA_PROVIDER, needs_namespace("caProvider")),
        (
            &[
                "spec",
                "provider",
                "kubernetes",
                "auth",
                "cert",
                "clientCert",
            ],
            needs_namespace("cert.clientCert"),
        ),
        (
            &[
                "spec",
                "provider",
                "kubernetes",
                "auth",
                "cert",
                "clientKey",
            ],
            needs_namespace("cert.clientKey"),
        ),
        (
            &[
                "spec",
                "provider",
                "kubernetes",
                "auth",
                "token",
                "bearerToken",
            ],
            needs_namespace("token.bearerToken"),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// PushSecret

pub fn push_secret_selector(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            format!("{} == 1", count_set(["secret", "generatorRef"])),
            "selector must set exactly one of secret or generatorRef",
        )],
    );
}

pub fn push_secret_data_to(schema: &mut Schema) {
    add(
        schema,
        [
            Rule::new(
                "has(self.storeRef) && (has(self.storeRef.name) || has(self.storeRef.labelSelector))",
                "dataTo[].storeRef is required and must set name or labelSelector",
            ),
            Rule::new(
                "!has(self.remoteKey) || !has(self.rewrite) || size(self.rewrite) == 0",
                "dataTo[].remoteKey and rewrite cannot be combined: rewrite applies only when each key is pushed on its own (without remoteKey)",
            ),
        ],
    );
}

pub fn push_secret_rewrite(schema: &mut Schema) {
    add(
        schema,
        [Rule::new(
            format!("{} == 1", count_set(["regexp", "transform"])),
            "each rewrite entry must set exactly one of regexp or transform",
        )],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_one_rule_per_unsupported_provider_plus_the_count() {
        let rules = provider_rules();
        assert_eq!(rules.len(), UNSUPPORTED_PROVIDERS.len() + 1);
        for key in UNSUPPORTED_PROVIDERS {
            let rule = rules
                .iter()
                .find(|r| r.rule == format!("!has(self.{key})"))
                .unwrap_or_else(|| panic!("no rule for {key}"));
            assert_eq!(
                rule.message,
                Message::Fixed(unsupported_provider_message(key))
            );
        }
        for key in SUPPORTED_PROVIDERS {
            assert!(rules[0].rule.contains(&format!("has(self.{key})")));
            assert!(
                !rules.iter().any(|r| r.rule == format!("!has(self.{key})")),
                "{key} is supported"
            );
        }
    }

    #[test]
    fn the_provider_messages_name_the_supported_providers() {
        assert_eq!(
            unsupported_provider_message("vault"),
            "provider \"vault\" is not supported by lockstep yet; supported providers: aws, fake, kubernetes, webhook"
        );
        let Message::Expression(expr) = &provider_rules()[0].message else {
            panic!("the count rule computes its message");
        };
        assert!(expr.starts_with(
            "'exactly one provider must be set (supported: aws, fake, kubernetes, webhook); found '"
        ));
    }
}
