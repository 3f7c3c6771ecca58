//! Talks to the systems on the mapping engine's behalf: loads the describes the jobs need (once per
//! cold start) and runs a batch's derived lookups, one query per derived mapping per batch.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::mapping::text;
use crate::domain::{JobError, Jobs, LookupRequest, Lookups, Schemas, System};
use crate::ports::{
    ApiError, GainsightApi, GsCondition, GsOperator, GsQuery, SalesforceApi, SfSelect,
};

pub use crate::domain::push::Found;

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

/// Runs every request; a query that failed for now marks its lookup failed (its records are
/// retried); one the system refused is split until the values it refuses are isolated, and only
/// their records are rejected, with the reason.
pub async fn run_lookups(
    requests: &[LookupRequest],
    salesforce: &dyn SalesforceApi,
    gainsight: &dyn GainsightApi,
) -> Lookups {
    let mut lookups = Lookups::default();
    for request in requests {
        match find_isolating(salesforce, gainsight, request).await {
            Ok((found, refused)) => {
                for tuple in &request.tuples {
                    let values = found.get(tuple).cloned().unwrap_or_default();
                    lookups.insert(&request.job, request.derived, tuple.clone(), values);
                }
                for (tuple, e) in refused {
                    tracing::warn!(job = %request.job, object = %request.object, error = %e, "lookup refused for one value; only its records are rejected");
                    lookups.refuse(&request.job, request.derived, tuple, e);
                }
            }
            Err(e @ ApiError::Auth { .. }) => {
                tracing::warn!(job = %request.job, object = %request.object, error = %e, "lookup refused our credentials; the job is deactivated");
                lookups.mark_unauthorized(&request.job, request.derived, e.to_string());
            }
            Err(e) => {
                tracing::warn!(job = %request.job, object = %request.object, error = %e, "lookup query failed; its records will be retried");
                lookups.mark_failed(&request.job, request.derived, e.to_string());
            }
        }
    }
    lookups
}

/// Refused values with why.
type Refused = Vec<(Vec<String>, String)>;

/// `find`, halving a request the system refuses until each refused value is alone: the values
/// found, and those refused with the error. Any other failure fails the whole request.
async fn find_isolating(
    salesforce: &dyn SalesforceApi,
    gainsight: &dyn GainsightApi,
    request: &LookupRequest,
) -> Result<(Found, Refused), ApiError> {
    match find(salesforce, gainsight, request).await {
        Ok(found) => Ok((found, Vec::new())),
        // Only a refusal of the request itself can be a value's fault: an outage, an expired
        // session or a garbled answer fails the whole lookup, tried again.
        Err(e) if !matches!(e, ApiError::Rejected { .. }) => Err(e),
        Err(e) if request.tuples.len() <= 1 => {
            let why = e.to_string();
            Ok((
                Found::new(),
                request
                    .tuples
                    .iter()
                    .map(|t| (t.clone(), why.clone()))
                    .collect(),
            ))
        }
        Err(_) => {
            let mid = request.tuples.len() / 2;
            let half = |tuples: &[Vec<String>]| LookupRequest {
                tuples: tuples.to_vec(),
                ..request.clone()
            };
            let (first, second) = (half(&request.tuples[..mid]), half(&request.tuples[mid..]));
            let (mut found, mut refused) =
                Box::pin(find_isolating(salesforce, gainsight, &first)).await?;
            let (more, also) = Box::pin(find_isolating(salesforce, gainsight, &second)).await?;
            found.extend(more);
            refused.extend(also);
            Ok((found, refused))
        }
    }
}

/// The most the match values of one Salesforce lookup may take in its query URL, encoded: a
/// REST request's URI is limited to 16,384 bytes, and the rest of the query needs some.
const SF_VALUES_BYTES: usize = 12_000;

/// `tuples` in groups of at most `TUPLES_PER_QUERY`, and for Salesforce, whose query travels in
/// the URL, of at most `SF_VALUES_BYTES` of encoded values.
fn query_chunks(system: System, tuples: &[Vec<String>]) -> Vec<&[Vec<String>]> {
    let encoded = |t: &Vec<String>| -> usize {
        let each = |v: &String| {
            url::form_urlencoded::byte_serialize(v.as_bytes())
                .map(str::len)
                .sum::<usize>()
        };
        t.iter().map(|v| each(v) + 9).sum()
    };
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, t) in tuples.iter().enumerate() {
        let size = if system == System::Salesforce {
            encoded(t)
        } else {
            0
        };
        if i > start && (i - start == TUPLES_PER_QUERY || bytes + size > SF_VALUES_BYTES) {
            chunks.push(&tuples[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < tuples.len() {
        chunks.push(&tuples[start..]);
    }
    chunks
}

/// The values of `request.returns` of the records of `request.object` matching each tuple, in one
/// query per 200 tuples (SOQL or Gainsight `IN` conditions), sorted and deduplicated. Text is
/// compared as the system compares it: exactly in Salesforce, ignoring case in Gainsight.
pub async fn find(
    salesforce: &dyn SalesforceApi,
    gainsight: &dyn GainsightApi,
    request: &LookupRequest,
) -> Result<Found, ApiError> {
    let fold = |t: String| match request.system {
        System::Gainsight => t.to_lowercase(),
        System::Salesforce => t,
    };
    let mut rows = Vec::new();
    for chunk in query_chunks(request.system, &request.tuples) {
        rows.extend(match request.system {
            System::Salesforce => salesforce.select(&sf_select(request, chunk)).await?,
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

/// Columns read: the returned field and the match fields.
fn columns(request: &LookupRequest) -> Vec<String> {
    let mut select = vec![request.returns.clone()];
    for f in &request.match_fields {
        if !select.contains(f) {
            select.push(f.clone());
        }
    }
    select
}

/// The values of match field `i` across `tuples`.
fn column_values(tuples: &[Vec<String>], i: usize) -> Vec<String> {
    tuples.iter().map(|t| t[i].clone()).collect()
}

fn sf_select(request: &LookupRequest, tuples: &[Vec<String>]) -> SfSelect {
    SfSelect {
        object: request.object.clone(),
        fields: columns(request),
        conditions: request
            .match_fields
            .iter()
            .enumerate()
            .map(|(i, field)| (field.clone(), column_values(tuples, i)))
            .collect(),
        order_by: vec![],
        ..Default::default()
    }
}

fn gs_query(request: &LookupRequest, tuples: &[Vec<String>]) -> GsQuery {
    GsQuery {
        select: columns(request),
        conditions: request
            .match_fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let values = column_values(tuples, i).into_iter().map(Value::String);
                GsCondition::new(field.clone(), GsOperator::In, values.collect())
            })
            .collect(),
        any_of: Vec::new(),
        order_by: vec![],
        limit: 0,
        offset: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(system: System, fields: &[&str], tuples: &[&[&str]]) -> LookupRequest {
        LookupRequest {
            job: "j".into(),
            derived: 0,
            system,
            object: "Account".into(),
            match_fields: fields.iter().map(|f| f.to_string()).collect(),
            returns: "Id".into(),
            tuples: tuples
                .iter()
                .map(|t| t.iter().map(|v| v.to_string()).collect())
                .collect(),
        }
    }

    #[test]
    fn salesforce_lookups_keep_their_values_under_the_uri_limit() {
        let short: Vec<Vec<String>> = (0..450).map(|i| vec![format!("G{i}")]).collect();
        let sizes: Vec<usize> = query_chunks(System::Salesforce, &short)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [200, 200, 50]);
        let long: Vec<Vec<String>> = (0..200)
            .map(|i| vec![format!("{i}-{}", "é".repeat(100))])
            .collect();
        let chunks = query_chunks(System::Salesforce, &long);
        assert!(chunks.len() > 1, "200 long values do not fit one URL");
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 200);
        assert_eq!(
            query_chunks(System::Gainsight, &long).len(),
            1,
            "Gainsight queries are POSTed"
        );
    }

    #[cfg(feature = "fakes")]
    #[tokio::test]
    async fn a_refused_value_fails_only_its_own_lookup() {
        use crate::fakes::{MemoryGainsight, MemorySalesforce};
        let sf = MemorySalesforce::default();
        *sf.refuse_value.lock().unwrap() = Some("bad'value".into());
        *sf.query_rows.lock().unwrap() = vec![serde_json::json!({"Id": "001A", "A__c": "ok1"})
            .as_object()
            .cloned()
            .unwrap()];
        let r = request(
            System::Salesforce,
            &["A__c"],
            &[&["ok1"], &["bad'value"], &["ok2"], &["ok3"]],
        );
        let lookups = run_lookups(std::slice::from_ref(&r), &sf, &MemoryGainsight::default()).await;
        assert!(!lookups.has_failed("j", 0), "the request as a whole ran");
        let refused = lookups.refused("j", 0, &["bad'value".to_string()]);
        assert!(
            refused.is_some_and(|e| e.contains("MALFORMED_QUERY")),
            "{refused:?}"
        );
        assert!(lookups.refused("j", 0, &["ok1".to_string()]).is_none());
        let queries = sf.queries.lock().unwrap().len();
        assert!(queries <= 5, "halved, not one query per value: {queries}");

        // An expired session is no value's fault: the whole lookup is tried again, nothing
        // rejected (seen in a soak before this rule).
        *sf.selects_unauthorised.lock().unwrap() = true;
        let lookups = run_lookups(std::slice::from_ref(&r), &sf, &MemoryGainsight::default()).await;
        assert!(lookups.has_failed("j", 0));
        assert!(lookups.refused("j", 0, &["ok1".to_string()]).is_none());
    }

    #[test]
    fn one_in_list_per_match_field() {
        let r = request(
            System::Salesforce,
            &["A__c", "B__c"],
            &[&["1", "x"], &["2", "y"]],
        );
        let select = sf_select(&r, &r.tuples);
        assert_eq!(select.fields, ["Id", "A__c", "B__c"]);
        assert_eq!(
            select.conditions,
            [
                ("A__c".to_string(), vec!["1".to_string(), "2".to_string()]),
                ("B__c".to_string(), vec!["x".to_string(), "y".to_string()])
            ]
        );
        let gs = gs_query(&r, &r.tuples[1..]);
        assert_eq!(
            gs.conditions[1],
            GsCondition::new("B__c", GsOperator::In, vec!["y".into()])
        );
    }
}
