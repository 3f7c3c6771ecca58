//! Outbound Messages: the SOAP `notifications` a workflow rule posts for every created or edited
//! record of a configured object, retried with backoff until the listener answers `Ack` true.

use super::*;
use std::sync::Weak;

/// One SOAP message to send: the action and up to 100 notifications.
pub(super) struct OutboundSend {
    url: String,
    body: String,
}

pub(super) fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl Org {
    /// The Outbound Messages due for `records` of `object`, 100 notifications a message.
    pub(super) fn outbound_for(
        &mut self,
        object: &str,
        records: &[Record],
        author: Author,
    ) -> Vec<OutboundSend> {
        let configs: Vec<OutboundMessage> = self
            .outbound
            .iter()
            .filter(|m| m.object == object)
            .filter(|m| !(m.skip_integration_user && author == Author::IntegrationUser))
            .cloned()
            .collect();
        let mut sends = Vec::new();
        for config in configs {
            for chunk in records.chunks(100) {
                let mut notifications = String::new();
                for record in chunk {
                    self.seq += 1;
                    let notification_id = format!("04l5g00{:011}", self.seq);
                    let mut fields = String::new();
                    let mut names = vec!["Id".to_string()];
                    names.extend(config.fields.iter().filter(|f| f.as_str() != "Id").cloned());
                    for name in names {
                        match record.get(&name) {
                            None | Some(Value::Null) => {
                                fields.push_str(&format!("<sf:{name} xsi:nil=\"true\"/>"))
                            }
                            Some(Value::String(v)) => fields
                                .push_str(&format!("<sf:{name}>{}</sf:{name}>", xml_escape(v))),
                            Some(other) => {
                                fields.push_str(&format!("<sf:{name}>{other}</sf:{name}>"))
                            }
                        }
                    }
                    notifications.push_str(&format!(
                        "<Notification><Id>{notification_id}</Id><sObject xsi:type=\"sf:{object}\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">{fields}</sObject></Notification>"
                    ));
                }
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<soapenv:Body><notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\
<OrganizationId>{ORGANIZATION_ID}</OrganizationId><ActionId>04k5g0000000EMUAAA</ActionId>\
<SessionId xsi:nil=\"true\"/><EnterpriseUrl>{url}/services/Soap/c/62.0/{ORGANIZATION_ID}</EnterpriseUrl>\
<PartnerUrl>{url}/services/Soap/u/62.0/{ORGANIZATION_ID}</PartnerUrl>{notifications}</notifications></soapenv:Body></soapenv:Envelope>",
                    url = self.instance_url
                );
                sends.push(OutboundSend {
                    url: config.url.clone(),
                    body,
                });
            }
        }
        sends
    }
}

pub(super) fn spawn_outbound(org: &Arc<Mutex<Org>>, sends: Vec<OutboundSend>) {
    for send in sends {
        tokio::spawn(deliver_outbound(Arc::downgrade(org), send));
    }
}

/// One HTTP client for every delivery, so attempts reuse their connections.
fn http() -> &'static reqwest::Client {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(reqwest::Client::new)
}

/// How long Salesforce keeps trying an Outbound Message the listener does not acknowledge.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Posts one Outbound Message until the listener acknowledges it or it is 24 hours old, as
/// Salesforce does; the waits between attempts are shorter here (from 100 ms, doubling to 5 s,
/// where Salesforce's grow to 2 hours). A message's delivery ends with its org: once the
/// emulator is dropped, nothing of it keeps posting to a listener that may be another stack's.
pub(super) async fn deliver_outbound(org: Weak<Mutex<Org>>, send: OutboundSend) {
    let mut wait = Duration::from_millis(100);
    let queued = tokio::time::Instant::now();
    while queued.elapsed() < GIVE_UP_AFTER {
        if org.strong_count() == 0 {
            return;
        }
        let answer = http()
            .post(&send.url)
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"\"")
            .body(send.body.clone())
            .send()
            .await;
        let acked = match answer {
            Ok(r) if r.status().is_success() => r
                .text()
                .await
                .map(|t| t.replace(' ', "").contains("Ack>true</"))
                .unwrap_or(false),
            _ => false,
        };
        let Some(org) = org.upgrade() else {
            return;
        };
        if acked {
            lock(&org).stats.outbound_acked += 1;
            return;
        }
        lock(&org).stats.outbound_failures += 1;
        drop(org);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    tracing::warn!(url = %send.url, "outbound message dropped: not acknowledged within 24 hours");
    if let Some(org) = org.upgrade() {
        lock(&org).stats.outbound_given_up += 1;
    }
}
