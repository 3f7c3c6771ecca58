//! SQS adapter of the queue port: SendMessageBatch in groups of at most 10 messages and 256 KiB,
//! several groups at once, reporting each message's fate in the order given.

use async_trait::async_trait;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use crate::ports::{Queue, QueueError};

/// SQS accepts at most 10 entries per SendMessageBatch.
const BATCH: usize = 10;

/// The most a message, and a whole SendMessageBatch, may carry (256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// SendMessageBatch requests in flight at once: a 50,000-record event is 5,000 requests.
const CONCURRENT_BATCHES: usize = 64;

/// `bodies` cut into SendMessageBatch groups, in order: at most `BATCH` messages and
/// `MAX_MESSAGE_BYTES` each; a body too large for any group is a group of its own, refused
/// without being sent.
fn groups(bodies: &[String]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        let full = i - start == BATCH || bytes + body.len() > MAX_MESSAGE_BYTES;
        if i > start && full {
            groups.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        groups.push(start..bodies.len());
    }
    groups
}

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
        use futures_util::stream::{self, StreamExt};
        let sends = groups(bodies)
            .into_iter()
            .map(|range| self.send_group(&bodies[range], delay_s));
        stream::iter(sends)
            .buffered(CONCURRENT_BATCHES)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// One SendMessageBatch: each message's fate, in order.
    async fn send_group(
        &self,
        chunk: &[String],
        delay_s: Option<i32>,
    ) -> Vec<Result<(), QueueError>> {
        if let [body] = chunk {
            if body.len() > MAX_MESSAGE_BYTES {
                return vec![Err(QueueError::Rejected(format!(
                    "the message is {} bytes, over the queue's limit of {MAX_MESSAGE_BYTES}",
                    body.len()
                )))];
            }
        }
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
        let mut results: Vec<Result<(), QueueError>> = (0..chunk.len()).map(|_| Ok(())).collect();
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
                        if let Some(r) = results.get_mut(i) {
                            *r = Err(if failed.sender_fault() {
                                QueueError::Rejected(message)
                            } else {
                                QueueError::Unavailable(message)
                            });
                        }
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
                for r in &mut results {
                    *r = Err(QueueError::Unavailable(message.clone()));
                }
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_hold_ten_messages_and_256_kib_at_most() {
        let small: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(groups(&small), [0..10, 10..20, 20..25]);
        let big = "x".repeat(100_000);
        let mixed = vec![big.clone(), big.clone(), big.clone(), "y".into()];
        assert_eq!(
            groups(&mixed),
            [0..2, 2..4],
            "three 100 kB bodies do not fit together"
        );
        let huge = vec!["a".into(), "z".repeat(MAX_MESSAGE_BYTES + 1), "b".into()];
        assert_eq!(
            groups(&huge),
            [0..1, 1..2, 2..3],
            "a body too large stands alone"
        );
        assert!(groups(&[]).is_empty());
    }
}
