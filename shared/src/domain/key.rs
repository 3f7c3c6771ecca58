//! The ledger key of a record pair: its Gainsight id, or its Salesforce id while the pair has no
//! Gainsight twin yet. This is the only place that knows how the second kind is spelt.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Prefix of the key of a pair known only by its Salesforce id.
const SALESFORCE_ONLY: &str = "sf:";

/// Which record a ledger item is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerKey {
    /// The pair's Gainsight id (GSID): every linked pair is kept under it.
    Gainsight(String),
    /// A Salesforce record whose Gainsight twin does not exist yet; the item moves to the GSID
    /// once the twin is created.
    SalesforceOnly(String),
}

impl LedgerKey {
    /// The key of the pair with Gainsight id `gsid`, else of the Salesforce-only record `sfid`.
    pub fn of(gsid: Option<&str>, sfid: Option<&str>) -> Option<Self> {
        match (gsid, sfid) {
            (Some(g), _) => Some(Self::Gainsight(g.to_string())),
            (None, Some(s)) => Some(Self::SalesforceOnly(s.to_string())),
            (None, None) => None,
        }
    }

    /// The Gainsight id, when the pair has one.
    pub fn gainsight_id(&self) -> Option<&str> {
        match self {
            Self::Gainsight(id) => Some(id),
            Self::SalesforceOnly(_) => None,
        }
    }

    /// The Salesforce id of a pair not linked yet.
    pub fn salesforce_only_id(&self) -> Option<&str> {
        match self {
            Self::Gainsight(_) => None,
            Self::SalesforceOnly(id) => Some(id),
        }
    }
}

impl fmt::Display for LedgerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gainsight(id) => f.write_str(id),
            Self::SalesforceOnly(id) => write!(f, "{SALESFORCE_ONLY}{id}"),
        }
    }
}

/// A ledger key that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger key {0:?} is empty: expected a Gainsight id or sf:<Salesforce Id>")]
pub struct BadLedgerKey(pub String);

impl FromStr for LedgerKey {
    type Err = BadLedgerKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = match s.strip_prefix(SALESFORCE_ONLY) {
            Some(id) => Self::SalesforceOnly(id.to_string()),
            None => Self::Gainsight(s.to_string()),
        };
        match &key {
            Self::Gainsight(id) | Self::SalesforceOnly(id) if id.trim().is_empty() => {
                Err(BadLedgerKey(s.to_string()))
            }
            _ => Ok(key),
        }
    }
}

impl Serialize for LedgerKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LedgerKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_kinds() {
        for (text, key) in [
            ("1P02ABC", LedgerKey::Gainsight("1P02ABC".into())),
            ("sf:001A", LedgerKey::SalesforceOnly("001A".into())),
        ] {
            assert_eq!(text.parse::<LedgerKey>(), Ok(key.clone()));
            assert_eq!(key.to_string(), text);
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(serde_json::from_str::<LedgerKey>(&json).unwrap(), key);
        }
    }

    #[test]
    fn empty_keys_are_refused_by_name() {
        for bad in ["", "sf:", "  "] {
            let err = bad.parse::<LedgerKey>().unwrap_err();
            assert!(err.to_string().contains("is empty"), "{err}");
        }
        assert!(serde_json::from_str::<LedgerKey>("\"sf:\"").is_err());
    }

    #[test]
    fn the_gsid_wins_over_the_salesforce_id() {
        assert_eq!(
            LedgerKey::of(Some("G"), Some("S")),
            Some(LedgerKey::Gainsight("G".into()))
        );
        assert_eq!(
            LedgerKey::of(None, Some("S")).unwrap().salesforce_only_id(),
            Some("S")
        );
        assert_eq!(LedgerKey::of(None, None), None);
    }
}
