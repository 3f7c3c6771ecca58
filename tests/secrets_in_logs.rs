//! Secrets never reach the logs: the demo's flows run on the local stack with every function
//! logging JSON at trace (the format the functions use in Lambda) into a buffer, libraries
//! included, and no secret value, bearer token or access-key header may appear in it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use sync_tests::{
    Options, Stack, GAINSIGHT_ACCESS_KEY, OUTBOUND_TOKEN, RESYNC_FUNCTION, WEBHOOK_SECRET,
};

const WAIT: Duration = Duration::from_secs(60);

/// Everything logged, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut all) = self.0.lock() {
            all.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        let all = self.0.lock().map(|a| a.clone()).unwrap_or_default();
        String::from_utf8_lossy(&all).into_owned()
    }
}

/// Both directions, a refusal, a lookup, an Outbound Message, a resync.
async fn flows(stack: &Stack) -> Result<()> {
    let ids = stack
        .create_companies(vec![
            json!({"Name": "Log Co", "Arr": 5}),
            json!({"Name": "Bad Co", "Arr": 1, "Industry": "Nope"}),
        ])
        .await?;
    stack
        .gainsight_insert(
            "Person",
            vec![json!({"FirstName": "L", "LastName": "Og", "Email": "l@log.test", "CompanyId": ids[0]})],
        )
        .await?;
    stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.accounts_for(&ids[0]).pop())
        })
        .await?;
    let record = json!({"Name": "From SF"}).as_object().cloned();
    stack
        .salesforce
        .seed("Account", vec![record.unwrap_or_default()]);
    stack.drained(WAIT).await?;
    let url = format!(
        "{}/2015-03-31/functions/{RESYNC_FUNCTION}/invocations",
        stack.lambda_url()
    );
    let event = json!({"job": "company_account", "status": "error"});
    reqwest::Client::new().post(url).json(&event).send().await?;
    stack.drained(WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_appears_in_the_logs_at_trace() -> Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        // The most a deployment can ask for (`LogLevel=trace`), libraries included.
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .init();
    let stack = Stack::start(Options::default()).await?;
    flows(&stack).await?;
    let client_secret = stack.salesforce.client_secret();
    stack.stop().await;
    let logs = captured.text();
    assert!(
        logs.lines().count() > 100,
        "the functions logged at trace: {} lines",
        logs.lines().count()
    );
    for (name, secret) in [
        ("the Gainsight access key", GAINSIGHT_ACCESS_KEY),
        ("the webhook secret", WEBHOOK_SECRET),
        ("the Outbound Message token", OUTBOUND_TOKEN),
        ("the Salesforce client secret", client_secret.as_str()),
        ("a bearer token", "Bearer "),
        ("an Accesskey header", "accesskey: "),
    ] {
        let hits: Vec<&str> = logs
            .lines()
            .filter(|l| l.to_lowercase().contains(&secret.to_lowercase()))
            .take(3)
            .collect();
        assert!(hits.is_empty(), "{name} is in the logs: {hits:?}");
    }
    Ok(())
}
