//! The in-memory queue: what was sent, with delays, and switches that refuse chosen bodies.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{Queue, QueueError};

#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<String>>,
    /// Bodies containing this text are refused (retryable), to test partial failures.
    pub fail_containing: Mutex<Option<String>>,
    /// Bodies containing this text are refused as the sender's fault (not retryable).
    pub reject_containing: Mutex<Option<String>>,
    /// The delay of each `send_later` call.
    pub delays: Mutex<Vec<std::time::Duration>>,
}

impl MemoryQueue {
    pub fn bodies(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, bodies: &[String]) -> Vec<Result<(), QueueError>> {
        let fail = self.fail_containing.lock().unwrap().clone();
        let reject = self.reject_containing.lock().unwrap().clone();
        bodies
            .iter()
            .map(|b| match (&fail, &reject) {
                (Some(f), _) if b.contains(f.as_str()) => {
                    Err(QueueError::Unavailable("injected".into()))
                }
                (_, Some(r)) if b.contains(r.as_str()) => Err(QueueError::Rejected(
                    "injected: the message is too long".into(),
                )),
                _ => {
                    self.sent.lock().unwrap().push(b.clone());
                    Ok(())
                }
            })
            .collect()
    }

    async fn send_later(
        &self,
        bodies: &[String],
        delay: std::time::Duration,
    ) -> Vec<Result<(), QueueError>> {
        self.delays.lock().unwrap().push(delay);
        self.send(bodies).await
    }
}
