//! What each function called on the local stack stays within what `infra/permissions.yaml` lists
//! for it (the list the template's IAM policies are checked against by
//! `devstack/test_deployment.py`): a code change that needs a new permission fails here before a
//! deployment fails in AWS. Each function signs its requests with its own access key id, and the
//! local AWS counts requests per caller; with its audit on it also records each request's
//! resource (table, index, queue) and each transaction item's own action, which are checked
//! against the function's policy statements in `infra/template.yaml`, and the secrets each
//! function decrypted and the partition keys the webhook touched, checked against
//! `infra/scopes.yaml`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use sync_tests::{Options, Stack, POLLER_FUNCTION, RESYNC_FUNCTION};

const WAIT: Duration = Duration::from_secs(60);

/// The IAM actions `infra/permissions.yaml` lists per function.
fn declared() -> Result<BTreeMap<String, BTreeSet<String>>> {
    let path = devstack::repo_root().join("infra").join("permissions.yaml");
    let text = std::fs::read_to_string(path)?;
    let listed: BTreeMap<String, BTreeMap<String, String>> = serde_yaml_ng::from_str(&text)?;
    Ok(listed
        .into_iter()
        .map(|(function, actions)| (function, actions.into_keys().collect()))
        .collect())
}

/// The IAM action that authorises an API call (a batch send is authorised as SendMessage).
/// None for a transaction: IAM authorises each of its items as its own put, update, delete or
/// condition check, which `check_audit` checks item by item against the function's policy.
fn iam_action(call: &str) -> Option<&str> {
    match call {
        "dynamodb:TransactWriteItems" => None,
        "sqs:SendMessageBatch" => Some("sqs:SendMessage"),
        other => Some(other),
    }
}

async fn invoke(stack: &Stack, function: &str, event: serde_json::Value) -> Result<()> {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        stack.lambda_url()
    );
    let resp = reqwest::Client::new().post(url).json(&event).send().await?;
    anyhow::ensure!(
        resp.headers().get("x-amz-function-error").is_none(),
        "{function} failed: {}",
        resp.text().await?
    );
    Ok(())
}

/// Every function at work: a refusal, a lookup, a fix, a Salesforce-born record, a resync, a
/// poll and a first load.
async fn exercise(stack: &Stack) -> Result<()> {
    let company = stack
        .create_companies(vec![
            json!({"Name": "Perm Co", "Arr": 1, "Industry": "Nope"}),
        ])
        .await?
        .remove(0);
    stack
        .gainsight_insert(
            "Person",
            vec![json!({"FirstName": "P", "LastName": "Erm", "Email": "p@perm.test", "CompanyId": company})],
        )
        .await?;
    stack
        .eventually(WAIT, "the refusal recorded", || async {
            Ok(stack.ledger(&company).await?.filter(|l| l.error))
        })
        .await?;
    stack
        .gainsight_update(
            "Company",
            vec![json!({"Gsid": company, "Industry": "Banking"})],
        )
        .await?;
    stack
        .eventually(WAIT, "the Account", || async {
            Ok(stack.accounts_for(&company).pop())
        })
        .await?;
    let record = json!({"Name": "Born In SF"}).as_object().cloned();
    stack
        .salesforce
        .seed("Account", vec![record.unwrap_or_default()]);
    stack.drained(WAIT).await?;
    let errors = json!({"job": "person_contact", "status": "error"});
    invoke(stack, RESYNC_FUNCTION, errors).await?;
    invoke(stack, POLLER_FUNCTION, json!({"job": "company_account"})).await?;
    stack.drained(WAIT).await?;
    // A first load: planned, then its one chunk applied (a link and a write).
    let company = json!({"Name": "Loaded Co"}).as_object().cloned();
    let gsid = stack
        .gainsight
        .seed_quietly("Company", vec![company.unwrap_or_default()]);
    let account = json!({"Name": "Loaded Inc", "Gainsight_Company_Id__c": gsid[0]})
        .as_object()
        .cloned();
    stack
        .salesforce
        .seed_quietly("Account", vec![account.unwrap_or_default()]);
    let only = json!({"Name": "Only Here"}).as_object().cloned();
    stack
        .gainsight
        .seed_quietly("Company", vec![only.unwrap_or_default()]);
    let load = json!({"job": "company_account", "load": "run"});
    invoke(stack, RESYNC_FUNCTION, load.clone()).await?;
    invoke(stack, RESYNC_FUNCTION, load).await?;
    stack.drained(WAIT).await
}

/// What `infra/scopes.yaml` lets a function reach within its actions (the IAM conditions of
/// its policy): the secrets it may decrypt, and the partition keys it may touch when limited.
#[derive(serde::Deserialize)]
struct Scope {
    secrets: Vec<String>,
    #[serde(default)]
    table_keys: Option<Vec<String>>,
}

fn scopes() -> Result<BTreeMap<String, Scope>> {
    let path = devstack::repo_root().join("infra").join("scopes.yaml");
    Ok(serde_yaml_ng::from_str(&std::fs::read_to_string(path)?)?)
}

/// Each function decrypted only the secrets its policy's encryption-context condition names,
/// and a function limited by leading keys touched only items under them (`EVENT#*` matching a
/// key of kind `EVENT#`).
fn check_scopes(reached: &BTreeMap<String, BTreeSet<String>>) -> Result<()> {
    for (function, scope) in scopes()? {
        let got = reached.get(&function).cloned().unwrap_or_default();
        let secrets: Vec<&str> = got
            .iter()
            .filter_map(|r| r.strip_prefix("secret="))
            .collect();
        anyhow::ensure!(
            !secrets.is_empty(),
            "{function} decrypted no secret: {reached:?}"
        );
        for secret in &secrets {
            anyhow::ensure!(
                scope.secrets.iter().any(|s| s == secret),
                "{function} decrypted {secret}, which infra/scopes.yaml (and so its IAM policy) does not let it"
            );
        }
        let Some(keys) = scope.table_keys else {
            continue;
        };
        let kinds: Vec<&String> = got.iter().filter(|r| !r.starts_with("secret=")).collect();
        anyhow::ensure!(!kinds.is_empty(), "{function} touched no item: {reached:?}");
        for kind in kinds {
            let allowed = keys.iter().any(|k| match k.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => k == kind,
            });
            anyhow::ensure!(
                allowed,
                "{function} touched items under {kind}, which its leading-keys condition in infra/scopes.yaml does not allow"
            );
        }
    }
    Ok(())
}

/// One statement of a function's policy: its actions, and its resources as the names the
/// template's references resolve to on this stack (a table, `table/index/*`, a queue's name).
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
}

/// A policy resource as a name on this stack: `!GetAtt X.Arn` is X's physical name (a queue's
/// name), `!Sub "${X.Arn}/index/*"` the same with its suffix.
fn resolve(stack: &Stack, value: &serde_yaml_ng::Value) -> String {
    use serde_yaml_ng::Value;
    let physical = |logical: &str| {
        let deployment = &stack.aws.deployment;
        (deployment.queue_name(logical).ok())
            .or_else(|| deployment.physical_id(logical).ok())
            .unwrap_or(logical)
            .to_string()
    };
    match value {
        Value::Tagged(tagged) => {
            let text = tagged.value.as_str().unwrap_or_default();
            if tagged.tag == "GetAtt" {
                physical(text.trim_end_matches(".Arn"))
            } else {
                // `!Sub`: each `${X.Arn}` by X's name.
                let mut out = text.to_string();
                while let Some(start) = out.find("${") {
                    let end = out[start..].find('}').map_or(out.len(), |e| start + e);
                    let logical = out[start + 2..end].trim_end_matches(".Arn").to_string();
                    out.replace_range(start..=end.min(out.len() - 1), &physical(&logical));
                }
                out
            }
        }
        other => other.as_str().unwrap_or("*").to_string(),
    }
}

/// Each function's policy statements, read from `infra/template.yaml`.
fn policies(stack: &Stack) -> Result<BTreeMap<String, Vec<Statement>>> {
    use serde_yaml_ng::Value;
    let path = devstack::repo_root().join("infra").join("template.yaml");
    let template: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path)?)?;
    let list = |v: &Value| match v {
        Value::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut out = BTreeMap::new();
    let resources = template["Resources"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let mut statements = Vec::new();
        for policy in list(&resource["Properties"]["Policies"]) {
            for statement in list(&policy["Statement"]) {
                let actions = list(&statement["Action"])
                    .iter()
                    .filter_map(|a| a.as_str().map(String::from))
                    .collect();
                let resources = list(&statement["Resource"])
                    .iter()
                    .map(|r| resolve(stack, r))
                    .collect();
                statements.push(Statement { actions, resources });
            }
        }
        out.insert(name.as_str().unwrap_or_default().to_string(), statements);
    }
    Ok(out)
}

/// Whether `statements` grant `action` on `resource` (`*` when the request names none the
/// policy can be checked by, as a KMS decrypt's key is inside its ciphertext).
fn grants(statements: &[Statement], action: &str, resource: &str) -> bool {
    let action = match action {
        "sqs:SendMessageBatch" => "sqs:SendMessage",
        "sqs:DeleteMessageBatch" => "sqs:DeleteMessage",
        other => other,
    };
    statements.iter().any(|s| {
        s.actions.iter().any(|a| a == action)
            && (resource == "*"
                || s.resources.iter().any(|r| match r.strip_suffix('*') {
                    Some(prefix) => resource.starts_with(prefix),
                    None => r == resource,
                }))
    })
}

/// Every request each function made, as its action and resource (a transaction's items as
/// the actions IAM authorises them as), is granted by a statement of its policy in the
/// template: the action on that table, index or queue.
fn check_audit(stack: &Stack, audited: &BTreeMap<String, BTreeSet<String>>) -> Result<()> {
    let policies = policies(stack)?;
    for (function, statements) in &policies {
        let calls = audited.get(function).cloned().unwrap_or_default();
        anyhow::ensure!(!calls.is_empty(), "{function} made no audited request");
        for call in calls {
            let (action, resource) = call.split_once(' ').unwrap_or((call.as_str(), "*"));
            anyhow::ensure!(
                grants(statements, action, resource),
                "{function} called {action} on {resource}, which its policy in infra/template.yaml does not grant"
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_calls_only_what_its_iam_policy_grants() -> Result<()> {
    let stack = Stack::start(Options::default()).await?;
    // The functions decrypted their secrets when they started, before the log is reset.
    let mut reached = stack.aws.moto.scopes().await?;
    stack.aws.reset_requests().await?;
    stack.aws.audit().await?;
    exercise(&stack).await?;
    check_audit(&stack, &stack.aws.audited().await?)?;
    for (caller, more) in stack.aws.moto.scopes().await? {
        reached.entry(caller).or_default().extend(more);
    }
    check_scopes(&reached)?;
    let callers = stack.aws.callers().await?;
    let declared = declared()?;
    for (function, allowed) in &declared {
        let called = callers
            .get(function)
            .unwrap_or_else(|| panic!("{function} made no AWS request: {callers:?}"));
        for call in called.keys() {
            let Some(needs) = iam_action(call) else {
                continue;
            };
            assert!(
                allowed.contains(needs),
                "{function} called {call}, which infra/permissions.yaml (and so its IAM policy) does not grant: add {needs} there and in infra/template.yaml"
            );
        }
    }
    // Nobody but the functions, Lambda's event source mappings (which receive and delete only)
    // and the harness signs requests.
    if let Some(mappings) = callers.get(sync_tests::EVENT_SOURCE_CALLER) {
        let service: Vec<&String> = mappings
            .keys()
            .filter(|c| {
                !matches!(
                    c.as_str(),
                    "sqs:ReceiveMessage"
                        | "sqs:DeleteMessageBatch"
                        | "sqs:DeleteMessage"
                        | "sqs:ChangeMessageVisibility"
                        | "sqs:ChangeMessageVisibilityBatch"
                        | "sqs:GetQueueAttributes"
                )
            })
            .collect();
        assert!(
            service.is_empty(),
            "the event source mappings called {service:?}"
        );
    }
    let unknown: Vec<&String> = callers
        .keys()
        .filter(|c| !declared.contains_key(*c) && c.as_str() != devstack::moto::ACCESS_KEY)
        .filter(|c| c.as_str() != sync_tests::EVENT_SOURCE_CALLER)
        .collect();
    assert!(unknown.is_empty(), "unexpected callers: {unknown:?}");
    stack.stop().await;
    Ok(())
}
