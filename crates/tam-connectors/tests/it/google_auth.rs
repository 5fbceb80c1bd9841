//! The service account's signed token requests and its token cache.

use std::path::PathBuf;
use std::time::Duration;

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use tam_connectors::google_auth::{AuthError, ServiceAccount};
use tam_testkit::{Answer, Fake};

fn key_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test_service_account.json")
}

pub(crate) fn decoded(s: &str) -> String {
    String::from_utf8(tam_testkit::unbase64(s)).unwrap()
}

#[test]
fn a_signed_assertion_becomes_a_cached_token() {
    let fake = Fake::start(vec![Answer::json(
        200,
        r#"{"access_token":"ya29.token-1","expires_in":3599,"token_type":"Bearer"}"#,
    )]);
    let uri = format!("{}/token", fake.url);
    let sa = ServiceAccount::from_file(&key_file(), Some(&uri), Duration::from_secs(5)).unwrap();
    let scope = "https://www.googleapis.com/auth/gmail.compose";
    assert_eq!(sa.token("ana@vendor.example", scope).unwrap(), "ya29.token-1");
    assert_eq!(
        sa.token("ana@vendor.example", scope).unwrap(),
        "ya29.token-1",
        "from the cache: the fake serves one answer only"
    );

    let seen = fake.seen.lock().unwrap()[0].clone();
    assert!(seen.body.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="));
    let jwt = seen.body.split("assertion=").nth(1).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&tam_testkit::unbase64(parts[0])).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&tam_testkit::unbase64(parts[1])).unwrap();
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("RS256"), Some("test-key-1")));
    assert_eq!(
        (claims["sub"].as_str(), claims["scope"].as_str(), claims["aud"].as_str()),
        (Some("ana@vendor.example"), Some(scope), Some(uri.as_str()))
    );
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    let signed = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, sa.public_key())
        .verify(signed.as_bytes(), &tam_testkit::unbase64(parts[2]))
        .expect("the signature verifies with the account's public key");
}

#[test]
fn refusals_say_what_an_admin_must_do() {
    let fake = Fake::start(vec![Answer::json(
        401,
        r#"{"error":"unauthorized_client","error_description":"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}"#,
    )]);
    let sa =
        ServiceAccount::from_file(&key_file(), Some(&format!("{}/token", fake.url)), Duration::from_secs(5)).unwrap();
    let err = sa.token("ana@vendor.example", "https://www.googleapis.com/auth/gmail.send").unwrap_err();
    assert!(
        matches!(&err, AuthError::Refused(m) if m.contains("domain-wide delegation for these scopes is not granted")),
        "{err}"
    );
    let missing =
        ServiceAccount::from_file(std::path::Path::new("/nonexistent/key.json"), None, Duration::from_secs(1))
            .err()
            .unwrap();
    assert!(matches!(missing, AuthError::Key(m) if m.starts_with("cannot read /nonexistent/key.json")));
}
