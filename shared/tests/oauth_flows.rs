//! The Salesforce client's OAuth flows against the emulator's token endpoint: JWT bearer (RS256,
//! the app's key), refresh token, and what a grant that fails for good looks like.

use anyhow::Result;
use devstack::salesforce::{self as sf, SalesforceEmulator};
use shared::adapters::oauth::Credentials;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::SalesforceSettings;
use shared::ports::{ApiError, SalesforceApi, SfSelect};
use shared::secret::Secret;

/// A test key, used nowhere else.
const KEY: &str = include_str!("../../devstack/fixtures/jwt-test-key.pem");
const USER: &str = "integration@sync.example";

/// The certificate the Connected App holds for `KEY`.
fn certificate() -> Vec<u8> {
    sf::certificate_of(KEY).expect("the fixture is a PKCS#8 RSA key")
}

fn client(emu: &SalesforceEmulator, credentials: Credentials) -> SalesforceClient {
    let settings = SalesforceSettings {
        login_url: emu.url(),
        client_id: emu.client_id(),
        api_version: "62.0".into(),
        auth: Default::default(),
    };
    SalesforceClient::with_credentials(settings, credentials)
}

async fn read(client: &SalesforceClient) -> Result<usize, ApiError> {
    let select = SfSelect {
        fields: vec!["Id".into()],
        ..SfSelect::from_object("Account")
    };
    client.select(&select).await.map(|rows| rows.len())
}

#[tokio::test]
async fn jwt_bearer_signs_in_with_the_apps_key() -> Result<()> {
    let emu = SalesforceEmulator::start(sf::Options {
        jwt_public_key: Some(certificate()),
        ..sf::Options::default()
    })
    .await?;
    let jwt = |username: &str| Credentials::JwtBearer {
        username: username.into(),
        private_key_pem: Secret::new(KEY),
    };
    assert_eq!(read(&client(&emu, jwt(USER))).await?, 0);
    assert_eq!(emu.stats().token_requests, 1);

    let err = read(&client(&emu, jwt("someone@else.example")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::Auth { message, .. } if message.contains("invalid_grant: user hasn't approved this consumer")),
        "{err}"
    );
    let other_key = sf::Options::default();
    let unsigned = SalesforceEmulator::start(other_key).await?;
    let err = read(&client(&unsigned, jwt(USER))).await.unwrap_err();
    assert!(matches!(err, ApiError::Auth { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_refresh_token_signs_in_until_it_is_revoked() -> Result<()> {
    let emu = SalesforceEmulator::start(sf::Options {
        refresh_token: Some("5Aep861-refresh".into()),
        ..sf::Options::default()
    })
    .await?;
    let credentials = Credentials::RefreshToken {
        client_secret: Secret::new(emu.client_secret()),
        refresh_token: Secret::new("5Aep861-refresh"),
    };
    let client = client(&emu, credentials);
    assert_eq!(read(&client).await?, 0);
    // The session expires and an admin revokes the app's token: the client asks for a new
    // session once (after the 401), is refused for good, and says so.
    emu.expire_tokens();
    emu.revoke_refresh_token();
    let err = read(&client).await.unwrap_err();
    assert!(
        matches!(&err, ApiError::Auth { message, .. } if message.contains("invalid_grant: expired access/refresh token")),
        "{err}"
    );
    assert_eq!(
        emu.stats().token_requests,
        2,
        "one renewal, not a retry loop"
    );
    Ok(())
}
