//! Change Data Capture on the local stack: the template deployed with the Salesforce event bus,
//! the local EventBridge serving its rule, and the Salesforce emulator relaying its change
//! events onto it, as an org's Event Relay does.

use std::collections::HashMap;

use anyhow::Result;
use devstack::event_bus::EventBuses;
use devstack::moto::LocalAws;
use devstack::salesforce::{self as sf, SalesforceEmulator};

/// The access key id EventBridge's deliveries to SQS sign with.
pub const EVENTBRIDGE_CALLER: &str = "EventBridge";

/// The partner event source of the emulated org's Event Relay, and the bus of the same name.
pub fn event_source() -> String {
    format!(
        "aws.partner/salesforce.com/{}/0YL5g000000EMULAAA",
        sf::ORGANIZATION_ID
    )
}

/// How Salesforce reports its changes to the stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SalesforceEvents {
    /// Outbound Messages to the webhook, sent by record-triggered Flows.
    #[default]
    Outbound,
    /// Change Data Capture through Event Relay into EventBridge.
    ChangeDataCapture,
    /// Both at once: every change arrives twice, and is synced once.
    Both,
}

impl SalesforceEvents {
    pub fn outbound(self) -> bool {
        self != SalesforceEvents::ChangeDataCapture
    }

    pub fn change_data_capture(self) -> bool {
        self != SalesforceEvents::Outbound
    }

    /// From `SALESFORCE_EVENTS` (`outbound`, `cdc`, `both`), `default` when unset.
    pub fn from_env(default: Self) -> Result<Self> {
        match std::env::var("SALESFORCE_EVENTS").ok().as_deref() {
            None | Some("") => Ok(default),
            Some("outbound") => Ok(Self::Outbound),
            Some("cdc") => Ok(Self::ChangeDataCapture),
            Some("both") => Ok(Self::Both),
            Some(other) => anyhow::bail!("SALESFORCE_EVENTS={other}: use outbound, cdc or both"),
        }
    }
}

/// The stack parameters that turn Change Data Capture on; with `echo_criteria` the rule drops
/// the integration user's own changes, as the README has admins set it.
pub fn parameters(events: SalesforceEvents, echo_criteria: bool) -> HashMap<String, String> {
    let mut params = HashMap::new();
    if events.change_data_capture() {
        params.insert("SalesforceEventBusName".into(), event_source());
        if echo_criteria {
            let user = sf::INTEGRATION_USER_ID.to_string();
            params.insert("SalesforceIntegrationUserId".into(), user);
        }
    }
    params
}

/// The local EventBridge serving the deployed rules, and the emulator relaying onto it.
pub async fn start_buses(
    aws: &LocalAws,
    salesforce: &SalesforceEmulator,
) -> Result<Option<EventBuses>> {
    let rules = aws.deployment.event_rules.clone();
    if rules.is_empty() {
        return Ok(None);
    }
    let sqs = crate::clients_of(aws, EVENTBRIDGE_CALLER).sqs;
    let buses = EventBuses::start(rules, sqs, devstack::moto::REGION).await?;
    salesforce.relay_to(sf::Relay {
        endpoint: buses.url(),
        bus: event_source(),
    });
    Ok(Some(buses))
}
