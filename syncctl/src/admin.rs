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

const SECRET_NAMES: [&str; 5] = [
    names::GAINSIGHT_ACCESS_KEY,
    names::SALESFORCE_CLIENT_SECRET,
    names::SALESFORCE_JWT_KEY,
    names::SALESFORCE_REFRESH_TOKEN,
    names::WEBHOOK_SECRET,
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
    env.clients
        .secrets(&env.resources)
        .put(name, &Secret::new(value))
        .await?;
    say!(
        "stored {name} encrypted with {}; the functions read it at their next cold start",
        env.resources.kms_key_id
    )?;
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
