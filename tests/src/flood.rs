//! A flood at the public endpoint while genuine changes arrive: attackers post well-formed
//! Gainsight events with wrong signatures as fast as they can, while a sender that signs its
//! events posts changes of Companies at a steady rate and sends each again after a throttle, up
//! to `GENUINE_TRIES` times (a delivery given up is left to the job's scheduled poll, which reads
//! the record from Gainsight). What the webhook answered each, and when each genuine change was
//! synced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::{signed_post, Stack, WEBHOOK_SECRET};

/// What the flood and the genuine stream got.
#[derive(Debug, Default)]
pub struct FloodReport {
    /// Forged requests sent, and how the webhook answered them.
    pub forged: usize,
    pub forged_throttled: usize,
    pub forged_refused: usize,
    /// Forged requests answered anything else (2xx above all: must stay 0).
    pub forged_other: usize,
    /// How long the flood ran.
    pub flood_ms: u64,
    /// Genuine changes sent, their throttled attempts, those given up after `GENUINE_TRIES`,
    /// and when each was first sent (by GSID).
    pub genuine: usize,
    pub genuine_throttled: usize,
    pub genuine_given_up: usize,
    pub sent_at: HashMap<String, i64>,
}

/// A change of Company `gsid` (created, not yet in Salesforce) as a Gainsight rule posts it.
fn event(id: &str, gsid: &str) -> String {
    json!({
        "eventId": id, "eventType": "created", "objectName": "Company",
        "occurredAt": shared::time::now_ms(),
        "records": [{"Gsid": gsid, "Name": format!("Flooded {gsid}"), "Arr": 1}]
    })
    .to_string()
}

/// How many times the genuine sender posts a change that is throttled.
pub const GENUINE_TRIES: usize = 5;

/// Posts one signed change of `gsid`, again 200 ms after each 429, at most `GENUINE_TRIES`
/// times; the number of throttled attempts, and whether it was delivered.
async fn send_genuine(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    gsid: &str,
) -> Result<(usize, bool)> {
    let mut throttled = 0;
    while throttled < GENUINE_TRIES {
        let resp = signed_post(http, url, WEBHOOK_SECRET, event(id, gsid))
            .send()
            .await?;
        match resp.status().as_u16() {
            200 => return Ok((throttled, true)),
            429 => {
                throttled += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            status => anyhow::bail!("the webhook answered a genuine change {status}"),
        }
    }
    Ok((throttled, false))
}

/// One attacker: forged events back to back until `stop`.
async fn forge(
    http: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
    counts: Arc<[AtomicUsize; 4]>,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = event(&format!("forged-{n}"), "1P02FORGED0000000001");
        let sent = signed_post(&http, &url, "not-the-secret", body)
            .send()
            .await;
        let slot = match sent.map(|r| r.status().as_u16()) {
            Ok(429) => 1,
            Ok(401) => 2,
            _ => 3,
        };
        counts[0].fetch_add(1, Ordering::Relaxed);
        counts[slot].fetch_add(1, Ordering::Relaxed);
    }
}

/// Floods `stack`'s webhook with `attackers` concurrent forgers while changes of `gsids` are sent
/// at `rate` a second; the flood stops once every genuine change was accepted.
pub async fn flood(
    stack: &Stack,
    gsids: &[String],
    rate: u64,
    attackers: usize,
) -> Result<FloodReport> {
    let url = format!("{}/gainsight", stack.webhook_url());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(attackers + 16)
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let started = std::time::Instant::now();
    let forgers: Vec<_> = (0..attackers)
        .map(|_| {
            tokio::spawn(forge(
                http.clone(),
                url.clone(),
                stop.clone(),
                counts.clone(),
            ))
        })
        .collect();
    // The flood is on before the first genuine change.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut report = FloodReport::default();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let mut senders = Vec::with_capacity(gsids.len());
    for (i, gsid) in gsids.iter().enumerate() {
        ticker.tick().await;
        report.sent_at.insert(gsid.clone(), shared::time::now_ms());
        let (http, url, gsid) = (http.clone(), url.clone(), gsid.clone());
        senders.push(tokio::spawn(async move {
            send_genuine(&http, &url, &format!("genuine-{i}"), &gsid).await
        }));
    }
    let mut failure = None;
    for sender in senders {
        match sender.await? {
            Ok((throttled, delivered)) => {
                report.genuine_throttled += throttled;
                report.genuine_given_up += usize::from(!delivered);
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for forger in forgers {
        forger.await?;
    }
    report.flood_ms = started.elapsed().as_millis() as u64;
    report.genuine = gsids.len();
    report.forged = counts[0].load(Ordering::Relaxed);
    report.forged_throttled = counts[1].load(Ordering::Relaxed);
    report.forged_refused = counts[2].load(Ordering::Relaxed);
    report.forged_other = counts[3].load(Ordering::Relaxed);
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}
