//! `secrets put` and `jobs validate`: what an admin does before and after deploying.

use std::io::Read;
use std::path::Path;

use shared::adapters::gainsight::GainsightClient;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::{required, GainsightSettings, SalesforceSettings};
use shared::domain::Jobs;
use shared::ports::Secrets;
use shared::secret::{names, Secret};

use crate::env::{usage, Env};

const SECRET_NAMES: [&str; 6] = [
    names::GAINSIGHT_ACCESS_KEY,
    names::SALESFORCE_CLIENT_SECRET,
    names::SALESFORCE_JWT_KEY,
    names::SALESFORCE_REFRESH_TOKEN,
    names::WEBHOOK_SECRET,
    names::SALESFORCE_OUTBOUND_TOKEN,
];

/// Reads the value from standard input (a trailing newline is not part of it), encrypts it with
/// the KMS key and stores the ciphertext. Never prints the value.
pub async fn put(env: &Env, name: &str) -> anyhow::Result<()> {
    if !SECRET_NAMES.contains(&name) {
        return Err(usage(format!(
            "unknown secret {name:?}; the functions read {}",
            SECRET_NAMES.join(", ")
        )));
    }
    if env.resources.kms_key_id.is_empty() {
        return Err(usage(
            "KMS_KEY_ID is not set: the secret would have no key to be encrypted with",
        ));
    }
    let mut value = String::new();
    std::io::stdin().read_to_string(&mut value)?;
    let value = value.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(usage(format!(
            "nothing on standard input: pipe the value in, e.g. `printf %s \"$VALUE\" | syncctl secrets put {name}`"
        )));
    }
    let secrets = env.clients.secrets(&env.resources);
    if name == names::SALESFORCE_OUTBOUND_TOKEN {
        return put_outbound_token(&secrets, &value, &env.resources.kms_key_id).await;
    }
    secrets.put(name, &Secret::new(value)).await?;
    say!(
        "stored {name} encrypted with {}; the functions read it at their next cold start",
        env.resources.kms_key_id
    )?;
    Ok(())
}

/// Stores `token` as the Outbound Message token, the one it replaces accepted 24 hours more.
async fn put_outbound_token(secrets: &dyn Secrets, token: &str, key: &str) -> anyhow::Result<()> {
    use shared::signature::{OutboundTokens, MIN_TOKEN_CHARS, TOKEN_OVERLAP_MS};
    if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(|c| !c.is_ascii_alphanumeric())
    {
        return Err(usage(format!(
            "the token must be at least {MIN_TOKEN_CHARS} letters and digits (it goes in a URL and must not be guessed), e.g. `openssl rand -hex 32`"
        )));
    }
    let name = names::SALESFORCE_OUTBOUND_TOKEN;
    let old = match secrets.get(name).await {
        Ok(secret) => Some(OutboundTokens::from_secret(&secret)),
        Err(shared::ports::SecretsError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let now = shared::time::now_ms();
    let tokens = OutboundTokens::rotated(old.as_ref(), token, now, TOKEN_OVERLAP_MS);
    secrets.put(name, &tokens.to_secret()).await?;
    say!("stored {name} encrypted with {key}; the webhook accepts it within a minute")?;
    if old.is_some() {
        say!("the previous token is accepted until {}: change the Outbound Message endpoint URLs before then", shared::time::rfc3339(now + TOKEN_OVERLAP_MS))?;
    }
    Ok(())
}

/// Checks the job files in `dir`, and with `describe` against both live describes.
pub async fn validate(dir: &Path, describe: bool) -> anyhow::Result<()> {
    let jobs = Jobs::load_dir(dir).map_err(|e| usage(format!("{e:#}")))?;
    if describe {
        let salesforce = SalesforceClient::new(
            SalesforceSettings::from_env()?,
            Secret::new(required("SALESFORCE_CLIENT_SECRET")?),
        );
        let gainsight = GainsightClient::new(
            GainsightSettings::from_env()?,
            Secret::new(required("GAINSIGHT_ACCESS_KEY")?),
        );
        shared::resolve::load_schemas(&jobs, &salesforce, &gainsight)
            .await
            .map_err(|e| usage(e.to_string()))?;
    }
    for job in jobs.iter() {
        say!(
            "ok: {}: {} ({} <-> {}): {} identifiers, {} direct and {} derived real-time fields{}",
            job.file.display(),
            job.name,
            job.gainsight.object,
            job.salesforce.object,
            job.identifiers.len(),
            job.fields.len(),
            job.derived.len(),
            if describe {
                ", matches both describes"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}
