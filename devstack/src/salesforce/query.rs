//! The query endpoints: SOQL through `query?q=` (live records) and `queryAll?q=` (the Recycle
//! Bin's too, with `IsDeleted` and a merged record's `MasterRecordId`), and `nextRecordsUrl`
//! pages of 2,000 rows.

use super::*;

#[derive(Deserialize)]
pub(super) struct QueryParams {
    q: Option<String>,
}

pub(super) async fn query(
    State(org): OrgState,
    headers: HeaderMap,
    Path(ver): Path<String>,
    Query(params): Query<QueryParams>,
) -> Response {
    run_query(&org, &headers, &ver, params, Endpoint::Query)
}

pub(super) async fn query_all(
    State(org): OrgState,
    headers: HeaderMap,
    Path(ver): Path<String>,
    Query(params): Query<QueryParams>,
) -> Response {
    run_query(&org, &headers, &ver, params, Endpoint::QueryAll)
}

/// Which records a query sees: `query` the live ones, `queryAll` the deleted ones as well.
#[derive(Clone, Copy)]
pub(super) enum Endpoint {
    Query,
    QueryAll,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Query => "query",
            Endpoint::QueryAll => "queryAll",
        }
    }
}

fn run_query(
    org: &Arc<Mutex<Org>>,
    headers: &HeaderMap,
    ver: &str,
    params: QueryParams,
    endpoint: Endpoint,
) -> Response {
    let mut org = lock(org);
    if let Err(resp) = org.begin_call(headers) {
        return resp;
    }
    org.stats.query_calls += 1;
    let used = org.used();
    let Some(q) = params.q else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "q is required",
            used,
        );
    };
    let parsed = match soql::parse(&q) {
        Ok(p) => p,
        Err(message) => {
            return sf_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &message, used)
        }
    };
    let Some(sobject) = org.objects.get(parsed.from.as_str()) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            &format!("sObject type '{}' is not supported.", parsed.from),
            used,
        );
    };
    let all: Vec<Record>;
    let records = match endpoint {
        Endpoint::Query => &sobject.records,
        Endpoint::QueryAll => {
            all = (sobject.records.iter())
                .chain(sobject.deleted.values())
                .cloned()
                .collect();
            &all
        }
    };
    let rows = match soql::run(&parsed, records, |f| sobject.field(f).map(|d| d.kind)) {
        Ok(rows) => rows,
        Err(message) => return sf_error(StatusCode::BAD_REQUEST, "INVALID_FIELD", &message, used),
    };
    let object = parsed.from.clone();
    page(&mut org, rows, (object, endpoint), ver, used)
}

pub(super) async fn query_more(
    State(org): OrgState,
    headers: HeaderMap,
    Path((ver, locator)): Path<(String, String)>,
) -> Response {
    let mut org = lock(&org);
    if let Err(resp) = org.begin_call(&headers) {
        return resp;
    }
    org.stats.query_calls += 1;
    let used = org.used();
    let Some((rows, object)) = org.cursors.remove(&locator) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
            used,
        );
    };
    page(&mut org, rows, object, &ver, used)
}

pub(super) fn page(
    org: &mut Org,
    mut rows: Vec<Record>,
    (object, endpoint): (String, Endpoint),
    ver: &str,
    used: u64,
) -> Response {
    let total = rows.len();
    let rest = if rows.len() > QUERY_BATCH {
        rows.split_off(QUERY_BATCH)
    } else {
        vec![]
    };
    let records: Vec<Value> = rows
        .into_iter()
        .map(|mut r| {
            let id = r.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
            let mut out = Record::new();
            out.insert("attributes".into(), json!({"type": object, "url": format!("/services/data/{ver}/sobjects/{object}/{id}")}));
            out.append(&mut r);
            Value::Object(out)
        })
        .collect();
    let mut body = json!({ "totalSize": total, "done": rest.is_empty(), "records": records });
    if !rest.is_empty() {
        org.seq += 1;
        let locator = format!("01g5g{:010}-{QUERY_BATCH}", org.seq);
        let path = endpoint.path();
        body["nextRecordsUrl"] = json!(format!("/services/data/{ver}/{path}/{locator}"));
        org.cursors.insert(locator, (rest, (object, endpoint)));
    }
    ok_json(body, used)
}
