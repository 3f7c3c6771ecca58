//! Salesforce Outbound Messages: parses the SOAP `notifications` envelope (namespace
//! `http://soap.sforce.com/2005/09/outbound`, up to 100 `Notification`s each with an `Id` and an
//! `sObject`) and writes the SOAP `Ack` and `Fault` answers.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::Value;
use shared::domain::Fields;

pub const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";
/// Salesforce sends at most 100 notifications in one message.
pub const MAX_NOTIFICATIONS: usize = 100;

#[derive(Debug, PartialEq)]
pub struct Notification {
    /// The notification's own id: the dedup key.
    pub id: String,
    /// From the sObject's `xsi:type` (`sf:Account` gives `Account`).
    pub object: String,
    /// Every field element of the sObject; text values, `xsi:nil` as null.
    pub fields: Fields,
}

#[derive(Debug, PartialEq)]
pub struct Notifications {
    pub organization_id: String,
    pub action_id: Option<String>,
    pub notifications: Vec<Notification>,
}

fn local(name: &[u8]) -> &str {
    let name = std::str::from_utf8(name).unwrap_or_default();
    name.rsplit(':').next().unwrap_or(name)
}

fn attribute(e: &BytesStart, wanted: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (local(a.key.as_ref()) == wanted)
            .then(|| a.unescape_value().ok().map(|v| v.into_owned()))
            .flatten()
    })
}

/// Parses a `notifications` message; the error says what is wrong with it.
pub fn parse(xml: &str) -> Result<Notifications, String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut parser = Parser::default();
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.buffer_position()
            )
        })?;
        match event {
            Event::Start(e) => parser.start(&e)?,
            Event::Empty(e) => parser.empty(&e),
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| format!("bad text: {e}"))?;
                parser.text.push_str(&text);
            }
            Event::CData(t) => parser.text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => parser.end()?,
            Event::Eof => return parser.finish(),
            _ => {}
        }
    }
}

/// What has been read of the message so far.
#[derive(Default)]
struct Parser {
    /// Local names of the open elements.
    path: Vec<String>,
    organization_id: Option<String>,
    action_id: Option<String>,
    in_notifications: bool,
    notifications: Vec<Notification>,
    current: Option<Notification>,
    text: String,
}

impl Parser {
    fn start(&mut self, e: &BytesStart) -> Result<(), String> {
        let name = local(e.name().as_ref()).to_string();
        match name.as_str() {
            "notifications" => {
                let ns = attribute(e, "xmlns");
                if ns.as_deref() != Some(OUTBOUND_NS) {
                    return Err(format!(
                        "notifications must be in namespace {OUTBOUND_NS}, found {}",
                        ns.unwrap_or_else(|| "none".into())
                    ));
                }
                self.in_notifications = true;
            }
            "Notification" if self.in_notifications => {
                self.current = Some(Notification {
                    id: String::new(),
                    object: String::new(),
                    fields: Fields::new(),
                });
            }
            "sObject" => {
                let kind = attribute(e, "type").ok_or("sObject has no xsi:type")?;
                if let Some(n) = self.current.as_mut() {
                    n.object = local(kind.as_bytes()).to_string();
                }
            }
            _ => {}
        }
        self.path.push(name);
        self.text.clear();
        Ok(())
    }

    /// An empty field element of the sObject: `xsi:nil` is null, anything else empty text.
    fn empty(&mut self, e: &BytesStart) {
        if self.path.last().map(String::as_str) != Some("sObject") {
            return;
        }
        let Some(n) = self.current.as_mut() else {
            return;
        };
        let value = if attribute(e, "nil").as_deref() == Some("true") {
            Value::Null
        } else {
            Value::String(String::new())
        };
        n.fields.insert(local(e.name().as_ref()).to_string(), value);
    }

    fn end(&mut self) -> Result<(), String> {
        let name = self.path.pop().unwrap_or_default();
        let text = std::mem::take(&mut self.text);
        match (self.path.last().map(String::as_str), name.as_str()) {
            (Some("notifications"), "OrganizationId") => self.organization_id = Some(text),
            (Some("notifications"), "ActionId") => self.action_id = Some(text),
            (Some("Notification"), "Id") => {
                if let Some(n) = self.current.as_mut() {
                    n.id = text;
                }
            }
            (Some("sObject"), field) => {
                if let Some(n) = self.current.as_mut() {
                    n.fields.insert(field.to_string(), Value::String(text));
                }
            }
            (_, "Notification") => self.close_notification()?,
            _ => {}
        }
        Ok(())
    }

    /// A notification needs its own Id, an sObject, and the sObject's Id.
    fn close_notification(&mut self) -> Result<(), String> {
        let n = self.current.take().ok_or("Notification closed twice")?;
        if n.id.is_empty() {
            return Err(format!(
                "Notification {} has no Id",
                self.notifications.len()
            ));
        }
        if n.object.is_empty() {
            return Err(format!("Notification {} has no sObject", n.id));
        }
        if !n.fields.contains_key("Id") {
            return Err(format!("Notification {}: the sObject has no Id", n.id));
        }
        self.notifications.push(n);
        if self.notifications.len() > MAX_NOTIFICATIONS {
            return Err(format!(
                "more than {MAX_NOTIFICATIONS} notifications in one message"
            ));
        }
        Ok(())
    }

    fn finish(self) -> Result<Notifications, String> {
        if !self.in_notifications {
            return Err("no notifications element: not a Salesforce Outbound Message".into());
        }
        let organization_id = self
            .organization_id
            .filter(|o| !o.is_empty())
            .ok_or("notifications has no OrganizationId")?;
        if self.notifications.is_empty() {
            return Err("notifications holds no Notification".into());
        }
        Ok(Notifications {
            organization_id,
            action_id: self.action_id,
            notifications: self.notifications,
        })
    }
}

/// The answer Salesforce waits for before it stops retrying.
pub fn ack() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
    )
}

/// A SOAP 1.1 fault: `Client` for a message that will never be accepted, `Server` for a retry.
pub fn fault(client: bool, message: &str) -> String {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:{}</faultcode><faultstring>{escaped}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#,
        if client { "Client" } else { "Server" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MESSAGE: &str = include_str!("../fixtures/outbound_message.xml");

    #[test]
    fn parses_salesforce_sample() {
        let parsed = parse(MESSAGE).unwrap();
        assert_eq!(parsed.organization_id, "00D5g00000EMUL8AAA");
        assert_eq!(parsed.notifications.len(), 2);
        let first = &parsed.notifications[0];
        assert_eq!(first.id, "04l5g000000001AAA");
        assert_eq!(first.object, "Account");
        assert_eq!(first.fields["Name"], json!("Acme & Co"));
        assert_eq!(first.fields["Phone"], Value::Null);
        assert_eq!(first.fields["AnnualRevenue"], json!("1200.5"));
    }

    /// Each malformation is refused with a message that names it.
    #[test]
    fn refusals_table() {
        let cases = [
            ("<notifications", "not well-formed XML"),
            ("<a/>", "no notifications element"),
            (
                &MESSAGE.replace("http://soap.sforce.com/2005/09/outbound", "urn:other") as &str,
                "must be in namespace",
            ),
            (
                &MESSAGE.replace("<OrganizationId>00D5g00000EMUL8AAA</OrganizationId>", ""),
                "no OrganizationId",
            ),
            (
                &MESSAGE.replace("<Id>04l5g000000001AAA</Id>", ""),
                "has no Id",
            ),
            (
                &MESSAGE.replace("<sf:Id>001000000000001AAA</sf:Id>", ""),
                "the sObject has no Id",
            ),
        ];
        for (xml, expected) in cases {
            let err = parse(xml).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let many: String = (0..101)
            .map(|i| format!("<Notification><Id>N{i}</Id><sObject xsi:type=\"ent:Account\" xmlns:ent=\"urn:sobject.enterprise.soap.sforce.com\"><ent:Id>001{i}</ent:Id></sObject></Notification>"))
            .collect();
        let big = format!(
            "<notifications xmlns=\"{OUTBOUND_NS}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><OrganizationId>00D</OrganizationId>{many}</notifications>"
        );
        assert!(parse(&big).unwrap_err().contains("more than 100"));
    }

    #[test]
    fn answers_are_soap() {
        assert!(ack().contains("<Ack>true</Ack>"));
        assert!(fault(true, "a < b")
            .contains("<faultcode>soapenv:Client</faultcode><faultstring>a &lt; b</faultstring>"));
    }
}
