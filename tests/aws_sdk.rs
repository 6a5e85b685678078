//! AWS for tests is moto, reached only through the standard settings that `target/env/env.sh`
//! exports (AWS_ENDPOINT_URL, AWS_REGION, credentials): the same way a user points lockstep at a
//! VPC endpoint. No code path exists only for tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use common::{TestNamespace, client, env};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use lockstep_provider_api::{ErrorClass, RemoteRef, SecretProvider};

async fn sdk_config() -> aws_config::SdkConfig {
    env("AWS_ENDPOINT_URL");
    aws_config::load_from_env().await
}

#[tokio::test]
async fn the_sdk_creates_and_reads_a_secret_through_the_environment() {
    let config = sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let name = common::unique("env/roundtrip");
    sm.create_secret()
        .name(&name)
        .secret_string(r#"{"password":"s3cr3t"}"#)
        .send()
        .await
        .unwrap();

    let got = sm.get_secret_value().secret_id(&name).send().await.unwrap();
    assert_eq!(got.secret_string(), Some(r#"{"password":"s3cr3t"}"#));
    assert!(got.version_stages().contains(&"AWSCURRENT".to_string()));

    // The same read through lockstep's provider crate.
    let provider = lockstep_provider_aws::SecretsManager::new(&config, None);
    let value = provider
        .get(&RemoteRef {
            key: name,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(value.value.expose(), br#"{"password":"s3cr3t"}"#);
    assert!(value.version.stages.contains(&"AWSCURRENT".to_string()));
    assert_eq!(value.version.id.as_deref(), got.version_id());
}

#[tokio::test]
async fn a_missing_secret_is_a_typed_not_found() {
    let config = sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let name = common::unique("env/missing");
    let err = sm
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect_err("the secret does not exist");
    assert!(
        matches!(
            err.into_service_error(),
            GetSecretValueError::ResourceNotFoundException(_)
        ),
        "expected ResourceNotFoundException"
    );

    let provider = lockstep_provider_aws::SecretsManager::new(&config, None);
    let err = provider
        .get(&RemoteRef {
            key: name,
            ..Default::default()
        })
        .await
        .expect_err("not found");
    assert_eq!(err.class, ErrorClass::NotFound);
}

#[tokio::test]
async fn assume_role_with_web_identity_accepts_a_service_account_token() {
    let kube = client().await;
    let ns = TestNamespace::new(&kube, "irsa").await;
    let sas: Api<ServiceAccount> = Api::namespaced(kube, ns.name());
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("tenant".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["sts.amazonaws.com".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas
        .create_token_request("tenant", &PostParams::default(), &request)
        .await
        .unwrap();
    let jwt = token
        .status
        .and_then(|s| s.token)
        .expect("a TokenRequest answer has a token");

    let sts = aws_sdk_sts::Client::new(&sdk_config().await);
    let out = sts
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::123456789012:role/tenant")
        .role_session_name("lockstep-test")
        .web_identity_token(jwt)
        .send()
        .await
        .unwrap();
    let creds = out.credentials().expect("STS returns credentials");
    assert!(!creds.access_key_id().is_empty());
    let assumed = out
        .assumed_role_user()
        .expect("STS returns the assumed role");
    assert!(
        assumed.arn().contains("tenant/lockstep-test"),
        "unexpected ARN {}",
        assumed.arn()
    );
}
