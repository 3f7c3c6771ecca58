//! Queues changes once however often they are delivered: claims each delivery's dedup key, sends
//! the changes of the new ones, then confirms what was queued and releases what was not, so a
//! retry of the delivery queues it. The webhook's routes and the poller all queue through here.

use crate::domain::{ChangeEvent, LineOutcome, Run, RunLine, Runs};
use crate::ports::{Claim, DedupStore, Queue, QueueError, Retryable, StoreError};

/// How long an unconfirmed claim holds off a redelivery; past it the claim is handed out again,
/// so a crash between claim and send cannot lose the event.
pub const RECLAIM_AFTER_MS: i64 = 60_000;
/// How long a dedup key is kept (the table's TTL), in seconds: longer than any source retries.
pub const DEDUP_TTL_S: i64 = 7 * 86_400;

/// Changes that arrived under one dedup key: a Gainsight event, one Outbound Message
/// notification, or one polled record version.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub key: String,
    pub changes: Vec<ChangeEvent>,
}

impl Delivery {
    /// A delivery of one change, keyed by its event id.
    pub fn single(change: ChangeEvent) -> Self {
        Self {
            key: change.event_id.clone(),
            changes: vec![change],
        }
    }
}

/// What was queued.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// Changes sent to the queue.
    pub queued: usize,
    /// Deliveries already queued before: dropped.
    pub duplicates: usize,
    /// Their keys.
    pub duplicate_keys: Vec<String>,
}

/// Puts what `enqueue` did with `deliveries` into `job`'s run: a line per change, queued or a
/// duplicate, or the error that stopped it.
pub fn record_run(
    runs: &mut Runs,
    job: Option<&str>,
    deliveries: &[Delivery],
    result: &Result<Enqueued, EnqueueError>,
) {
    let enqueued = match result {
        Ok(enqueued) => enqueued,
        Err(e) => return runs.fail(job, e.to_string()),
    };
    for d in deliveries {
        let duplicate = enqueued.duplicate_keys.contains(&d.key);
        for change in &d.changes {
            let line = if duplicate {
                RunLine::new(&change.record_id, LineOutcome::Duplicate)
                    .message(format!("delivery {} was queued before", d.key))
            } else {
                RunLine::new(&change.record_id, LineOutcome::Queued)
            };
            runs.line(job, line);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("state store unavailable, retry: {0}")]
    Store(#[from] StoreError),
    #[error("{failed} of {total} changes could not be queued, retry: {first}")]
    Queue {
        failed: usize,
        total: usize,
        first: String,
    },
    #[error("{count} deliveries are being queued by another request that has not finished (first: {first}); retry in a moment")]
    InFlight { count: usize, first: String },
    /// The queue refused a change as it is (too large): sending it again cannot help.
    #[error("{failed} of {total} changes were refused by the queue: {first}")]
    Refused {
        failed: usize,
        total: usize,
        first: String,
    },
}

impl Retryable for EnqueueError {
    fn is_retryable(&self) -> bool {
        !matches!(self, EnqueueError::Refused { .. })
    }
}

/// Queues waiting changes again (`domain::waiting`), each remembering since when it waits: those
/// the queue took, to take out of the waiting store. A change that does not serialise stays
/// where it waits, said in the log.
pub async fn replay_waiting(
    queue: &dyn Queue,
    waiting: Vec<crate::domain::waiting::WaitingChange>,
) -> Vec<crate::domain::waiting::WaitingChange> {
    let mut bodies = Vec::with_capacity(waiting.len());
    let mut kept = Vec::with_capacity(waiting.len());
    for w in waiting {
        match serde_json::to_string(&w.replay()) {
            Ok(body) => {
                bodies.push(body);
                kept.push(w);
            }
            Err(e) => {
                tracing::error!(job = %w.job, error = %e, "waiting change does not serialise")
            }
        }
    }
    let results = queue.send(&bodies).await;
    kept.into_iter()
        .zip(results)
        .filter_map(|(w, r)| r.is_ok().then_some(w))
        .collect()
}

/// Queues the changes of every delivery not queued before.
pub async fn enqueue(
    dedup: &dyn DedupStore,
    queue: &dyn Queue,
    deliveries: &[Delivery],
    now_ms: i64,
) -> Result<Enqueued, EnqueueError> {
    let claimed = claim(dedup, deliveries, now_ms).await?;
    let sent = send(queue, deliveries, &claimed, Packing::Each).await;
    settle(dedup, &claimed.fresh, &sent.ok, now_ms, &[]).await;
    sent.result
}

/// `enqueue` for a caller whose run ends with it (a webhook delivery): each change's line goes
/// into `job`'s run in `runs`, and the finished runs are stored with the confirmations, in one
/// request, so recording the delivery costs no write of its own. `runs` is left empty; `packing`
/// says how the changes go on the queue.
pub async fn enqueue_recorded(
    dedup: &dyn DedupStore,
    queue: &dyn Queue,
    (deliveries, packing): (&[Delivery], Packing),
    now_ms: i64,
    (runs, job): (&mut Runs, Option<&str>),
) -> Result<Enqueued, EnqueueError> {
    let (fresh, sent) = match claim(dedup, deliveries, now_ms).await {
        Ok(claimed) => {
            let sent = send(queue, deliveries, &claimed, packing).await;
            (claimed.fresh, sent)
        }
        Err(e) => {
            let error = Err(EnqueueError::Store(e));
            (
                Vec::new(),
                Sent {
                    ok: Vec::new(),
                    result: error,
                },
            )
        }
    };
    record_run(runs, job, deliveries, &sent.result);
    let finished = runs.take().finish(crate::time::now_ms());
    settle(dedup, &fresh, &sent.ok, now_ms, &finished).await;
    sent.result
}

/// How the changes of a request's fresh deliveries go on the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// One message per change.
    Each,
    /// One message holding every change (a JSON array): an Outbound Message's notifications
    /// travel together, so the mapper reads their records back in one query, not one per
    /// consumer batch of ten.
    Together,
}

/// What sending the fresh deliveries did: per delivery whether all its changes were queued, and
/// the overall result.
struct Sent {
    ok: Vec<bool>,
    result: Result<Enqueued, EnqueueError>,
}

/// The queue messages of the fresh deliveries, each with the deliveries (by index in `fresh`)
/// whose changes it holds.
fn pack(fresh: &[&Delivery], packing: Packing) -> Vec<(String, Vec<usize>)> {
    match packing {
        Packing::Each => (fresh.iter().enumerate())
            .flat_map(|(i, d)| d.changes.iter().map(move |c| (body(c), vec![i])))
            .collect(),
        Packing::Together => {
            let all: Vec<&ChangeEvent> = fresh.iter().flat_map(|d| d.changes.iter()).collect();
            if all.is_empty() {
                return Vec::new();
            }
            // A list of changes always serialises, as each change does.
            let text = serde_json::to_string(&all).unwrap_or_default();
            vec![(text, (0..fresh.len()).collect())]
        }
    }
}

/// Sends the changes of the fresh deliveries (those of `deliveries` whose claim is new). A
/// delivery another request holds in flight makes the whole answer a retry: acknowledging it
/// would lose its changes if that request fails.
async fn send(
    queue: &dyn Queue,
    deliveries: &[Delivery],
    claimed: &Claimed<'_>,
    packing: Packing,
) -> Sent {
    let fresh = &claimed.fresh;
    let duplicate_keys: Vec<String> = deliveries
        .iter()
        .filter(|d| !fresh.iter().any(|f| std::ptr::eq(*f, *d)))
        .filter(|d| !claimed.in_flight.contains(&d.key))
        .map(|d| d.key.clone())
        .collect();
    let total: usize = fresh.iter().map(|d| d.changes.len()).sum();
    // Which deliveries each message holds, so a failed send releases their claims.
    let (texts, owners): (Vec<String>, Vec<Vec<usize>>) = pack(fresh, packing).into_iter().unzip();
    let results = queue.send(&texts).await;
    let mut ok = vec![true; fresh.len()];
    let (mut errors, mut refused) = (Vec::new(), Vec::new());
    for (owners, result) in owners.iter().zip(results) {
        let Err(e) = result else { continue };
        for owner in owners {
            ok[*owner] = false;
            let changes = fresh[*owner].changes.len();
            let failed = if matches!(e, QueueError::Rejected(_)) {
                &mut refused
            } else {
                &mut errors
            };
            failed.extend(std::iter::repeat_n(e.to_string(), changes));
        }
    }
    let result = match (errors.first(), claimed.in_flight.first()) {
        _ if !refused.is_empty() => Err(EnqueueError::Refused {
            failed: refused.len(),
            total,
            first: refused[0].clone(),
        }),
        (Some(first), _) => Err(EnqueueError::Queue {
            failed: errors.len(),
            total,
            first: first.clone(),
        }),
        (None, Some(first)) => Err(EnqueueError::InFlight {
            count: claimed.in_flight.len(),
            first: first.clone(),
        }),
        (None, None) => Ok(Enqueued {
            queued: total,
            duplicates: duplicate_keys.len(),
            duplicate_keys,
        }),
    };
    Sent { ok, result }
}

/// What claiming a request's deliveries found.
struct Claimed<'a> {
    /// Claimed now: to queue.
    fresh: Vec<&'a Delivery>,
    /// Keys another request claimed and has not confirmed yet.
    in_flight: Vec<String>,
}

/// The deliveries whose claim is new, claimed together. On a store failure, claims already taken
/// (a whole transaction of 100 is atomic, several are not) stay pending and are handed out again
/// after `RECLAIM_AFTER_MS`, so the retry of the delivery is not lost.
async fn claim<'a>(
    dedup: &dyn DedupStore,
    deliveries: &'a [Delivery],
    now_ms: i64,
) -> Result<Claimed<'a>, StoreError> {
    // A key listed twice in one request (an Outbound Message naming a notification twice) is
    // one delivery, its last listing: claimed twice, the second would wait on the first for ever.
    let last: Vec<&'a Delivery> = deliveries
        .iter()
        .enumerate()
        .filter(|(i, d)| !deliveries[i + 1..].iter().any(|later| later.key == d.key))
        .map(|(_, d)| d)
        .collect();
    let keys: Vec<String> = last.iter().map(|d| d.key.clone()).collect();
    let claims = dedup
        .claim_events(&keys, now_ms, RECLAIM_AFTER_MS, DEDUP_TTL_S)
        .await?;
    let mut claimed = Claimed {
        fresh: Vec::new(),
        in_flight: Vec::new(),
    };
    for (d, claim) in last.into_iter().zip(claims) {
        match claim {
            Claim::New => claimed.fresh.push(d),
            Claim::Pending => claimed.in_flight.push(d.key.clone()),
            Claim::Duplicate => {}
        }
    }
    Ok(claimed)
}

/// Confirms the deliveries queued whole (storing `runs` with them) and releases the others. Neither
/// is fatal: an unconfirmed claim is handed out again after `RECLAIM_AFTER_MS`, and the writes
/// downstream are idempotent, so a second copy costs a call, not correctness.
async fn settle(
    dedup: &dyn DedupStore,
    deliveries: &[&Delivery],
    queued: &[bool],
    now_ms: i64,
    runs: &[Run],
) {
    let keys = |want: bool| -> Vec<String> {
        deliveries
            .iter()
            .zip(queued)
            .filter(|(_, q)| **q == want)
            .map(|(d, _)| d.key.clone())
            .collect()
    };
    let (done, back) = (keys(true), keys(false));
    if !runs.is_empty() {
        let confirmed = dedup
            .confirm_events_with_runs(&done, now_ms, DEDUP_TTL_S, runs)
            .await;
        if let Err(e) = confirmed {
            tracing::warn!(events = done.len(), runs = runs.len(), error = %e, "dedup keys and runs not stored; a redelivery may queue again");
        }
    } else if !done.is_empty() {
        if let Err(e) = dedup.confirm_events(&done, now_ms, DEDUP_TTL_S).await {
            tracing::warn!(events = done.len(), error = %e, "dedup keys not confirmed; a redelivery may queue again");
        }
    }
    if !back.is_empty() {
        if let Err(e) = dedup.release_events(&back).await {
            tracing::warn!(events = back.len(), error = %e, "dedup keys not released; a retry waits for them to expire");
        }
    }
}

/// The changes of a queue message the sync wrote: one change, or a list of them (`Packing`).
pub fn unpack(body: &str) -> Result<Vec<ChangeEvent>, serde_json::Error> {
    if body.trim_start().starts_with('[') {
        serde_json::from_str(body)
    } else {
        serde_json::from_str(body).map(|c| vec![c])
    }
}

fn body(change: &ChangeEvent) -> String {
    // A change is strings, numbers and JSON values keyed by strings: it always serialises.
    serde_json::to_string(change).unwrap_or_default()
}

#[cfg(all(test, feature = "fakes"))]
mod tests {
    use super::*;
    use crate::domain::{SourceRecord, System};
    use crate::fakes::{MemoryQueue, MemoryStore};

    fn delivery(key: &str, ids: &[&str]) -> Delivery {
        let changes = ids
            .iter()
            .map(|id| {
                let record = SourceRecord {
                    source: System::Gainsight,
                    object: "Company".into(),
                    id: id.to_string(),
                    fields: Default::default(),
                };
                ChangeEvent::polled(record, "j", 1, 2)
            })
            .collect();
        Delivery {
            key: key.into(),
            changes,
        }
    }

    #[tokio::test]
    async fn a_delivery_is_queued_once() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let first = enqueue(&store, &queue, &[delivery("e1", &["A", "B"])], 0).await;
        assert_eq!(
            first.unwrap(),
            Enqueued {
                queued: 2,
                duplicates: 0,
                duplicate_keys: vec![],
            }
        );
        let again = vec![delivery("e1", &["A", "B"]), delivery("e2", &["C"])];
        let second = enqueue(&store, &queue, &again, 1).await;
        assert_eq!(
            second.as_ref().unwrap(),
            &Enqueued {
                queued: 1,
                duplicates: 1,
                duplicate_keys: vec!["e1".into()],
            }
        );
        let mut runs = Runs::new(crate::domain::RunFunction::Webhook, "test", 1, "s");
        record_run(&mut runs, None, &again, &second);
        let run = runs.finish(2).remove(0);
        let outcomes: Vec<_> = run
            .log
            .iter()
            .map(|l| (l.record.as_str(), l.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("A", LineOutcome::Duplicate),
                ("B", LineOutcome::Duplicate),
                ("C", LineOutcome::Queued)
            ]
        );
        assert_eq!(queue.bodies().len(), 3);
    }

    /// Packed together, the fresh deliveries' changes are one message: a failed send releases
    /// every delivery in it, and the retry sends them together again.
    #[tokio::test]
    async fn deliveries_packed_together_are_one_message_queued_or_released_whole() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        let three = vec![
            delivery("n1", &["A"]),
            delivery("n2", &["B"]),
            delivery("n3", &["C"]),
        ];
        let mut runs = Runs::new(crate::domain::RunFunction::Webhook, "test", 1, "s");
        let packed = (three.as_slice(), Packing::Together);
        *queue.fail_containing.lock().unwrap() = Some("\"B\"".into());
        let err = enqueue_recorded(&store, &queue, packed, 0, (&mut runs, None)).await;
        assert!(
            matches!(
                err,
                Err(EnqueueError::Queue {
                    failed: 3,
                    total: 3,
                    ..
                })
            ),
            "{err:?}"
        );
        *queue.fail_containing.lock().unwrap() = None;
        let retry = enqueue_recorded(&store, &queue, packed, 1, (&mut runs, None)).await;
        assert_eq!(retry.unwrap().queued, 3);
        let bodies = queue.bodies();
        assert_eq!(bodies.len(), 1, "{bodies:?}");
        let ids: Vec<String> = (unpack(&bodies[0]).unwrap().into_iter())
            .map(|c| c.record_id)
            .collect();
        assert_eq!(ids, ["A", "B", "C"]);
        assert_eq!(
            unpack(&body(&three[0].changes[0])).unwrap().len(),
            1,
            "one change alone"
        );
    }

    #[tokio::test]
    async fn what_was_not_queued_is_released_for_the_retry() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        *queue.fail_containing.lock().unwrap() = Some("\"B\"".into());
        let both = vec![delivery("e1", &["A"]), delivery("e2", &["B"])];
        let err = enqueue(&store, &queue, &both, 0).await.unwrap_err();
        assert!(
            matches!(
                err,
                EnqueueError::Queue {
                    failed: 1,
                    total: 2,
                    ..
                }
            ),
            "{err}"
        );
        *queue.fail_containing.lock().unwrap() = None;
        let retry = enqueue(&store, &queue, &both, 1).await.unwrap();
        assert_eq!(
            retry,
            Enqueued {
                queued: 1,
                duplicates: 1,
                duplicate_keys: vec!["e1".into()],
            },
            "only e2 again"
        );
    }

    #[tokio::test]
    async fn a_delivery_another_request_holds_is_retried_not_acknowledged() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        // Another request claimed e1 and died before queueing or releasing it.
        let claim = store.claim_event("e1", 0, RECLAIM_AFTER_MS, DEDUP_TTL_S);
        assert_eq!(claim.await.unwrap(), Claim::New);
        let both = vec![delivery("e1", &["A"]), delivery("e2", &["B"])];
        let err = enqueue(&store, &queue, &both, 1).await.unwrap_err();
        assert!(
            matches!(&err, EnqueueError::InFlight { count: 1, first } if first == "e1"),
            "{err}"
        );
        assert!(err.is_retryable());
        assert_eq!(queue.bodies().len(), 1, "e2 is queued all the same");
        // The sender's retry once the dead request's claim is handed out again.
        let retry = enqueue(&store, &queue, &both, RECLAIM_AFTER_MS + 2)
            .await
            .unwrap();
        assert_eq!(retry.queued, 1);
        assert_eq!(retry.duplicate_keys, vec!["e2".to_string()]);
        assert_eq!(queue.bodies().len(), 2);
    }

    #[tokio::test]
    async fn a_store_failure_queues_nothing() {
        let (store, queue) = (MemoryStore::default(), MemoryQueue::default());
        *store.fail.lock().unwrap() = true;
        let err = enqueue(&store, &queue, &[delivery("e1", &["A"])], 0).await;
        assert!(matches!(err, Err(EnqueueError::Store(_))));
        assert!(queue.bodies().is_empty());
    }
}
