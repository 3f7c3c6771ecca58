//! `syncctl`: the admin's command line. `validate-jobs` checks job files before they are
//! deployed: syntax, limits and one real-time job per object offline, and with `--describe` also
//! against the live Salesforce and Gainsight describes, exactly as the mapper does at cold start.

use std::path::PathBuf;
use std::process::ExitCode;

use shared::adapters::gainsight::GainsightClient;
use shared::adapters::salesforce::SalesforceClient;
use shared::config::{required, GainsightSettings, SalesforceSettings};
use shared::domain::Jobs;
use shared::secret::Secret;

const USAGE: &str = "usage: syncctl validate-jobs [DIR] [--describe]

  DIR         job files (*.yaml), default infra/jobs
  --describe  also check every job against the live describes; reads SALESFORCE_LOGIN_URL,
              SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_API_VERSION (optional),
              GAINSIGHT_BASE_URL and GAINSIGHT_ACCESS_KEY from the environment";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate-jobs") => match validate(&args[1..]).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("invalid: {e:#}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn validate(args: &[String]) -> anyhow::Result<()> {
    let describe = args.iter().any(|a| a == "--describe");
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("infra/jobs"));
    let jobs = Jobs::load_dir(&dir)?;
    if describe {
        let salesforce = SalesforceClient::new(
            SalesforceSettings::from_env()?,
            Secret::new(required("SALESFORCE_CLIENT_SECRET")?),
        );
        let gainsight = GainsightClient::new(
            GainsightSettings::from_env()?,
            Secret::new(required("GAINSIGHT_ACCESS_KEY")?),
        );
        shared::resolve::load_schemas(&jobs, &salesforce, &gainsight).await?;
    }
    for job in jobs.iter() {
        println!(
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
        );
    }
    Ok(())
}
