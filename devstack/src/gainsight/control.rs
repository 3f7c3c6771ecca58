//! The object describe, and the emulator's own endpoints: dump, call counts, faults and rules.

use super::*;

/// The Data Management describe of one object: its fields with type, requiredness and whether
/// they can be written.
pub(super) async fn describe(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
) -> Response {
    if let Err(r) = begin(&tenant, &headers) {
        return r;
    }
    let t = lock(&tenant);
    let Some((fields, _)) = t.objects.get(object.as_str()) else {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GS_OBJECT_NOT_FOUND",
            &format!("Object {object} does not exist"),
        );
    };
    let fields: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({
                "fieldName": f.name,
                "label": f.name,
                "dataType": f.kind,
                "required": f.required,
                "readOnly": f.system,
                "formula": false,
                "richText": false,
            })
        })
        .collect();
    envelope_ok(json!([{ "objectName": object, "label": object, "fields": fields }]))
}

pub(super) async fn dump(State(tenant): TenantState, Path(object): Path<String>) -> Response {
    Json(
        lock(&tenant)
            .objects
            .get(object.as_str())
            .map(|o| o.1.clone())
            .unwrap_or_default(),
    )
    .into_response()
}

pub(super) async fn stats(State(tenant): TenantState) -> Response {
    Json(lock(&tenant).stats.clone()).into_response()
}

pub(super) async fn add_fault(State(tenant): TenantState, Json(fault): Json<Fault>) -> Response {
    lock(&tenant).faults.push_back(fault);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn add_rule(State(tenant): TenantState, Json(rule): Json<Rule>) -> Response {
    lock(&tenant).rules.push(rule);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /v1/ant/attachments/{id}`: an activity attachment's bytes.
pub(super) async fn download(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = begin(&tenant, &headers) {
        return r;
    }
    let t = lock(&tenant);
    match t.files.get(&id) {
        Some(bytes) => (StatusCode::OK, bytes.clone()).into_response(),
        None => envelope_error(
            StatusCode::NOT_FOUND,
            "GS_ATTACHMENT_NOT_FOUND",
            &format!("Attachment {id} does not exist"),
        ),
    }
}

/// How the tenant answers the faults it injects at their rates.
const REFUSALS: crate::chaos::Refusals = crate::chaos::Refusals {
    throttled: || {
        let mut refused = envelope_error(
            StatusCode::TOO_MANY_REQUESTS,
            "GS_RATE_LIMIT",
            "Rate limit exceeded",
        );
        refused.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(1u32),
        );
        refused
    },
    unavailable: || {
        envelope_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "GS_UNAVAILABLE",
            "Service temporarily unavailable",
        )
    },
    lost: || {
        envelope_error(
            StatusCode::GATEWAY_TIMEOUT,
            "GS_GATEWAY_TIMEOUT",
            "the answer was lost",
        )
    },
};

/// The integration's API calls' faults at their rates: throttling, unavailability, slowness,
/// lost answers. A person's calls (the `person_key`, standing for the UI) are left alone.
pub(super) async fn chaos(
    State(tenant): TenantState,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let plan = {
        let mut t = lock(&tenant);
        let key = request
            .headers()
            .get("accesskey")
            .and_then(|v| v.to_str().ok());
        if key == Some(t.person_key.as_str()) {
            None
        } else {
            let plan = crate::chaos::Plan::draw(&t.rates);
            plan.count(&mut t.fault_counts);
            Some(plan)
        }
    };
    match plan {
        Some(plan) => plan.run(&REFUSALS, request, next).await,
        None => next.run(request).await,
    }
}

/// `POST /__emulator/fault-rates`: faults at these rates from now on.
pub(super) async fn set_rates(
    State(tenant): TenantState,
    Json(rates): Json<crate::chaos::FaultRates>,
) -> Response {
    lock(&tenant).rates = rates;
    StatusCode::NO_CONTENT.into_response()
}
