//! Lambda event helpers shared by the SQS-triggered functions.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

/// A partial batch response naming the messages to retry (each once, in id order); every other
/// message is deleted.
pub fn batch_response(failed_message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let unique: std::collections::BTreeSet<String> = failed_message_ids.into_iter().collect();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = unique
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_failed_message_once() {
        let r = batch_response(["b".to_string(), "a".into(), "b".into()]);
        let ids: Vec<_> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, vec!["a", "b"]);
    }
}
