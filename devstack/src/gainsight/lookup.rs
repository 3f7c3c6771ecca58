//! Query lookups by one field (`EQ` or `IN` on text) answered from an index, so a lookup among a
//! million records reads only the records it names instead of testing every one. An index is
//! kept per object and field between calls: extended by the records appended since, and each
//! record an update changed in place keyed again. Text compares as Gainsight compares it,
//! ignoring ASCII case.

use std::collections::HashMap;

use serde_json::Value;

use super::Record;

/// Positions of an object's records by their value of one field.
#[derive(Default)]
pub(super) struct FieldIndex {
    positions: HashMap<String, Vec<usize>>,
    /// Each indexed record's key, by position.
    key_of: Vec<Option<String>>,
    /// How many entries of the object's log of updated positions this index has applied.
    seen: usize,
}

/// The key a value is indexed and looked up by; `None` for what is not text.
fn key(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
        _ => None,
    }
}

impl FieldIndex {
    /// Brings the index up to date with `records`: the positions `updated` since it last looked
    /// keyed again, then the records appended since.
    pub(super) fn refresh(&mut self, field: &str, records: &[Record], updated: &[usize]) {
        for &at in updated.get(self.seen..).unwrap_or_default() {
            if at < self.key_of.len() {
                self.rekey(at, key(records.get(at).and_then(|r| r.get(field))));
            }
        }
        self.seen = updated.len();
        for (at, record) in records.iter().enumerate().skip(self.key_of.len()) {
            let k = key(record.get(field));
            if let Some(k) = &k {
                self.positions.entry(k.clone()).or_default().push(at);
            }
            self.key_of.push(k);
        }
    }

    fn rekey(&mut self, at: usize, new: Option<String>) {
        if self.key_of[at] == new {
            return;
        }
        if let Some(old) = self.key_of[at].take() {
            if let Some(list) = self.positions.get_mut(&old) {
                list.retain(|&p| p != at);
            }
        }
        if let Some(k) = &new {
            let list = self.positions.entry(k.clone()).or_default();
            let place = list.partition_point(|&p| p < at);
            list.insert(place, at);
        }
        self.key_of[at] = new;
    }

    /// The positions of the records holding any of `values`, in the order records are kept;
    /// `None` when a value is not text (the caller tests every record instead).
    pub(super) fn find(&self, values: &[Value]) -> Option<Vec<usize>> {
        let mut found = Vec::new();
        for value in values {
            let k = key(Some(value))?;
            found.extend(self.positions.get(&k).into_iter().flatten());
        }
        found.sort_unstable();
        found.dedup();
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn lookups_follow_appends_and_updates_and_ignore_case() {
        let mut records = vec![
            rec(json!({"Domain": "a.io"})),
            rec(json!({"Domain": "B.io"})),
            rec(json!({"Domain": null})),
        ];
        let mut updated = Vec::new();
        let mut index = FieldIndex::default();
        index.refresh("Domain", &records, &updated);
        assert_eq!(index.find(&[json!("b.IO")]), Some(vec![1]));
        assert_eq!(
            index.find(&[json!("a.io"), json!("b.io"), json!("x")]),
            Some(vec![0, 1])
        );
        assert_eq!(
            index.find(&[json!(3)]),
            None,
            "not text: every record is tested"
        );

        records.push(rec(json!({"Domain": "a.io"})));
        records[1].insert("Domain".into(), json!("a.io"));
        records[0].insert("Domain".into(), json!("c.io"));
        updated.extend([1, 0]);
        index.refresh("Domain", &records, &updated);
        assert_eq!(
            index.find(&[json!("a.io")]),
            Some(vec![1, 3]),
            "in record order"
        );
        assert_eq!(index.find(&[json!("b.io")]), Some(vec![]));
        assert_eq!(index.find(&[json!("c.io")]), Some(vec![0]));

        records[2].insert("Domain".into(), json!("a.io"));
        updated.push(2);
        index.refresh("Domain", &records, &updated);
        assert_eq!(index.find(&[json!("A.io")]), Some(vec![1, 2, 3]));
    }
}
