//! How the emulated sources report their changes to the stack: a Gainsight rule per object a
//! job reads, and a Salesforce Outbound Message per object a job takes changes from.

use devstack::gainsight::{GainsightEmulator, Rule};
use devstack::salesforce::{self as sf, SalesforceEmulator};
use shared::domain::Jobs;

use crate::{Options, OUTBOUND_TOKEN, WEBHOOK_SECRET};

/// Each job's objects report their changes: a Gainsight rule per object, and a Salesforce
/// Outbound Message per object with the fields the job reads plus the timestamps.
pub(crate) fn wire_sources(
    jobs: &Jobs,
    (gainsight, salesforce): (&GainsightEmulator, &SalesforceEmulator),
    webhook_url: &str,
    options: &Options,
) {
    let echo_criteria = options.echo_criteria;
    let mut ruled = std::collections::HashSet::new();
    for job in jobs.iter() {
        // One rule per object, however many jobs read it (the Timeline jobs share activities).
        if ruled.insert(job.gainsight.object.clone()) {
            gainsight.add_rule(Rule {
                object: job.gainsight.object.clone(),
                url: format!("{webhook_url}/gainsight"),
                secret: WEBHOOK_SECRET.into(),
                skip_integration_user: echo_criteria,
            });
        }
        // An Outbound Message only for jobs that act on Salesforce changes.
        let from_salesforce = &job.events.from_salesforce;
        if !options.salesforce_events.outbound()
            || from_salesforce.on_created == shared::domain::OnCreated::DoNothing
                && from_salesforce.on_updated == shared::domain::OnUpdated::DoNothing
        {
            continue;
        }
        let mut fields: Vec<String> = vec!["CreatedDate".into(), "LastModifiedDate".into()];
        fields.extend(job.fields_read_from(shared::domain::System::Salesforce));
        salesforce.add_outbound(sf::OutboundMessage {
            object: job.salesforce.object.clone(),
            url: outbound_url(webhook_url),
            fields,
            skip_integration_user: echo_criteria,
        });
    }
}

/// The endpoint URL the Outbound Messages are sent to, with the token.
pub fn outbound_url(webhook_url: &str) -> String {
    format!("{webhook_url}/salesforce?token={OUTBOUND_TOKEN}")
}
