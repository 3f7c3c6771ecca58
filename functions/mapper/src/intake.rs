//! A batch's messages as changes: the sync's own (queued by the webhook, the poller or a
//! resync; one change a message, or an Outbound Message's hints together) and Salesforce change events that EventBridge put on `changes` (read by
//! `domain::cdc`). A message that is neither fails alone.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shared::domain::cdc::{self, Relayed, RelayedEvent};
use shared::domain::ChangeEvent;

use crate::give_up::Failures;

/// What a batch's messages hold.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    pub(crate) changes: Vec<(String, ChangeEvent)>,
    pub(crate) failed: Failures,
    /// `GAP_OVERFLOW` events: (message id, object, changed since).
    pub(crate) overflows: Vec<(String, String, i64)>,
    /// Change events of the integration user's own writes, dropped.
    pub(crate) echoes: usize,
}

/// Reads `event`'s messages; `integration_user` is the Salesforce user the sync writes as.
pub(crate) fn read(event: SqsEvent, integration_user: Option<&str>, now_ms: i64) -> Intake {
    let mut intake = Intake::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let Some(body) = message.body.as_deref() else {
            tracing::error!(message_id = %id, "message has no body; expected a change");
            intake.failed.push((id, "the message has no body".into()));
            continue;
        };
        if !cdc::is_relayed(body) {
            match shared::enqueue::unpack(body) {
                Ok(changes) => intake
                    .changes
                    .extend(changes.into_iter().map(|c| (id.clone(), c))),
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "message is not a valid change event");
                    let why = format!("the message is not a change event: {e}");
                    intake.failed.push((id, why));
                }
            }
            continue;
        }
        let arrived = sent_at(&message).unwrap_or(now_ms).min(now_ms);
        let relayed = serde_json::from_str::<RelayedEvent>(body)
            .map_err(|e| e.to_string())
            .and_then(|e| cdc::changes_of(e, integration_user, arrived).map_err(|e| e.to_string()));
        match relayed {
            Ok(Relayed::Changes(changes)) => {
                intake
                    .changes
                    .extend(changes.into_iter().map(|c| (id.clone(), c)));
            }
            Ok(Relayed::Echo { object, records }) => {
                tracing::info!(message_id = %id, object = %object, records, "change event of the sync's own write dropped");
                intake.echoes += records;
            }
            Ok(Relayed::Overflow { object, since_ms }) => {
                intake.overflows.push((id, object, since_ms));
            }
            Err(why) => {
                tracing::error!(message_id = %id, error = %why, "message is not a Salesforce change event the sync can read");
                let why = format!("the Salesforce change event cannot be read: {why}");
                intake.failed.push((id, why));
            }
        }
    }
    intake
}

/// When the message was put on the queue (SQS's `SentTimestamp`, epoch ms).
fn sent_at(message: &SqsMessage) -> Option<i64> {
    message.attributes.get("SentTimestamp")?.parse().ok()
}
