//! Lambda event helpers shared by the SQS-triggered functions.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

/// A partial batch response naming the messages to retry; every other message is deleted.
pub fn batch_response(failed_message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed_message_ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
