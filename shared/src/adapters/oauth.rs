//! How the Salesforce client gets its sessions: the OAuth 2.0 grant the Connected App is set up
//! for (client credentials, JWT bearer, or a refresh token), and the JWT bearer assertion, signed
//! RS256 with the app's private key.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::http::transport;
use crate::config::AuthFlow;
use crate::ports::{ApiError, Secrets, SecretsError};
use crate::secret::{names, Secret};

const SYSTEM: &str = "Salesforce";

/// The grant the Connected App uses, with its secrets (decrypted from KMS at cold start).
#[derive(PartialEq, Eq)]
pub enum Credentials {
    /// `grant_type=client_credentials`: the app runs as its configured Run As user.
    ClientCredentials { client_secret: Secret },
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`: an assertion for `username`,
    /// signed with the app's private key (PEM, PKCS#8 or PKCS#1).
    JwtBearer {
        username: String,
        private_key_pem: Secret,
    },
    /// `grant_type=refresh_token`: a refresh token issued to the app by a user's consent.
    RefreshToken {
        client_secret: Secret,
        refresh_token: Secret,
    },
}

/// Where a deployment's credentials live: the flow it is configured for, and the secrets store.
pub struct CredentialSource {
    pub secrets: Arc<dyn Secrets>,
    pub flow: AuthFlow,
}

impl CredentialSource {
    /// The flow's secrets, decrypted now.
    pub async fn load(&self) -> Result<Credentials, SecretsError> {
        let get = |name: &'static str| self.secrets.get(name);
        Ok(match &self.flow {
            AuthFlow::ClientCredentials => Credentials::ClientCredentials {
                client_secret: get(names::SALESFORCE_CLIENT_SECRET).await?,
            },
            AuthFlow::JwtBearer { username } => Credentials::JwtBearer {
                username: username.clone(),
                private_key_pem: get(names::SALESFORCE_JWT_KEY).await?,
            },
            AuthFlow::RefreshToken => Credentials::RefreshToken {
                client_secret: get(names::SALESFORCE_CLIENT_SECRET).await?,
                refresh_token: get(names::SALESFORCE_REFRESH_TOKEN).await?,
            },
        })
    }
}

/// What the token endpoint grants.
#[derive(Deserialize)]
pub(super) struct Granted {
    pub access_token: String,
    pub instance_url: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Asks `login`'s token endpoint for a session. A refusal is an authentication error naming
/// Salesforce's `error: error_description` (never retried; it deactivates the job); a 5xx is
/// "unavailable", a 429 a rate limit.
pub(super) async fn request_token(
    http: &reqwest::Client,
    login: &str,
    client_id: &str,
    credentials: &Credentials,
) -> Result<Granted, ApiError> {
    let now_s = crate::time::now_ms() / 1000;
    let form = credentials
        .form(client_id, login, now_s)
        .map_err(|message| ApiError::Auth {
            system: SYSTEM,
            message,
        })?;
    let response = http
        .post(format!("{login}/services/oauth2/token"))
        .form(&form)
        .send()
        .await
        .map_err(|e| transport(SYSTEM, e))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| transport(SYSTEM, e))?;
    if status != 200 {
        let detail = serde_json::from_slice::<OAuthError>(&body)
            .map(|e| format!("{}: {}", e.error, e.error_description))
            .unwrap_or_else(|_| super::http::body_excerpt(&body));
        return Err(match status {
            500..=599 => ApiError::Unavailable {
                system: SYSTEM,
                status,
                message: detail,
                retry_after_ms: None,
            },
            // Too many logins at once is no refusal of the credentials.
            429 => ApiError::RateLimited {
                system: SYSTEM,
                status,
                message: detail,
                retry_after_ms: None,
            },
            _ => ApiError::Auth {
                system: SYSTEM,
                message: format!("token request refused (HTTP {status}): {detail}"),
            },
        });
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::Protocol {
        system: SYSTEM,
        message: format!("token response: {e}"),
    })
}

/// How long a JWT bearer assertion is valid (Salesforce accepts a few minutes).
const ASSERTION_LIFETIME_S: i64 = 180;

impl Credentials {
    /// The token request's form fields for app `client_id` at login host `audience`.
    pub fn form(
        &self,
        client_id: &str,
        audience: &str,
        now_s: i64,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let id = ("client_id", client_id.to_string());
        Ok(match self {
            Credentials::ClientCredentials { client_secret } => vec![
                ("grant_type", "client_credentials".into()),
                id,
                ("client_secret", client_secret.expose().to_string()),
            ],
            Credentials::JwtBearer {
                username,
                private_key_pem,
            } => {
                let assertion =
                    jwt_assertion(client_id, username, audience, private_key_pem, now_s)?;
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                    ),
                    ("assertion", assertion),
                ]
            }
            Credentials::RefreshToken {
                client_secret,
                refresh_token,
            } => vec![
                ("grant_type", "refresh_token".into()),
                id,
                ("client_secret", client_secret.expose().to_string()),
                ("refresh_token", refresh_token.expose().to_string()),
            ],
        })
    }
}

/// A JWT bearer assertion: `iss` the app, `sub` the user, `aud` the login host, `exp` three
/// minutes ahead, signed RS256.
pub fn jwt_assertion(
    client_id: &str,
    username: &str,
    audience: &str,
    private_key_pem: &Secret,
    now_s: i64,
) -> Result<String, String> {
    let key = rsa_key(private_key_pem)?;
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
    let claims = json!({
        "iss": client_id,
        "sub": username,
        "aud": audience.trim_end_matches('/'),
        "exp": now_s + ASSERTION_LIFETIME_S,
    });
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "the JWT private key could not sign the assertion".to_string())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The RSA key of a PEM block: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
fn rsa_key(pem: &Secret) -> Result<ring::signature::RsaKeyPair, String> {
    let text = pem.expose();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD.decode(body).map_err(|_| {
        "the JWT private key is not PEM (base64 between BEGIN and END lines)".to_string()
    })?;
    let parsed = if text.contains("BEGIN RSA PRIVATE KEY") {
        ring::signature::RsaKeyPair::from_der(&der)
    } else {
        ring::signature::RsaKeyPair::from_pkcs8(&der)
    };
    parsed.map_err(|e| format!("the JWT private key is not a usable RSA key ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../../devstack/fixtures/jwt-test-key.pem");

    #[test]
    fn an_assertion_names_app_user_and_audience_and_verifies() {
        let pem = Secret::new(KEY.to_string());
        let jwt = jwt_assertion(
            "app",
            "sync@example.com",
            "https://login.example/",
            &pem,
            1_000,
        )
        .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({"iss": "app", "sub": "sync@example.com", "aud": "https://login.example", "exp": 1_180})
        );
        let key = rsa_key(&pem).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public().as_ref().to_vec(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert!(public.verify(signed.as_bytes(), &signature).is_ok());
    }

    #[test]
    fn a_bad_key_is_named() {
        let err = jwt_assertion("a", "u", "x", &Secret::new("not a key"), 0).unwrap_err();
        assert!(err.contains("JWT private key"), "{err}");
    }
}
