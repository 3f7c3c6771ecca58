//! The Salesforce emulator driven by real, maintained client libraries: simple-salesforce and
//! requests-oauthlib from PyPI, installed in the project's `.venv` by `make venv` (which
//! `make test` runs first). The
//! suite is `devstack/test_salesforce_client.py`; this test starts an emulator and runs it.

use std::path::Path;
use std::process::Command;

use devstack::salesforce::{Options, SalesforceEmulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_works_against_the_emulator() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    anyhow::ensure!(
        python.exists(),
        "{} is missing: run `make venv` (make test does) to install simple-salesforce",
        python.display()
    );
    let key_file = root.join("devstack/fixtures/jwt-test-key.pem");
    let key = std::fs::read_to_string(&key_file)?;
    let options = Options {
        jwt_public_key: devstack::salesforce::certificate_of(&key),
        refresh_token: Some("5Aep861emulator.refresh.token".into()),
        ..Options::default()
    };
    let (username, refresh_token) = (options.username.clone(), options.refresh_token.clone());
    let sf = SalesforceEmulator::start(options).await?;
    let suite = root.join("devstack/test_salesforce_client.py");
    // Every case of the suite must run: a case skipped or not collected is a failure.
    let cases = std::fs::read_to_string(&suite)?
        .matches("    def test_")
        .count();
    let (url, id, secret) = (sf.url(), sf.client_id(), sf.client_secret());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(suite)
            .env("SF_URL", url)
            .env("SF_CLIENT_ID", id)
            .env("SF_CLIENT_SECRET", secret)
            .env("SF_USERNAME", username)
            .env("SF_JWT_KEY", key_file)
            .env("SF_REFRESH_TOKEN", refresh_token.unwrap_or_default())
            .output()
    })
    .await??;
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    anyhow::ensure!(
        out.status.success(),
        "the real-client suite failed:\n{report}"
    );
    anyhow::ensure!(
        report.contains(&format!("Ran {cases} tests")),
        "not every case ran:\n{report}"
    );
    Ok(())
}
