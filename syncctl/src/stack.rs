//! `--stack NAME`: the settings a deployed stack holds (its outputs and parameters), read with
//! CloudFormation's DescribeStacks and exported as the variables every command reads, so that
//! nobody copies table and function names by hand.

use std::collections::BTreeMap;

use crate::env::{not_found, usage};

/// Stack outputs and the variables they set.
const OUTPUTS: [(&str, &str); 7] = [
    ("StateTableName", "TABLE_NAME"),
    ("SecretsKeyId", "KMS_KEY_ID"),
    ("ChangesQueueUrl", "CHANGES_QUEUE_URL"),
    ("WritesQueueUrl", "WRITES_QUEUE_URL"),
    ("ResyncFunctionName", "RESYNC_FUNCTION"),
    ("PollerFunctionName", "POLLER_FUNCTION"),
    ("WebhookUrl", "WEBHOOK_URL"),
];

/// Stack parameters and the variables they set (the functions read the same names).
const PARAMETERS: [(&str, &str); 6] = [
    ("SalesforceLoginUrl", "SALESFORCE_LOGIN_URL"),
    ("SalesforceClientId", "SALESFORCE_CLIENT_ID"),
    ("SalesforceApiVersion", "SALESFORCE_API_VERSION"),
    ("SalesforceAuthFlow", "SALESFORCE_AUTH_FLOW"),
    ("SalesforceUsername", "SALESFORCE_USERNAME"),
    ("GainsightBaseUrl", "GAINSIGHT_BASE_URL"),
];

/// The variables `outputs` and `parameters` (by key) set, in a stable order; an empty value
/// sets nothing.
pub fn variables(
    outputs: &BTreeMap<String, String>,
    parameters: &BTreeMap<String, String>,
) -> Vec<(&'static str, String)> {
    let from = |pairs: &[(&'static str, &'static str)], values: &BTreeMap<String, String>| {
        pairs
            .iter()
            .filter_map(|(key, var)| Some((*var, values.get(*key)?.clone())))
            .filter(|(_, v)| !v.is_empty())
            .collect::<Vec<_>>()
    };
    let mut vars = from(&OUTPUTS, outputs);
    vars.extend(from(&PARAMETERS, parameters));
    vars
}

/// Reads stack `name`'s outputs and parameters with DescribeStacks.
pub async fn read(name: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    let sdk = shared::adapters::aws_config().await;
    let client = aws_sdk_cloudformation::Client::new(&sdk);
    let answer = client.describe_stacks().stack_name(name).send().await;
    let stacks = match answer {
        Ok(out) => out.stacks.unwrap_or_default(),
        Err(e) => {
            let message = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
            if message.contains("does not exist") {
                return Err(not_found(format!("no stack named {name:?} in this account and region (AWS_REGION); `aws cloudformation list-stacks` lists them")));
            }
            return Err(anyhow::anyhow!(
                "the stack {name} could not be read: {message}"
            ));
        }
    };
    let stack = stacks
        .into_iter()
        .next()
        .ok_or_else(|| not_found(format!("no stack named {name:?}")))?;
    let outputs: BTreeMap<String, String> = (stack.outputs.unwrap_or_default().into_iter())
        .filter_map(|o| Some((o.output_key?, o.output_value?)))
        .collect();
    if !outputs.contains_key("StateTableName") {
        return Err(usage(format!(
            "stack {name} has no StateTableName output: is it a deployment of this product's template?"
        )));
    }
    let parameters: BTreeMap<String, String> = (stack.parameters.unwrap_or_default().into_iter())
        .filter_map(|p| Some((p.parameter_key?, p.parameter_value?)))
        .collect();
    Ok(variables(&outputs, &parameters))
}

/// Which of `vars` to set in this process: every output, and each parameter the environment
/// does not already set (`is_set`), so that a Salesforce or Gainsight URL given by hand (the
/// local stack's emulators) wins over the stack's.
pub fn to_set(
    vars: Vec<(&'static str, String)>,
    is_set: impl Fn(&str) -> bool,
) -> Vec<(&'static str, String)> {
    let from_parameters = |k: &str| PARAMETERS.iter().any(|(_, var)| *var == k);
    vars.into_iter()
        .filter(|(k, _)| !(from_parameters(k) && is_set(k)))
        .collect()
}

/// `vars` as shell exports, each value single-quoted.
pub fn exports(vars: &[(&str, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_parameters_become_the_variables_the_commands_read() {
        let outputs = BTreeMap::from([
            (
                "StateTableName".to_string(),
                "prod-StateTable-1".to_string(),
            ),
            ("ResyncFunctionName".into(), "prod-ResyncFunction-2".into()),
            ("DashboardUrl".into(), "https://example".into()),
        ]);
        let parameters = BTreeMap::from([
            (
                "GainsightBaseUrl".to_string(),
                "https://acme.gainsightcloud.com".to_string(),
            ),
            ("SalesforceUsername".into(), String::new()),
        ]);
        let vars = variables(&outputs, &parameters);
        assert_eq!(
            vars,
            vec![
                ("TABLE_NAME", "prod-StateTable-1".to_string()),
                ("RESYNC_FUNCTION", "prod-ResyncFunction-2".into()),
                (
                    "GAINSIGHT_BASE_URL",
                    "https://acme.gainsightcloud.com".into()
                ),
            ]
        );
        let set = to_set(vars, |k| k == "GAINSIGHT_BASE_URL" || k == "TABLE_NAME");
        let names: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            ["TABLE_NAME", "RESYNC_FUNCTION"],
            "outputs always, parameters unless set"
        );
        assert_eq!(exports(&[("A", "it's".into())]), "export A='it'\\''s'\n");
    }
}
