//! Linking known pairs by hand (`syncctl import`): what a link would replace in the ledger, so
//! that a pair already linked to another record is never overwritten unless the operator asks.

use super::{LedgerKey, LedgerRecord};

/// A link that would replace one already in the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relink {
    /// The Gainsight record is linked to another Salesforce record.
    GainsightLinked { gsid: String, linked_to: String },
    /// The Salesforce record is linked to another Gainsight record.
    SalesforceLinked {
        salesforce_id: String,
        linked_to: String,
    },
}

impl Relink {
    /// What the link would replace, for the operator.
    pub fn describe(&self, link_to: &str) -> String {
        match self {
            Relink::GainsightLinked { gsid, linked_to } => {
                format!("{gsid} is linked to {linked_to}; this file links it to {link_to}")
            }
            Relink::SalesforceLinked {
                salesforce_id,
                linked_to,
            } => {
                format!("{salesforce_id} is linked to {linked_to}; this file links it to {link_to}")
            }
        }
    }
}

/// Whether two Salesforce ids name one record: the 18-character form only adds 3 characters
/// restating the case of the first 15.
pub fn same_salesforce_id(a: &str, b: &str) -> bool {
    a.len() >= 15 && b.len() >= 15 && a.get(..15) == b.get(..15)
}

/// What linking `gsid` to `salesforce_id` would replace: the Gainsight record's current link
/// (`by_gsid`, its ledger record) if it names another Salesforce record, and the Gainsight
/// record that holds `salesforce_id` now (`holder`, by the ledger's index) if it is another one.
/// A Salesforce-only placeholder is no link: the pair takes its place.
pub fn relinks(
    (gsid, salesforce_id): (&str, &str),
    by_gsid: Option<&LedgerRecord>,
    holder: Option<&LedgerKey>,
) -> Vec<Relink> {
    let mut found = Vec::new();
    if let Some(linked) = by_gsid.and_then(|r| r.salesforce_id.as_deref()) {
        if !same_salesforce_id(linked, salesforce_id) {
            found.push(Relink::GainsightLinked {
                gsid: gsid.to_string(),
                linked_to: linked.to_string(),
            });
        }
    }
    if let Some(LedgerKey::Gainsight(other)) = holder {
        if other != gsid {
            found.push(Relink::SalesforceLinked {
                salesforce_id: salesforce_id.to_string(),
                linked_to: other.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linked(gsid: &str, sfid: Option<&str>) -> LedgerRecord {
        let mut r = LedgerRecord::new("company_account", LedgerKey::Gainsight(gsid.into()));
        r.salesforce_id = sfid.map(str::to_string);
        r
    }

    #[test]
    fn a_new_or_same_link_replaces_nothing() {
        let sf = "001000000000001AAA";
        assert!(relinks(("G1", sf), None, None).is_empty());
        let same = linked("G1", Some("001000000000001"));
        let holder = LedgerKey::Gainsight("G1".into());
        assert!(relinks(("G1", sf), Some(&same), Some(&holder)).is_empty());
        let unlinked = linked("G1", None);
        let placeholder = LedgerKey::SalesforceOnly(sf.into());
        assert!(relinks(("G1", sf), Some(&unlinked), Some(&placeholder)).is_empty());
    }

    #[test]
    fn both_sides_linked_elsewhere_are_each_named() {
        let sf = "001000000000001AAA";
        let other = linked("G1", Some("001000000000009AAA"));
        let holder = LedgerKey::Gainsight("G7".into());
        let found = relinks(("G1", sf), Some(&other), Some(&holder));
        assert_eq!(
            found,
            [
                Relink::GainsightLinked {
                    gsid: "G1".into(),
                    linked_to: "001000000000009AAA".into()
                },
                Relink::SalesforceLinked {
                    salesforce_id: sf.into(),
                    linked_to: "G7".into()
                },
            ]
        );
        assert_eq!(
            found[1].describe("G1"),
            "001000000000001AAA is linked to G7; this file links it to G1"
        );
    }

    #[test]
    fn ids_of_15_and_18_characters_name_one_record() {
        assert!(same_salesforce_id("001000000000001", "001000000000001AAA"));
        assert!(!same_salesforce_id("001000000000001", "001000000000002AAA"));
        assert!(!same_salesforce_id("001", "001"));
    }
}
