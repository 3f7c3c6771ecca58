//! Running the real `syncctl` binary against a local stack, for the end-to-end tests.
#![allow(dead_code)] // each test file uses its own share of these

use std::process::Output;

use anyhow::{ensure, Result};
use serde_json::Value;
use sync_tests::Stack;

/// Runs syncctl against `stack` with `stdin`, off the async runtime.
pub async fn syncctl_in(stack: &Stack, args: &[&str], stdin: &str) -> Output {
    run(stack.syncctl_env(), args, stdin).await
}

/// Runs syncctl with only the AWS endpoint and the API settings in its environment, as an
/// operator who names the deployed stack (`--stack`) instead of its tables and functions.
pub async fn syncctl_by_stack(stack: &Stack, args: &[&str]) -> Output {
    const FROM_THE_STACK: [&str; 6] = [
        "TABLE_NAME",
        "KMS_KEY_ID",
        "CHANGES_QUEUE_URL",
        "WRITES_QUEUE_URL",
        "RESYNC_FUNCTION",
        "POLLER_FUNCTION",
    ];
    let mut env = stack.syncctl_env();
    env.retain(|(k, _)| !FROM_THE_STACK.contains(k));
    run(env, args, "").await
}

async fn run(env: Vec<(&'static str, String)>, args: &[&str], stdin: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_syncctl"))
            .args(&args)
            .envs(env)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("syncctl starts");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        child.wait_with_output().expect("syncctl runs")
    })
    .await
    .expect("syncctl finished")
}

pub async fn syncctl(stack: &Stack, args: &[&str]) -> Output {
    syncctl_in(stack, args, "").await
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// syncctl's JSON answer, checking it succeeded.
pub async fn json_of(stack: &Stack, args: &[&str]) -> Result<Value> {
    let out = syncctl(stack, args).await;
    ensure!(out.status.success(), "{args:?}: {}", stderr(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A small org with years of data, for the first-load tests: one pair already in the ledger
/// (imported), a Company naming its Account by Id, an Account carrying a Company's GSID under
/// another name, two Companies claiming one Account, and one record alone on each side.
pub struct Org {
    /// Linked Co, By Id Co, Claimed Twice, Only In Salesforce.
    pub accounts: Vec<String>,
    /// Linked Co, By Id Co, Claim A, Claim B, Only In Gainsight, Carried Co.
    pub companies: Vec<String>,
    /// The Account carrying Carried Co's GSID.
    pub carried: String,
    /// A directory of this test's files.
    pub dir: std::path::PathBuf,
}

pub async fn seed_org(stack: &Stack) -> Result<Org> {
    use serde_json::json;
    let accounts = stack
        .salesforce_create_quietly(
            "Account",
            vec![
                json!({"Name": "Linked Co", "Phone": "555-0100"}),
                json!({"Name": "By Id Co"}),
                json!({"Name": "Claimed Twice"}),
                json!({"Name": "Only In Salesforce"}),
            ],
        )
        .await?;
    let companies = stack
        .gainsight_insert_quietly(
            "Company",
            vec![
                json!({"Name": "Linked Co"}),
                json!({"Name": "By Id Co", "SfdcAccountId": accounts[1]}),
                json!({"Name": "Claim A", "SfdcAccountId": accounts[2]}),
                json!({"Name": "Claim B", "SfdcAccountId": accounts[2]}),
                json!({"Name": "Only In Gainsight"}),
                json!({"Name": "Carried Co"}),
            ],
        )
        .await?;
    let carried = stack
        .salesforce_create_quietly(
            "Account",
            vec![json!({"Name": "Carried Inc", "Gainsight_Company_Id__c": companies[5]})],
        )
        .await?;
    let dir = std::env::temp_dir().join(format!(
        "syncctl-load-{}-{}",
        std::process::id(),
        companies[0]
    ));
    std::fs::create_dir_all(&dir)?;
    let links = dir.join("links.csv");
    let text = format!(
        "gainsight_id,salesforce_id\n{},{}\n",
        companies[0], accounts[0]
    );
    std::fs::write(&links, text)?;
    let args = [
        "import",
        links.to_str().unwrap_or_default(),
        "--job",
        "company_account",
        "--no-resync",
    ];
    let imported = syncctl(stack, &args).await;
    ensure!(imported.status.success(), "{}", stderr(&imported));
    stack.drained(std::time::Duration::from_secs(60)).await?;
    Ok(Org {
        accounts,
        companies,
        carried: carried[0].clone(),
        dir,
    })
}
