//! SQS event-source emulator: does what Lambda's event source mapping does for a queue. It
//! long-polls, gathers up to the batch size within the batching window, invokes the handler with a
//! real `SqsEvent`, deletes the messages that succeeded and leaves the reported failures to come
//! back after their visibility timeout, so the queue's redrive policy moves them to the DLQ.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use tokio::sync::watch;

pub type Handler = Arc<
    dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = Result<SqsBatchResponse, String>> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone, Debug)]
pub struct Settings {
    pub queue_url: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_batch_item_failures: bool,
    /// Lambda leaves a failed message invisible for the queue's whole visibility timeout. Locally
    /// that is minutes; `Some(d)` shortens it to `d` (receive counts, and so the DLQ redrive, are
    /// unchanged).
    pub retry_after: Option<Duration>,
    /// Batches gathered and handled at once, as Lambda's pollers do when the queue has a backlog
    /// (the mapping's maximum concurrency); at least 1.
    pub concurrency: usize,
    /// Faults of the delivery itself, for soak tests; none by default.
    pub faults: DeliveryFaults,
}

/// How often a batching window with less than a second left looks for more messages. Lambda
/// does not document its pollers' receives; a long poll cannot be shorter than a second.
const WINDOW_POLL: Duration = Duration::from_millis(100);

/// Faults of the delivery, at chosen rates (0 to 1): a function that crashes after its writes and
/// before the ack (the whole batch is handled, then nothing is deleted, so every message comes
/// again), and messages delivered twice (one handled successfully is left undeleted, so it comes
/// again later, as SQS's at-least-once delivery may do).
#[derive(Clone, Copy, Debug, Default)]
pub struct DeliveryFaults {
    pub crash_after_handler: f64,
    pub duplicate: f64,
}

/// How often each delivery fault was injected, so a soak can tell one that never happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFaultCounts {
    /// Batches handled and then not acknowledged (every message comes again).
    pub crashes: u64,
    /// Messages handled and left undeleted, to be delivered again.
    pub duplicates: u64,
}

#[derive(Default)]
struct Injected {
    crashes: AtomicU64,
    duplicates: AtomicU64,
}

pub struct EventSource {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    injected: Arc<Injected>,
}

impl EventSource {
    pub async fn start(
        client: Client,
        settings: Settings,
        handler: Handler,
    ) -> anyhow::Result<Self> {
        let attrs = client
            .get_queue_attributes()
            .queue_url(&settings.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        let (stop, stopped) = watch::channel(false);
        let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_string();
        let injected = Arc::new(Injected::default());
        let mapping = Arc::new(Mapping {
            client,
            settings,
            arn,
            region,
            handler,
            injected: Arc::clone(&injected),
        });
        // Each poller gathers and handles its own batches: several batches are in flight at once
        // when the queue has a backlog, one at a time when it trickles.
        let tasks = (0..mapping.settings.concurrency.max(1))
            .map(|_| tokio::spawn(run(Arc::clone(&mapping), stopped.clone())))
            .collect();
        Ok(Self {
            stop,
            tasks,
            injected,
        })
    }

    /// The delivery faults injected so far.
    pub fn faults_injected(&self) -> DeliveryFaultCounts {
        DeliveryFaultCounts {
            crashes: self.injected.crashes.load(Ordering::Relaxed),
            duplicates: self.injected.duplicates.load(Ordering::Relaxed),
        }
    }

    /// Stops polling and waits for the batches in flight to finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// One poller: gathers a batch, hands it to the function, deletes what succeeded.
async fn run(mapping: Arc<Mapping>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        let Some(batch) = mapping.gather(&mut stopped).await else {
            return;
        };
        if batch.is_empty() {
            continue;
        }
        let failed = mapping.invoke(&batch).await;
        let faults = mapping.settings.faults;
        if crate::chaos::chance(faults.crash_after_handler) {
            mapping.injected.crashes.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                messages = batch.len(),
                "event source: injected crash between the writes and the ack"
            );
            let all: Vec<&Message> = batch.iter().collect();
            mapping.retry_soon(&all).await;
            continue;
        }
        let is_failed = |m: &&Message| failed.iter().any(|f| Some(f.as_str()) == m.message_id());
        let (back, done): (Vec<&Message>, Vec<&Message>) = batch.iter().partition(is_failed);
        // A duplicate: handled, yet left to be delivered again.
        let (again, done): (Vec<&Message>, Vec<&Message>) = done
            .into_iter()
            .partition(|_| crate::chaos::chance(faults.duplicate));
        (mapping.injected.duplicates).fetch_add(again.len() as u64, Ordering::Relaxed);
        mapping.delete(&done).await;
        mapping.retry_soon(&back).await;
        mapping.retry_soon(&again).await;
    }
}

/// One event source mapping: a queue, its settings and the function it invokes.
struct Mapping {
    client: Client,
    settings: Settings,
    arn: String,
    region: String,
    handler: Handler,
    injected: Arc<Injected>,
}

impl Mapping {
    /// The next batch, as Lambda gathers it: once a message is in hand, keep receiving until the
    /// batch is full or the batching window has passed since the first one: at once while
    /// messages come, else long-polling for the whole seconds the window has left, then every
    /// `WINDOW_POLL`, and one last look when it closes. `None` when stopped.
    async fn gather(&self, stopped: &mut watch::Receiver<bool>) -> Option<Vec<Message>> {
        let mut batch: Vec<Message> = Vec::new();
        let mut first_at: Option<Instant> = None;
        let mut flowing = false;
        loop {
            let remaining = self.settings.batch_size.saturating_sub(batch.len()).min(10) as i32;
            let left = first_at.map(|t| self.settings.batching_window.saturating_sub(t.elapsed()));
            if remaining == 0 || left == Some(Duration::ZERO) {
                return Some(batch);
            }
            let (wait, last_look) = match left {
                // Lambda's pollers long-poll for up to 20 s: an idle queue costs a receive
                // every 20 s per poller, not one a second.
                None => (20, false),
                Some(_) if flowing => (0, false),
                Some(left) if left >= Duration::from_secs(1) => (left.as_secs() as i32, false),
                // A long poll lasts whole seconds: under one left, look again every
                // `WINDOW_POLL` until the window closes, and once more when it does.
                Some(left) => {
                    tokio::time::sleep(left.min(WINDOW_POLL)).await;
                    (0, left <= WINDOW_POLL)
                }
            };
            let messages = self.receive(remaining, wait, stopped).await?;
            if messages.is_empty() && first_at.is_none() {
                // Nothing in hand yet: the long poll already waited; poll again.
                return Some(batch);
            }
            first_at.get_or_insert_with(Instant::now);
            flowing = !messages.is_empty();
            batch.extend(messages);
            if last_look {
                return Some(batch);
            }
        }
    }

    /// One receive of up to `max` messages, long-polling `wait` seconds; a failed one is an
    /// empty one, after a pause. `None` when stopped.
    async fn receive(
        &self,
        max: i32,
        wait: i32,
        stopped: &mut watch::Receiver<bool>,
    ) -> Option<Vec<Message>> {
        let receive = self
            .client
            .receive_message()
            .queue_url(&self.settings.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send();
        let received = tokio::select! {
            r = receive => r,
            _ = stopped.changed() => return None,
        };
        match received {
            Ok(out) => Some(out.messages().to_vec()),
            Err(e) => {
                tracing::warn!(error = %e, "event source: receive failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some(Vec::new())
            }
        }
    }

    /// Invokes the handler with the batch as a real `SqsEvent`; the ids of the messages to retry.
    async fn invoke(&self, batch: &[Message]) -> Vec<String> {
        let mut event = SqsEvent::default();
        event.records = batch
            .iter()
            .map(|m| to_event_message(m, &self.arn, &self.region))
            .collect();
        let ids: Vec<String> = event
            .records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .collect();
        match (self.handler)(event).await {
            Ok(resp) if self.settings.report_batch_item_failures => resp
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Ok(_) => vec![],
            // A function error fails the whole batch, as on Lambda.
            Err(e) => {
                tracing::warn!(error = %e, "event source: handler failed; whole batch returns to the queue");
                ids
            }
        }
    }

    /// Deletes the messages the function handled, ten a request.
    async fn delete(&self, done: &[&Message]) {
        for chunk in done.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            let deleted = self
                .client
                .delete_message_batch()
                .queue_url(&self.settings.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match deleted {
                Err(e) => {
                    tracing::warn!(error = %e, "event source: delete failed; messages will be redelivered");
                }
                // SQS answers 200 with the entries it could not delete listed apart.
                Ok(out) if !out.failed().is_empty() => {
                    let codes: Vec<&str> = out.failed().iter().map(|f| f.code()).collect();
                    tracing::warn!(failed = codes.len(), codes = ?codes, "event source: some deletes failed; those messages will be redelivered");
                }
                Ok(_) => {}
            }
        }
    }

    /// Shortens the invisibility of the messages to retry, when the settings say so.
    async fn retry_soon(&self, back: &[&Message]) {
        let Some(after) = self.settings.retry_after else {
            return;
        };
        for m in back {
            let _ = self
                .client
                .change_message_visibility()
                .queue_url(&self.settings.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(after.as_secs() as i32)
                .send()
                .await;
        }
    }
}

fn to_event_message(m: &Message, arn: &str, region: &str) -> SqsMessage {
    let mut out = SqsMessage::default();
    out.message_id = m.message_id().map(str::to_string);
    out.receipt_handle = m.receipt_handle().map(str::to_string);
    out.body = m.body().map(str::to_string);
    out.md5_of_body = m.md5_of_body().map(str::to_string);
    out.attributes = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.event_source = Some("aws:sqs".into());
    out.event_source_arn = Some(arn.to_string());
    out.aws_region = Some(region.to_string());
    out
}
