//! `secrets put` and `jobs validate`: what an admin does before and after deploying.

use std::io::Read;
use std::path::Path;

use shared::adapters::gainsight::GainsightClient;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::{required, GainsightSettings, SalesforceSettings};
use shared::domain::Jobs;
use shared::ports::{Secrets, SecretsError};
use shared::secret::{names, Secret, Versions, DEFAULT_OVERLAP_MS};
use shared::signature::MIN_TOKEN_CHARS;

use crate::env::{usage, Env};

/// Reads the value from standard input (a trailing newline is not part of it), encrypts it with
/// the KMS key and stores the ciphertext. Never prints the value. A checked secret replaced this
/// way keeps its previous value accepted for the default overlap.
pub async fn put(env: &Env, name: &str) -> anyhow::Result<()> {
    let value = new_value(env, name)?;
    let secrets = env.clients.secrets(&env.resources);
    store(&secrets, (name, &value), DEFAULT_OVERLAP_MS, env).await
}

/// Like `put`, for a secret already stored, with the previous value of a checked secret
/// accepted for `overlap` (`90m`, `24h`, `7d`).
pub async fn rotate(env: &Env, name: &str, overlap: &str) -> anyhow::Result<()> {
    let overlap_ms = crate::env::parse_ago(overlap).ok_or_else(|| {
        usage(format!(
            "--overlap {overlap:?} is not a duration such as 0m, 90m, 24h or 7d"
        ))
    })?;
    let value = new_value(env, name)?;
    let secrets = env.clients.secrets(&env.resources);
    match secrets.get(name).await {
        Ok(_) => {}
        Err(SecretsError::NotFound(_)) => {
            return Err(usage(format!(
                "nothing is stored under {name} to rotate: store the first value with `syncctl secrets put {name}`"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    store(&secrets, (name, &value), overlap_ms, env).await
}

/// The value on standard input for secret `name`, checked.
fn new_value(env: &Env, name: &str) -> anyhow::Result<String> {
    if !names::ALL.contains(&name) {
        return Err(usage(format!(
            "unknown secret {name:?}; the functions read {}",
            names::ALL.join(", ")
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
    if name == names::SALESFORCE_OUTBOUND_TOKEN
        && (value.chars().count() < MIN_TOKEN_CHARS
            || value.chars().any(|c| !c.is_ascii_alphanumeric()))
    {
        return Err(usage(format!(
            "the token must be at least {MIN_TOKEN_CHARS} letters and digits (it goes in a URL and must not be guessed), e.g. `openssl rand -hex 32`"
        )));
    }
    Ok(value)
}

/// Stores `value` under `name`: a checked secret as its versions, the value it replaces accepted
/// `overlap_ms` more; a credential as it is.
async fn store(
    secrets: &dyn Secrets,
    (name, value): (&str, &str),
    overlap_ms: i64,
    env: &Env,
) -> anyhow::Result<()> {
    let key = &env.resources.kms_key_id;
    if !names::CHECKED.contains(&name) {
        secrets.put(name, &Secret::new(value)).await?;
        say!("stored {name} encrypted with {key}; the functions use it from their next cold start, or at once when the vendor refuses the value they hold: revoke the old value at the vendor now")?;
        // New credentials are the re-authorization a deactivated job waits for.
        return crate::job_states::reactivate_deactivated(env).await;
    }
    let old = match secrets.get(name).await {
        Ok(secret) => Some(Versions::from_secret(&secret)),
        Err(SecretsError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let now = shared::time::now_ms();
    let versions = Versions::rotated(old.as_ref(), value, now, overlap_ms);
    secrets.put(name, &versions.to_secret()).await?;
    say!("stored {name} encrypted with {key}; the webhook accepts it within 10 seconds")?;
    match versions.previous_until(now) {
        Some(until) => say!(
            "the previous value is accepted until {}: change it where {} keeps it before then",
            shared::time::rfc3339(until),
            caller(name)
        )?,
        None if old.as_ref().and_then(|o| o.accepted(now).next()) == Some(value) => {
            say!("the value is the one already stored: nothing else changed")?
        }
        None if old.is_some() => say!("the previous value is no longer accepted (warm functions stop accepting it within 5 minutes)")?,
        None => {}
    }
    Ok(())
}

/// Who presents a checked secret to the webhook.
fn caller(name: &str) -> &'static str {
    if name == names::WEBHOOK_SECRET {
        "Gainsight (the rule or program that signs the webhook calls)"
    } else {
        "Salesforce (the Outbound Message endpoint URLs)"
    }
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
