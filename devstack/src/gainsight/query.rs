//! `POST /v1/data/objects/query/{object}`: select, where conditions joined by an expression,
//! orderBy, limit and offset.

use super::*;

#[derive(Deserialize)]
pub(super) struct QueryBody {
    select: Vec<String>,
    #[serde(default, rename = "where")]
    filter: Option<Where>,
    #[serde(default, rename = "orderBy")]
    order_by: Option<Map<String, Value>>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

#[derive(Deserialize)]
pub(super) struct Where {
    conditions: Vec<Condition>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Condition {
    name: String,
    alias: String,
    #[serde(default)]
    value: Vec<Value>,
    operator: String,
}

pub(super) fn cmp_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        // Gainsight compares text case-insensitively (emails above all).
        (Value::String(x), Value::String(y)) if x.eq_ignore_ascii_case(y) => {
            Some(std::cmp::Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

pub(super) fn holds(c: &Condition, r: &Record) -> Result<bool, String> {
    use std::cmp::Ordering::*;
    let v = r.get(&c.name).unwrap_or(&Value::Null);
    let first = c.value.first();
    let need = || first.ok_or_else(|| format!("condition {} needs a value", c.alias));
    Ok(match c.operator.as_str() {
        "EQ" => cmp_values(v, need()?) == Some(Equal),
        "NE" => cmp_values(v, need()?) != Some(Equal),
        "GT" => cmp_values(v, need()?) == Some(Greater),
        "GTE" => matches!(cmp_values(v, need()?), Some(Greater | Equal)),
        "LT" => cmp_values(v, need()?) == Some(Less),
        "LTE" => matches!(cmp_values(v, need()?), Some(Less | Equal)),
        "IN" => c.value.iter().any(|x| cmp_values(v, x) == Some(Equal)),
        "NOT_IN" => !c.value.iter().any(|x| cmp_values(v, x) == Some(Equal)),
        "CONTAINS" => match (v, need()?) {
            (Value::String(s), Value::String(p)) => s.to_lowercase().contains(&p.to_lowercase()),
            _ => false,
        },
        "IS_NULL" => v.is_null(),
        "IS_NOT_NULL" => !v.is_null(),
        other => return Err(format!("Unsupported operator {other}")),
    })
}

/// Evaluates an expression such as `(A AND B) OR C` over condition results by alias.
pub(super) fn evaluate(expr: &str, truth: &BTreeMap<String, bool>) -> Result<bool, String> {
    let spaced = expr.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    pub(super) fn or(
        t: &[&str],
        i: &mut usize,
        truth: &BTreeMap<String, bool>,
    ) -> Result<bool, String> {
        let mut v = and(t, i, truth)?;
        while t.get(*i).is_some_and(|x| x.eq_ignore_ascii_case("OR")) {
            *i += 1;
            let r = and(t, i, truth)?;
            v = v || r;
        }
        Ok(v)
    }
    pub(super) fn and(
        t: &[&str],
        i: &mut usize,
        truth: &BTreeMap<String, bool>,
    ) -> Result<bool, String> {
        let mut v = atom(t, i, truth)?;
        while t.get(*i).is_some_and(|x| x.eq_ignore_ascii_case("AND")) {
            *i += 1;
            let r = atom(t, i, truth)?;
            v = v && r;
        }
        Ok(v)
    }
    pub(super) fn atom(
        t: &[&str],
        i: &mut usize,
        truth: &BTreeMap<String, bool>,
    ) -> Result<bool, String> {
        let tok = *t.get(*i).ok_or("expression ends early")?;
        *i += 1;
        if tok == "(" {
            let v = or(t, i, truth)?;
            if t.get(*i) != Some(&")") {
                return Err("unbalanced parentheses in expression".into());
            }
            *i += 1;
            return Ok(v);
        }
        truth
            .get(tok)
            .copied()
            .ok_or_else(|| format!("expression uses unknown alias {tok}"))
    }
    let mut i = 0;
    let v = or(&tokens, &mut i, truth)?;
    if i != tokens.len() {
        return Err(format!("unexpected {} in expression", tokens[i]));
    }
    Ok(v)
}

pub(super) async fn query(
    State(tenant): TenantState,
    headers: HeaderMap,
    Path(object): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: QueryBody = match accept(&tenant, &headers, &body).await {
        Ok((_, b)) => b,
        Err(r) => return r,
    };
    let mut guard = lock(&tenant);
    let t = &mut *guard;
    t.stats.query_calls += 1;
    let bad = |desc: String| envelope_error(StatusCode::BAD_REQUEST, "GS_BAD_REQUEST", &desc);
    let Some((&name, (fields, records))) = t.objects.get_key_value(object.as_str()) else {
        return bad(format!("Object {object} does not exist"));
    };
    let known = |name: &str| fields.iter().any(|f| f.name == name);
    if let Some(field) = body.select.iter().find(|f| !known(f)) {
        return bad(format!("Invalid field {field} in select"));
    }
    let limit = body.limit.unwrap_or(100);
    if limit > READ_LIMIT {
        return bad(format!("limit can be at most {READ_LIMIT}"));
    }
    if let Some(c) = body
        .filter
        .iter()
        .flat_map(|w| &w.conditions)
        .find(|c| !known(&c.name))
    {
        return bad(format!("Invalid field {} in where", c.name));
    }
    let candidates: Vec<&Record> = match body.filter.as_ref().and_then(lookup_of) {
        Some((field, values)) => {
            let index = t.lookups.entry((name, field.to_string())).or_default();
            let updated = t.updated.get(name).map_or(&[][..], Vec::as_slice);
            index.refresh(field, records, updated);
            match index.find(values) {
                Some(at) => at.into_iter().filter_map(|i| records.get(i)).collect(),
                None => records.iter().collect(),
            }
        }
        None => records.iter().collect(),
    };
    let mut rows: Vec<&Record> = vec![];
    for r in candidates {
        match body.filter.as_ref().map_or(Ok(true), |w| matches(w, r)) {
            Ok(true) => rows.push(r),
            Ok(false) => {}
            Err(e) => return bad(e),
        }
    }
    if let Some(order) = &body.order_by {
        sort(&mut rows, order);
    }
    let page: Vec<Value> = rows
        .into_iter()
        .skip(body.offset.unwrap_or(0))
        .take(limit)
        .map(|r| project(&body.select, r))
        .collect();
    if page.is_empty() {
        // Gainsight answers a query that matched nothing (or a page past the end) as an error.
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "GSOBJ_1011",
            "No entity matches the given criteria",
        );
    }
    // Company, Person and custom objects answer the rows as `data` itself; Timeline (and the
    // objects Gainsight documents that way) as `data.records`.
    if RECORDS_ENVELOPE.contains(&object.as_str()) {
        envelope_ok(json!({ "records": page }))
    } else {
        envelope_ok(Value::Array(page))
    }
}

/// Objects whose query answers `{"records": [...]}` rather than a list.
const RECORDS_ENVELOPE: [&str; 1] = ["activity_timeline"];

/// The field and values of a where clause that is one `EQ` or `IN` condition: a lookup the
/// field's index answers.
fn lookup_of(w: &Where) -> Option<(&str, &[Value])> {
    let [c] = w.conditions.as_slice() else {
        return None;
    };
    let alone = w.expression.as_deref().is_none_or(|e| e.trim() == c.alias);
    let lookup = matches!(c.operator.as_str(), "EQ" | "IN") && !c.value.is_empty();
    (alone && lookup).then_some((c.name.as_str(), &c.value[..]))
}

/// Whether `r` satisfies the where clause: each condition evaluated, then the expression over
/// their aliases (AND of all when there is none).
fn matches(w: &Where, r: &Record) -> Result<bool, String> {
    let mut truth = BTreeMap::new();
    for c in &w.conditions {
        truth.insert(c.alias.clone(), holds(c, r)?);
    }
    let default_expr = w
        .conditions
        .iter()
        .map(|c| c.alias.clone())
        .collect::<Vec<_>>()
        .join(" AND ");
    evaluate(w.expression.as_deref().unwrap_or(&default_expr), &truth)
}

/// Sorts `rows` by the orderBy fields. A reader paging a large object by its GSID asks for the
/// order records are kept in: that is checked in one pass rather than sorted on every page.
fn sort(rows: &mut [&Record], order: &Map<String, Value>) {
    if !rows.is_sorted_by(|a, b| compare(order, a, b).is_le()) {
        rows.sort_by(|a, b| compare(order, a, b));
    }
}

/// Orders two records by the orderBy fields (`asc` / `desc` each).
fn compare(order: &Map<String, Value>, a: &Record, b: &Record) -> std::cmp::Ordering {
    for (f, dir) in order {
        let null = Value::Null;
        let o = cmp_values(a.get(f).unwrap_or(&null), b.get(f).unwrap_or(&null));
        let o = o.unwrap_or(std::cmp::Ordering::Equal);
        let desc = dir.as_str().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        let o = if desc { o.reverse() } else { o };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

/// The selected fields of a record, null where it has none.
fn project(select: &[String], r: &Record) -> Value {
    Value::Object(
        select
            .iter()
            .map(|f| (f.clone(), r.get(f).cloned().unwrap_or(Value::Null)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_in_the_asked_order_whether_or_not_they_were_kept_in_it() {
        let rec = |gsid: &str, n: i64| -> Record {
            serde_json::from_value(json!({"Gsid": gsid, "N": n})).unwrap()
        };
        let kept = [rec("G1", 3), rec("G2", 1), rec("G3", 2)];
        let gsids =
            |rows: &[&Record]| -> Vec<Value> { rows.iter().map(|r| r["Gsid"].clone()).collect() };
        let order = |v: Value| v.as_object().cloned().unwrap();

        let mut rows: Vec<&Record> = kept.iter().collect();
        sort(&mut rows, &order(json!({"Gsid": "asc"})));
        assert_eq!(gsids(&rows), [json!("G1"), json!("G2"), json!("G3")]);
        sort(&mut rows, &order(json!({"Gsid": "desc"})));
        assert_eq!(gsids(&rows), [json!("G3"), json!("G2"), json!("G1")]);
        sort(&mut rows, &order(json!({"N": "asc"})));
        assert_eq!(gsids(&rows), [json!("G2"), json!("G3"), json!("G1")]);
    }
}
