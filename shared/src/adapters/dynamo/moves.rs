//! Forwarding notes of ledger keys: a Salesforce-only pair that got its Gainsight twin moves from
//! `sf:<Id>` to its GSID; the note `MOVED#{job}` / `sf:<Id>` (holding `to`) tells a write mapped
//! before the move where the pair went, and tells the mapper which pair a change naming only the
//! Salesforce Id belongs to (a change event carries only the fields that changed, not the GSID).
//! Notes are kept for as long as the pair: a change event may come years later.

use super::*;

/// The key of the note of `from` in `job`.
pub(super) fn note_key(job: &str, from: &LedgerKey) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("MOVED#{job}"))),
        ("sk".into(), s(from.to_string())),
    ])
}

/// The writes that record `moves`: the placeholder ledger record deleted, the note put.
pub(super) fn requests(
    job: &str,
    moves: &[(LedgerKey, LedgerKey)],
    at_ms: i64,
) -> Result<Vec<WriteRequest>, StoreError> {
    let mut requests = Vec::with_capacity(moves.len() * 2);
    for (from, to) in moves {
        let delete = DeleteRequest::builder()
            .set_key(Some(ledger_key(job, from)))
            .build()
            .map_err(rejected)?;
        requests.push(WriteRequest::builder().delete_request(delete).build());
        let mut note = note_key(job, from);
        note.insert("to".into(), s(to.to_string()));
        note.insert("moved_at".into(), n(at_ms));
        let put = PutRequest::builder()
            .set_item(Some(note))
            .build()
            .map_err(rejected)?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    Ok(requests)
}

/// The move a note records, `(from, to)`; `None` for an item that is not a readable note.
pub(super) fn of_note(item: &Item) -> Option<(LedgerKey, LedgerKey)> {
    let from = get_s(item, "sk")?.parse().ok()?;
    let to = get_s(item, "to")?.parse().ok()?;
    Some((from, to))
}
