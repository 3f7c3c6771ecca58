//! The OAuth token endpoint and the sObject describe.

use super::*;

pub(super) async fn token(
    State(org): OrgState,
    headers: HeaderMap,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    // The app's credentials may come in an HTTP Basic header instead of the form.
    if let Some((id, secret)) = basic_credentials(&headers) {
        form.entry("client_id".into()).or_insert(id);
        form.entry("client_secret".into()).or_insert(secret);
    }
    let mut org = lock(&org);
    org.stats.token_requests += 1;
    let oauth_error = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    if let Err((error, description)) = grant(&org, &form) {
        return oauth_error(error, &description);
    }
    org.seq += 1;
    let token = format!(
        "00D5g000000emul!AQ{}{}",
        org.seq,
        uuid::Uuid::new_v4().simple()
    );
    org.tokens.push(token.clone());
    let now = org.now();
    (
        StatusCode::OK,
        Json(json!({
            "access_token": token,
            "signature": "emulator",
            "scope": "api",
            "instance_url": org.instance_url,
            "id": format!("{}/id/{ORGANIZATION_ID}/{INTEGRATION_USER_ID}", org.instance_url),
            "token_type": "Bearer",
            "issued_at": now.to_string(),
        })),
    )
        .into_response()
}

/// `Authorization: Basic base64(client_id:client_secret)`, when sent.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Checks the grant of a token request: `Err((error, description))` as Salesforce answers.
fn grant(org: &Org, form: &HashMap<String, String>) -> Result<(), (&'static str, String)> {
    let app = |secret_needed: bool| {
        let id_ok = form.get("client_id") == Some(&org.client_id);
        let secret_ok = !secret_needed || form.get("client_secret") == Some(&org.client_secret);
        if id_ok && secret_ok {
            Ok(())
        } else {
            Err(("invalid_client", "invalid client credentials".to_string()))
        }
    };
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => app(true),
        Some("refresh_token") => {
            app(true)?;
            match (&org.refresh_token, form.get("refresh_token")) {
                (Some(held), Some(sent)) if held == sent => Ok(()),
                _ => Err(("invalid_grant", "expired access/refresh token".into())),
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let assertion = form
                .get("assertion")
                .map(String::as_str)
                .unwrap_or_default();
            super::jwt::check(org, assertion).map_err(|d| ("invalid_grant", d))
        }
        Some(_) => Err(("unsupported_grant_type", "grant type not supported".into())),
        None => Err(("invalid_request", "grant_type is required".into())),
    }
}

pub(super) async fn describe(
    State(org): OrgState,
    headers: HeaderMap,
    Path((_ver, object)): Path<(String, String)>,
) -> Response {
    let mut org = lock(&org);
    if let Err(resp) = org.begin_call(&headers) {
        return resp;
    }
    org.stats.describe_calls += 1;
    let used = org.used();
    let Some(sobject) = org.objects.get(object.as_str()) else {
        return sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
            used,
        );
    };
    let fields: Vec<Value> = sobject
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "label": f.name.trim_end_matches("__c").replace('_', " "),
                "type": f.kind,
                "length": f.length,
                "nillable": f.nillable,
                "createable": f.createable,
                "updateable": f.updateable,
                "calculated": f.calculated,
                "externalId": f.external_id,
                "unique": f.external_id,
                "idLookup": f.external_id || f.name == "Id",
                "htmlFormatted": f.html,
                "defaultedOnCreate": f.defaulted,
                "custom": f.name.ends_with("__c"),
                "restrictedPicklist": f.restricted,
                "referenceTo": f.reference_to,
                "picklistValues": f.picklist.iter().map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": false})).collect::<Vec<_>>(),
            })
        })
        .collect();
    ok_json(
        json!({
            "name": object,
            "label": object,
            "custom": false,
            "keyPrefix": sobject.prefix,
            "createable": true,
            "updateable": true,
            "queryable": true,
            "fields": fields,
        }),
        used,
    )
}
