//! Talks to the systems on the mapping engine's behalf: loads the describes the jobs need (once per
//! cold start) and runs a batch's derived lookups, one query per derived mapping per batch.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::adapters::salesforce::soql_quote;
use crate::domain::mapping::text;
use crate::domain::{JobError, Jobs, LookupRequest, Lookups, Schemas, System};
use crate::ports::{ApiError, GainsightApi, GsQuery, SalesforceApi};

/// Match tuples per query: keeps a SOQL statement far below its 100,000-character limit.
const TUPLES_PER_QUERY: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("describe of {system} {object} failed: {source}")]
    Describe {
        system: &'static str,
        object: String,
        #[source]
        source: ApiError,
    },
    #[error(transparent)]
    Job(#[from] JobError),
}

/// Describes every object the jobs use and checks the jobs against them.
pub async fn load_schemas(
    jobs: &Jobs,
    salesforce: &dyn SalesforceApi,
    gainsight: &dyn GainsightApi,
) -> Result<Schemas, SchemaError> {
    let mut schemas = Schemas::default();
    for (system, object) in jobs.described_objects() {
        let described = match system {
            System::Salesforce => salesforce.describe(&object).await,
            System::Gainsight => gainsight.describe(&object).await,
        };
        let schema = described.map_err(|source| SchemaError::Describe {
            system: system.as_str(),
            object: object.clone(),
            source,
        })?;
        schemas.insert(schema);
    }
    jobs.check_schemas(&schemas)?;
    Ok(schemas)
}

/// Runs every request; a failed query marks its lookup failed (its records are retried).
pub async fn run_lookups(
    requests: &[LookupRequest],
    salesforce: &dyn SalesforceApi,
    gainsight: &dyn GainsightApi,
) -> Lookups {
    let mut lookups = Lookups::default();
    for request in requests {
        match find(salesforce, gainsight, request).await {
            Ok(found) => {
                for tuple in &request.tuples {
                    let values = found.get(tuple).cloned().unwrap_or_default();
                    lookups.insert(&request.job, request.derived, tuple.clone(), values);
                }
            }
            Err(e) => {
                tracing::warn!(job = %request.job, object = %request.object, error = %e, "lookup query failed; its records will be retried");
                lookups.mark_failed(&request.job, request.derived);
            }
        }
    }
    lookups
}

/// The values of `request.returns` of the records of `request.object` matching each tuple, in one
/// query per 200 tuples (SOQL or Gainsight `IN` conditions), sorted and deduplicated. Text is
/// compared as the system compares it: exactly in Salesforce, ignoring case in Gainsight.
pub async fn find(
    salesforce: &dyn SalesforceApi,
    gainsight: &dyn GainsightApi,
    request: &LookupRequest,
) -> Result<BTreeMap<Vec<String>, Vec<String>>, ApiError> {
    let fold = |t: String| match request.system {
        System::Gainsight => t.to_lowercase(),
        System::Salesforce => t,
    };
    let mut rows = Vec::new();
    for chunk in request.tuples.chunks(TUPLES_PER_QUERY) {
        rows.extend(match request.system {
            System::Salesforce => salesforce.query(&soql(request, chunk)).await?,
            System::Gainsight => {
                gainsight
                    .query(&request.object, &gs_query(request, chunk))
                    .await?
            }
        });
    }
    // The IN conditions over-select when there are several match fields: keep exact tuples.
    let mut by_tuple: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for row in &rows {
        let tuple: Option<Vec<String>> = request
            .match_fields
            .iter()
            .map(|f| text(row.get(f)).map(fold))
            .collect();
        if let (Some(tuple), Some(value)) = (tuple, text(row.get(&request.returns))) {
            by_tuple.entry(tuple).or_default().push(value);
        }
    }
    let mut found = BTreeMap::new();
    for tuple in &request.tuples {
        let key: Vec<String> = tuple.iter().cloned().map(fold).collect();
        let mut values = by_tuple.get(&key).cloned().unwrap_or_default();
        values.sort();
        values.dedup();
        found.insert(tuple.clone(), values);
    }
    Ok(found)
}

fn soql(request: &LookupRequest, tuples: &[Vec<String>]) -> String {
    let mut select = vec![request.returns.clone()];
    for f in &request.match_fields {
        if !select.contains(f) {
            select.push(f.clone());
        }
    }
    let conditions: Vec<String> = request
        .match_fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let mut values: Vec<String> = tuples.iter().map(|t| soql_quote(&t[i])).collect();
            values.sort();
            values.dedup();
            format!("{field} IN ({})", values.join(", "))
        })
        .collect();
    format!(
        "SELECT {} FROM {} WHERE {}",
        select.join(", "),
        request.object,
        conditions.join(" AND ")
    )
}

fn gs_query(request: &LookupRequest, tuples: &[Vec<String>]) -> GsQuery {
    let mut select = vec![request.returns.clone()];
    select.extend(request.match_fields.iter().cloned());
    GsQuery {
        select,
        conditions: request
            .match_fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                (
                    field.clone(),
                    "IN".to_string(),
                    tuples.iter().map(|t| Value::String(t[i].clone())).collect(),
                )
            })
            .collect(),
        order_by: vec![],
        limit: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_per_chunk_with_quoted_values() {
        let request = LookupRequest {
            job: "j".into(),
            derived: 0,
            system: System::Salesforce,
            object: "Account".into(),
            match_fields: vec!["Gainsight_Company_Id__c".into()],
            returns: "Id".into(),
            tuples: vec![vec!["A".into()], vec!["O'B".into()]],
        };
        assert_eq!(
            soql(&request, &request.tuples),
            r"SELECT Id, Gainsight_Company_Id__c FROM Account WHERE Gainsight_Company_Id__c IN ('A', 'O\'B')"
        );
    }
}
