//! Secret values that never print themselves (Debug and Display show only a redaction marker),
//! and a checked secret's versions: the current value and, for an overlap after a rotation, the
//! previous one.

use std::fmt;

use sha2::{Digest, Sha256};

/// Plaintext of an API key or shared secret, held only in memory after a KMS decrypt.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the one place that must send it (a header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Names under which the deployment keeps its secrets (KMS ciphertext in the state table).
pub mod names {
    pub const GAINSIGHT_ACCESS_KEY: &str = "gainsight-access-key";
    pub const SALESFORCE_CLIENT_SECRET: &str = "salesforce-client-secret";
    /// The Connected App's private key (PEM), for the JWT bearer flow.
    pub const SALESFORCE_JWT_KEY: &str = "salesforce-jwt-key";
    /// A refresh token issued to the Connected App, for the refresh token flow.
    pub const SALESFORCE_REFRESH_TOKEN: &str = "salesforce-refresh-token";
    pub const WEBHOOK_SECRET: &str = "webhook-secret";
    /// The tokens the Salesforce Outbound Message endpoint URL must carry.
    pub const SALESFORCE_OUTBOUND_TOKEN: &str = "salesforce-outbound-token";

    /// Secrets the functions check what callers present against (a signature key, a URL token),
    /// stored as `Versions`. The others are credentials the functions present to Salesforce and
    /// Gainsight, stored as plain values: which of them the vendor still accepts is the vendor's
    /// to say.
    pub const CHECKED: [&str; 2] = [WEBHOOK_SECRET, SALESFORCE_OUTBOUND_TOKEN];

    /// Every secret the functions read.
    pub const ALL: [&str; 6] = [
        GAINSIGHT_ACCESS_KEY,
        SALESFORCE_CLIENT_SECRET,
        SALESFORCE_JWT_KEY,
        SALESFORCE_REFRESH_TOKEN,
        WEBHOOK_SECRET,
        SALESFORCE_OUTBOUND_TOKEN,
    ];
}

/// How long the previous value of a checked secret stays accepted after a rotation unless the
/// admin says: time to change it where callers keep it (Gainsight's rule, Salesforce's endpoint
/// URL) while requests signed or addressed with the old one are still in flight or queued.
pub const DEFAULT_OVERLAP_MS: i64 = 24 * 3_600_000;

/// A checked secret as stored: the current value, and after a rotation the previous one,
/// accepted until `previous_until_ms`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_until_ms: Option<i64>,
}

impl Versions {
    /// The stored secret: the JSON this type writes, or a bare value (put before any rotation).
    pub fn from_secret(secret: &Secret) -> Self {
        serde_json::from_str(secret.expose()).unwrap_or_else(|_| Self {
            current: secret.expose().trim().to_string(),
            previous: None,
            previous_until_ms: None,
        })
    }

    /// What to store when `value` replaces `old` at `now_ms`, the old value accepted for
    /// `overlap_ms` more. Storing the same value again starts no overlap.
    pub fn rotated(old: Option<&Self>, value: &str, now_ms: i64, overlap_ms: i64) -> Self {
        let previous = old
            .filter(|o| o.current != value)
            .map(|o| o.current.clone());
        Self {
            current: value.to_string(),
            previous_until_ms: previous.as_ref().map(|_| now_ms + overlap_ms),
            previous,
        }
    }

    pub fn to_secret(&self) -> Secret {
        // A struct of strings and numbers: serialising cannot fail.
        Secret::new(serde_json::to_string(self).unwrap_or_default())
    }

    /// Until when the previous value is accepted, if one still is at `now_ms`.
    pub fn previous_until(&self, now_ms: i64) -> Option<i64> {
        self.previous_until_ms.filter(|until| now_ms < *until)
    }

    /// The values accepted at `now_ms`: the current one, then the previous one within its
    /// overlap. An empty value is never accepted.
    pub fn accepted(&self, now_ms: i64) -> impl Iterator<Item = &str> {
        let previous = self
            .previous
            .as_deref()
            .filter(|_| self.previous_until(now_ms).is_some());
        std::iter::once(self.current.as_str())
            .chain(previous)
            .filter(|v| !v.is_empty())
    }

    /// Whether `presented` is the current value, or the previous one within its overlap;
    /// compared in constant time (of digests), so that the time taken says nothing of how much
    /// of a guess was right.
    pub fn accepts(&self, presented: &str, now_ms: i64) -> bool {
        let presented = Sha256::digest(presented.as_bytes());
        let same = |value: &str| {
            let value = Sha256::digest(value.as_bytes());
            bool::from(subtle::ConstantTimeEq::ct_eq(
                value.as_slice(),
                presented.as_slice(),
            ))
        };
        // Both compared whatever the first gives: no early exit to time.
        let all: Vec<bool> = self.accepted(now_ms).map(same).collect();
        all.contains(&true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_plaintext() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn versions_accept_the_current_and_for_a_while_the_previous() {
        let first = Versions::from_secret(&Secret::new("tok-one\n"));
        assert!(first.accepts("tok-one", 0));
        assert!(!first.accepts("tok-on", 0) && !first.accepts("", 0));
        let next = Versions::rotated(Some(&first), "tok-two", 1_000, 60_000);
        let next = Versions::from_secret(&next.to_secret());
        assert!(next.accepts("tok-two", 1_000));
        assert!(next.accepts("tok-one", 60_999), "within the overlap");
        assert_eq!(next.previous_until(60_999), Some(61_000));
        assert!(!next.accepts("tok-one", 61_000), "after it");
        assert_eq!(next.accepted(61_000).collect::<Vec<_>>(), ["tok-two"]);
        // Putting the same value again starts no overlap for anything else.
        let same = Versions::rotated(Some(&next), "tok-two", 2_000, 60_000);
        assert!(!same.accepts("tok-one", 2_000));
        let empty = Versions::from_secret(&Secret::new(""));
        assert!(!empty.accepts("", 0));
        assert_eq!(empty.accepted(0).count(), 0);
    }

    #[test]
    fn a_bare_value_that_happens_to_be_json_is_still_a_bare_value() {
        let json = r#"{"current":"a","other":1}"#;
        let versions = Versions::from_secret(&Secret::new(json));
        assert!(versions.accepts(json, 0) && !versions.accepts("a", 0));
    }
}
