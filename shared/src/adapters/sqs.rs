//! SQS adapter of the queue port: SendMessageBatch in groups of 10, reporting each message's fate.

use async_trait::async_trait;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use crate::ports::{Queue, QueueError};

/// SQS accepts at most 10 entries per SendMessageBatch.
const BATCH: usize = 10;

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

/// SQS delays a message at most 15 minutes.
const MAX_DELAY_S: u64 = 900;

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, bodies: &[String]) -> Vec<Result<(), QueueError>> {
        self.send_with_delay(bodies, None).await
    }

    async fn send_later(
        &self,
        bodies: &[String],
        delay: std::time::Duration,
    ) -> Vec<Result<(), QueueError>> {
        let seconds = delay.as_secs().min(MAX_DELAY_S) as i32;
        self.send_with_delay(bodies, Some(seconds)).await
    }
}

impl SqsQueue {
    async fn send_with_delay(
        &self,
        bodies: &[String],
        delay_s: Option<i32>,
    ) -> Vec<Result<(), QueueError>> {
        let mut results = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(BATCH) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .set_delay_seconds(delay_s)
                        .build()
                })
                .collect::<Result<_, _>>()
                .unwrap_or_default();
            let mut chunk_results: Vec<Result<(), QueueError>> =
                (0..chunk.len()).map(|_| Ok(())).collect();
            match self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for failed in out.failed() {
                        if let Ok(i) = failed.id().parse::<usize>() {
                            let message =
                                format!("{}: {}", failed.code(), failed.message().unwrap_or(""));
                            chunk_results[i] = Err(if failed.sender_fault() {
                                QueueError::Rejected(message)
                            } else {
                                QueueError::Unavailable(message)
                            });
                        }
                    }
                }
                Err(err) => {
                    let message = match err.code() {
                        Some(code) => format!("{code}: {}", err.message().unwrap_or("")),
                        None => format!(
                            "{err}: {}",
                            std::error::Error::source(&err)
                                .map(|e| e.to_string())
                                .unwrap_or_default()
                        ),
                    };
                    for r in &mut chunk_results {
                        *r = Err(QueueError::Unavailable(message.clone()));
                    }
                }
            }
            results.extend(chunk_results);
        }
        results
    }
}
