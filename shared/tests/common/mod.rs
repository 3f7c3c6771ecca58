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

/// A Salesforce upsert of load `run-1` for Company `gsid`, changed at `at`.
#[allow(dead_code)] // not every test crate stages loads
pub fn load_write(gsid: &str, at: i64) -> shared::domain::WriteCommand {
    let body = serde_json::json!({
        "job": "company_account", "target": "salesforce", "object": "Account",
        "key": {"by": "external_id", "field": "Gainsight_Company_Id__c", "value": gsid},
        "mode": "upsert", "fields": {"Name": format!("Co {gsid} @{at}")},
        "ledger_key": gsid, "source": "gainsight", "event_id": format!("e-{gsid}-{at}"),
        "source_changed_at_ms": at, "received_at_ms": at, "load": "run-1",
    });
    serde_json::from_value(body).expect("a write command")
}
