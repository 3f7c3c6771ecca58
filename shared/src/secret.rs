//! A secret value that never prints itself: Debug and Display show only a redaction marker.

use std::fmt;

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
    /// The tokens the Salesforce Outbound Message endpoint URL must carry (`signature::OutboundTokens`).
    pub const SALESFORCE_OUTBOUND_TOKEN: &str = "salesforce-outbound-token";
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
}
