//! HMAC-SHA256 signatures of webhook requests: `hex(HMAC(secret, "{timestamp}.{body}"))`.
//!
//! The timestamp is part of the signed text so a captured request cannot be replayed later with a
//! fresh timestamp header.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the Unix timestamp (seconds) the sender signed.
pub const TIMESTAMP_HEADER: &str = "x-gs-timestamp";
/// Header carrying `sha256=<hex digest>`.
pub const SIGNATURE_HEADER: &str = "x-gs-signature";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("{TIMESTAMP_HEADER} is not a Unix timestamp in seconds")]
    BadTimestamp,
    #[error("timestamp is {age_s} s away from now; at most {tolerance_s} s is accepted")]
    Stale { age_s: i64, tolerance_s: i64 },
    #[error("{SIGNATURE_HEADER} must be sha256=<hex>")]
    BadFormat,
    #[error("signature does not match the body")]
    Mismatch,
}

/// Signs `body` sent at `timestamp_s`; returns the full header value `sha256=<hex>`.
pub fn sign(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks freshness first (cheap), then the signature in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::Missing(TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    // Saturating: a timestamp at either end of i64 is stale, not an overflow.
    let age_s = now_s.saturating_sub(ts).saturating_abs();
    if age_s > tolerance_s {
        return Err(SignatureError::Stale { age_s, tolerance_s });
    }
    let digest = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::BadFormat)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch)
}

/// The tokens an Outbound Message endpoint URL must carry (`?token=`): Outbound Messages are not
/// signed, and the org id they carry is no secret. After a rotation the previous token is still
/// accepted until `previous_until_ms`, so that messages Salesforce queued with the old URL are
/// not refused while the admin changes it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutboundTokens {
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_until_ms: Option<i64>,
}

/// How long the previous token is accepted after a rotation unless the admin says.
pub const TOKEN_OVERLAP_MS: i64 = 24 * 3_600_000;

/// A token shorter than this is refused when stored: it could be guessed.
pub const MIN_TOKEN_CHARS: usize = 32;

impl OutboundTokens {
    /// The stored secret: the JSON this type writes, or a bare token (put by hand).
    pub fn from_secret(secret: &crate::secret::Secret) -> Self {
        serde_json::from_str(secret.expose()).unwrap_or_else(|_| Self {
            current: secret.expose().trim().to_string(),
            previous: None,
            previous_until_ms: None,
        })
    }

    /// The secret to store when `token` replaces `old` at `now_ms`, the old one accepted for
    /// `overlap_ms` more.
    pub fn rotated(old: Option<&Self>, token: &str, now_ms: i64, overlap_ms: i64) -> Self {
        let previous = old
            .filter(|o| o.current != token)
            .map(|o| o.current.clone());
        Self {
            current: token.to_string(),
            previous_until_ms: previous.as_ref().map(|_| now_ms + overlap_ms),
            previous,
        }
    }

    pub fn to_secret(&self) -> crate::secret::Secret {
        // A struct of strings and numbers: serialising cannot fail.
        crate::secret::Secret::new(serde_json::to_string(self).unwrap_or_default())
    }

    /// Whether `token` is the current token, or the previous one within its overlap; compared in
    /// constant time, so that the time taken says nothing of how much of a guess was right.
    pub fn accepts(&self, token: &str, now_ms: i64) -> bool {
        let same = |a: &str| {
            let (a, b) = (
                Sha256::digest(a.as_bytes()),
                Sha256::digest(token.as_bytes()),
            );
            bool::from(subtle::ConstantTimeEq::ct_eq(a.as_slice(), b.as_slice()))
        };
        let current = same(&self.current);
        let previous = match (&self.previous, self.previous_until_ms) {
            (Some(p), Some(until)) => same(p) & (now_ms < until),
            _ => false,
        };
        !self.current.is_empty() && (current | previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_timestamp_at_either_end_of_the_range_is_stale_not_an_overflow() {
        let now = 1_700_000_000;
        for extreme in [i64::MIN, i64::MAX, -1] {
            let ts = extreme.to_string();
            let signature = sign(b"s", extreme, b"{}");
            let got = verify(b"s", Some(&ts), Some(&signature), b"{}", now, 300);
            assert!(
                matches!(got, Err(SignatureError::Stale { .. })),
                "{extreme}: {got:?}"
            );
        }
    }

    #[test]
    fn accepts_its_own_signature() {
        let sig = sign(b"k", NOW, b"{}");
        assert_eq!(
            verify(b"k", Some("1700000000"), Some(&sig), b"{}", NOW, 300),
            Ok(())
        );
    }

    #[test]
    fn refuses_tampering_staleness_and_missing_headers() {
        let sig = sign(b"k", NOW, b"{}");
        let check = |ts: Option<&str>, sig: Option<&str>, body: &[u8], key: &[u8]| {
            verify(key, ts, sig, body, NOW, 300)
        };
        assert_eq!(
            check(Some("1700000000"), Some(&sig), b"{ }", b"k"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(Some("1700000000"), Some(&sig), b"{}", b"other"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(
                Some("1699999000"),
                Some(&sign(b"k", NOW - 1000, b"{}")),
                b"{}",
                b"k"
            ),
            Err(SignatureError::Stale {
                age_s: 1000,
                tolerance_s: 300
            })
        );
        // Re-using a signature with a different timestamp fails: the timestamp is signed.
        assert_eq!(
            check(Some("1700000001"), Some(&sig), b"{}", b"k"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(None, Some(&sig), b"{}", b"k"),
            Err(SignatureError::Missing(TIMESTAMP_HEADER))
        );
        assert_eq!(
            check(Some("1700000000"), None, b"{}", b"k"),
            Err(SignatureError::Missing(SIGNATURE_HEADER))
        );
        assert_eq!(
            check(Some("soon"), Some(&sig), b"{}", b"k"),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            check(Some("1700000000"), Some("md5=00"), b"{}", b"k"),
            Err(SignatureError::BadFormat)
        );
    }

    #[test]
    fn outbound_tokens_accept_the_current_and_for_a_while_the_previous() {
        let first = OutboundTokens::from_secret(&crate::secret::Secret::new("tok-one\n"));
        assert!(first.accepts("tok-one", 0));
        assert!(!first.accepts("tok-on", 0) && !first.accepts("", 0));
        let next = OutboundTokens::rotated(Some(&first), "tok-two", 1_000, 60_000);
        let next = OutboundTokens::from_secret(&next.to_secret());
        assert!(next.accepts("tok-two", 1_000));
        assert!(next.accepts("tok-one", 60_999), "within the overlap");
        assert!(!next.accepts("tok-one", 61_000), "after it");
        // Putting the same token again starts no overlap for anything else.
        let same = OutboundTokens::rotated(Some(&next), "tok-two", 2_000, 60_000);
        assert!(!same.accepts("tok-one", 2_000));
        let empty = OutboundTokens::from_secret(&crate::secret::Secret::new(""));
        assert!(!empty.accepts("", 0));
    }
}
