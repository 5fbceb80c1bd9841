//! Google service-account auth with domain-wide delegation: a JWT (RS256) asserting the
//! service account, impersonating one mailbox (`sub`) for some scopes, exchanged for a bearer
//! token that is cached until shortly before it expires.
//!
//! The key file's path comes from config or the environment; the key never leaves this module
//! and never appears in an error.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::{Value, json};
use tam_core::Timestamp;

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The key file is missing or not a service-account key.
    #[error("service account key: {0}")]
    Key(String),
    /// Google refused the grant; retrying will not help until an admin acts.
    #[error("{0}")]
    Refused(String),
    /// The token endpoint could not be reached or answered badly; worth retrying.
    #[error("token request failed: {0}")]
    Unavailable(String),
}

/// A channel that cannot get a token tries again later only when the token endpoint was the
/// trouble; a refusal waits for an admin.
impl From<AuthError> for tam_core::outbox::Outcome {
    fn from(e: AuthError) -> tam_core::outbox::Outcome {
        match e {
            AuthError::Unavailable(_) => tam_core::outbox::Outcome::Retry { reason: e.to_string(), after: None },
            e => tam_core::outbox::Outcome::Rejected { reason: e.to_string() },
        }
    }
}

#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key_id: Option<String>,
    private_key: String,
    token_uri: Option<String>,
}

/// Standard base64 (PEM bodies), whitespace ignored.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const PEM: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::Engine::decode(&PEM, clean).ok()
}

pub use tam_core::mime::base64url;

/// Base64url as Gmail gives message bodies (padding optional); none for anything else.
pub fn unbase64url(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const URL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    base64::Engine::decode(&URL, text.trim()).ok()
}

/// A service account that can mint tokens for the mailboxes of its domain.
pub struct ServiceAccount {
    email: String,
    key_id: Option<String>,
    key: RsaKeyPair,
    token_uri: String,
    timeout: Duration,
    /// Tokens by (subject, scope), until when they are good. Fetching one holds no lock, so
    /// workers acting as different mailboxes never wait for each other's token.
    cache: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl ServiceAccount {
    /// Reads a service-account JSON key file. `token_uri` overrides the file's (tests point
    /// it at a fake).
    pub fn from_file(path: &Path, token_uri: Option<&str>, timeout: Duration) -> Result<ServiceAccount, AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthError::Key(format!("cannot read {}: {e}", path.display())))?;
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| AuthError::Key(format!("{} is not a service-account key: {e}", path.display())))?;
        let body: String = file.private_key.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64_decode(&body)
            .ok_or_else(|| AuthError::Key(format!("{}: private_key is not PEM", path.display())))?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| AuthError::Key(format!("{}: private_key is not an RSA PKCS#8 key", path.display())))?;
        Ok(ServiceAccount {
            email: file.client_email,
            key_id: file.private_key_id,
            key,
            token_uri: token_uri
                .map(str::to_owned)
                .or(file.token_uri)
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".to_owned()),
            timeout,
            cache: Mutex::default(),
        })
    }

    /// The signed assertion for `sub` and `scope` at `now`.
    pub fn assertion(&self, sub: &str, scope: &str, now: Timestamp) -> Result<String, AuthError> {
        let iat = now.as_second();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let mut claims =
            json!({"iss": self.email, "scope": scope, "aud": self.token_uri, "iat": iat, "exp": iat + 3600});
        // No subject is the app acting as itself (Chat app auth); a subject is delegation.
        if !sub.is_empty() {
            claims["sub"] = json!(sub);
        }
        let signing_input =
            format!("{}.{}", base64url(header.to_string().as_bytes()), base64url(claims.to_string().as_bytes()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| AuthError::Key("signing the assertion failed".to_owned()))?;
        Ok(format!("{signing_input}.{}", base64url(&signature)))
    }

    /// The public key (DER `RSAPublicKey`), to check a signature in tests.
    pub fn public_key(&self) -> &[u8] {
        self.key.public().as_ref()
    }

    /// A bearer token acting as `sub` (or as the service account itself when `sub` is empty)
    /// with `scope`, from the cache while it has more than a
    /// minute left.
    pub fn token(&self, sub: &str, scope: &str) -> Result<String, AuthError> {
        let key = (sub.to_owned(), scope.to_owned());
        if let Some((token, until)) = self.cache().get(&key)
            && Instant::now() + Duration::from_secs(60) < *until
        {
            return Ok(token.clone());
        }
        let assertion = self.assertion(sub, scope, Timestamp::now())?;
        let form = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(self.timeout)).http_status_as_error(false).build().into();
        let mut response = agent
            .post(&self.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(form)
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null);
        // The signed assertion is a credential for its hour: an endpoint quoting it back must
        // not put it into a message.
        let text = |f: &str| {
            let said = body.get(f).and_then(Value::as_str).unwrap_or_default();
            crate::scrub(said, &[&assertion])
        };
        match (status, text("error").as_str()) {
            (200, _) => {
                let token = text("access_token");
                if token.is_empty() {
                    return Err(AuthError::Unavailable("the token response has no access_token".to_owned()));
                }
                let lifetime = body.get("expires_in").and_then(Value::as_u64).unwrap_or(3_600);
                self.cache().insert(key, (token.clone(), Instant::now() + Duration::from_secs(lifetime)));
                Ok(token)
            }
            (_, "unauthorized_client") => Err(AuthError::Refused(format!(
                "Google refused to let {} act as {sub} with {scope}: domain-wide delegation for these scopes is not \
                 granted to this client in the Admin console (it can take up to 24 h to apply)",
                self.email
            ))),
            (_, "invalid_grant") => Err(AuthError::Refused(format!(
                "Google refused the grant for {sub}: {} (is it a mailbox of the domain, and is the machine clock right?)",
                text("error_description")
            ))),
            (429 | 500..=599, _) => Err(AuthError::Unavailable(format!("HTTP {status}"))),
            (_, error) => Err(AuthError::Refused(format!(
                "token request answered HTTP {status}: {error} {}",
                text("error_description")
            ))),
        }
    }

    /// Forgets a token Google no longer accepts (after a 401).
    pub fn invalidate(&self, sub: &str, scope: &str) {
        self.cache().remove(&(sub.to_owned(), scope.to_owned()));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (String, Instant)>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
