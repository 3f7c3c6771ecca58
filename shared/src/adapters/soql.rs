//! SOQL text from a typed select: every value quoted, `IN` lists sorted and deduplicated,
//! dateTime literals as Salesforce documents them, keyset paging conditions; and URL encoding.

use crate::ports::SfSelect;

/// `text` as a URL query value.
pub(super) fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The SOQL of `query`: every value quoted, `IN` lists sorted and deduplicated.
pub fn soql(query: &SfSelect) -> String {
    let mut text = format!("SELECT {} FROM {}", query.fields.join(", "), query.object);
    let mut conditions: Vec<String> = query
        .conditions
        .iter()
        .map(|(field, values)| {
            let mut quoted: Vec<String> = values.iter().map(|v| soql_quote(v)).collect();
            quoted.sort();
            quoted.dedup();
            format!("{field} IN ({})", quoted.join(", "))
        })
        .collect();
    if let Some((field, ms)) = &query.since {
        // A datetime literal is written unquoted, in UTC.
        conditions.push(format!("{field} >= {}", soql_datetime(*ms)));
    }
    if let Some(after) = &query.after {
        let (f, t) = (&after.field, soql_datetime(after.at_ms));
        conditions.push(format!(
            "({f} > {t} OR ({f} = {t} AND {} > {}))",
            after.id_field,
            soql_quote(&after.id)
        ));
    }
    if !conditions.is_empty() {
        text.push_str(" WHERE ");
        text.push_str(&conditions.join(" AND "));
    }
    if !query.order_by.is_empty() {
        text.push_str(" ORDER BY ");
        text.push_str(&query.order_by.join(", "));
    }
    if let Some(limit) = query.limit {
        text.push_str(&format!(" LIMIT {limit}"));
    }
    text
}

/// A dateTime literal, unquoted, in UTC: `YYYY-MM-DDThh:mm:ssZ` as SOQL documents it (Salesforce's
/// own timestamps are whole seconds); milliseconds are written only when the instant has some.
pub(super) fn soql_datetime(ms: i64) -> String {
    let text = crate::time::rfc3339(ms);
    match text.strip_suffix(".000Z") {
        Some(seconds) => format!("{seconds}Z"),
        None => text,
    }
}

/// Quotes a value for a SOQL string literal (backslash-escapes `\` and `'`, and control characters).
pub fn soql_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyset_page_starts_strictly_after_the_last_record() {
        let select = SfSelect {
            fields: vec!["Id".into(), "Name".into()],
            after: Some(crate::ports::SfAfter {
                field: "SystemModstamp".into(),
                at_ms: 0,
                id_field: "Id".into(),
                id: "001A".into(),
            }),
            order_by: vec!["SystemModstamp".into(), "Id".into()],
            limit: Some(2),
            ..SfSelect::from_object("Account")
        };
        assert_eq!(
            soql(&select),
            "SELECT Id, Name FROM Account WHERE (SystemModstamp > 1970-01-01T00:00:00Z OR (SystemModstamp = 1970-01-01T00:00:00Z AND Id > '001A')) ORDER BY SystemModstamp, Id LIMIT 2"
        );
    }

    #[test]
    fn datetime_literals_are_whole_seconds_unless_the_instant_has_milliseconds() {
        assert_eq!(soql_datetime(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(soql_datetime(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn selects_become_soql_with_quoted_in_lists() {
        let query = SfSelect {
            object: "Account".into(),
            fields: vec!["Id".into(), "Gainsight_Company_Id__c".into()],
            conditions: vec![(
                "Gainsight_Company_Id__c".into(),
                vec!["O'B".into(), "A".into(), "A".into()],
            )],
            order_by: vec![],
            ..Default::default()
        };
        assert_eq!(
            soql(&query),
            r"SELECT Id, Gainsight_Company_Id__c FROM Account WHERE Gainsight_Company_Id__c IN ('A', 'O\'B')"
        );
        let all = SfSelect {
            object: "Account".into(),
            fields: vec!["Id".into()],
            conditions: vec![],
            order_by: vec!["Name".into(), "Id".into()],
            ..Default::default()
        };
        assert_eq!(soql(&all), "SELECT Id FROM Account ORDER BY Name, Id");
    }

    #[test]
    fn soql_literals_cannot_break_out() {
        assert_eq!(soql_quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(soql_quote(r"a\' OR Name != '"), r"'a\\\' OR Name != \''");
    }

    #[test]
    fn urlencodes_soql() {
        assert_eq!(
            urlencode("SELECT Id FROM Account WHERE Name = 'a&b'"),
            "SELECT+Id+FROM+Account+WHERE+Name+%3D+%27a%26b%27"
        );
    }
}
