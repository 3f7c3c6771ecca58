//! HMAC-SHA256 signatures of webhook requests: `hex(HMAC(secret, "{timestamp}.{body}"))`.
//!
//! The timestamp is part of the signed text so a captured request cannot be replayed later with a
//! fresh timestamp header.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
    let signed = Signed::parse(timestamp, signature, now_s, tolerance_s)?;
    if signed.matches(secret, body) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A request's signature headers, well formed and fresh: what is left is to compare the digest
/// with one or more secrets (the current one and, after a rotation, the previous one).
pub struct Signed {
    timestamp_s: i64,
    digest: Vec<u8>,
}

impl Signed {
    /// The headers' values, refused when missing, malformed or further than `tolerance_s` from
    /// `now_s`; none of that depends on the secret.
    pub fn parse(
        timestamp: Option<&str>,
        signature: Option<&str>,
        now_s: i64,
        tolerance_s: i64,
    ) -> Result<Self, SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::Missing(TIMESTAMP_HEADER))?;
        let signature = signature.ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
        let timestamp_s: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        // Saturating: a timestamp at either end of i64 is stale, not an overflow.
        let age_s = now_s.saturating_sub(timestamp_s).saturating_abs();
        if age_s > tolerance_s {
            return Err(SignatureError::Stale { age_s, tolerance_s });
        }
        let digest = signature
            .trim()
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(SignatureError::BadFormat)?;
        Ok(Self {
            timestamp_s,
            digest,
        })
    }

    /// Whether `body` was signed with `secret`; compared in constant time.
    pub fn matches(&self, secret: &[u8], body: &[u8]) -> bool {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(self.timestamp_s.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&self.digest).is_ok()
    }
}

/// A token shorter than this is refused when stored: it could be guessed.
pub const MIN_TOKEN_CHARS: usize = 32;

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
}
