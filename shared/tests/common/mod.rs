//! What the adapter tests against moto share: the deployed table, queues and key, and ledger keys.

use anyhow::Result;
use devstack::moto::LocalAws;
use shared::adapters::AwsClients;
use shared::config::AwsResources;
use shared::domain::LedgerKey;

/// A ledger key from its text (`sf:` for a Salesforce-only pair).
#[allow(dead_code)] // not every test crate reads ledger keys
pub fn k(key: &str) -> LedgerKey {
    key.parse().expect("a ledger key")
}

/// moto with `infra/template.yaml` deployed, the clients and the resources' names.
pub async fn setup() -> Result<(LocalAws, AwsClients, AwsResources)> {
    let aws = LocalAws::start().await?;
    let resources = AwsResources {
        table_name: aws.table_name()?.to_string(),
        kms_key_id: aws.kms_key_id()?.to_string(),
        changes_queue_url: aws.queue_url("ChangesQueue").await?,
        writes_queue_url: aws.queue_url("WritesQueue").await?,
        run_ttl_days: shared::config::DEFAULT_RUN_TTL_DAYS,
    };
    let clients = AwsClients::new(&aws.sdk).with_sqs(&aws.sqs_sdk);
    Ok((aws, clients, resources))
}
