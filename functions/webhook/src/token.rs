//! The Outbound Message endpoint's token: read from the secrets store when first needed, and
//! read again when a request's token does not match (at most once a minute), so that a token
//! rotated while the function is warm is accepted without a restart.

use std::sync::{Arc, Mutex};

use shared::ports::{Secrets, SecretsError};
use shared::secret::names;
use shared::signature::OutboundTokens;

/// How long a read of the tokens is trusted before a mismatch may read them again: an attacker
/// guessing tokens costs at most one read a minute.
const REREAD_AFTER_MS: i64 = 60_000;

pub struct TokenKeeper {
    secrets: Option<Arc<dyn Secrets>>,
    /// The tokens last read (none when not stored), and when.
    cache: Mutex<Option<(Option<OutboundTokens>, i64)>>,
}

/// Why a request's token was not accepted.
#[derive(Debug, PartialEq)]
pub enum TokenRefusal {
    /// No token is stored: Outbound Messages are not accepted at all.
    NotConfigured,
    Mismatch,
    /// The secrets store could not be read: worth Salesforce's retry.
    Unavailable(String),
}

impl TokenKeeper {
    pub fn new(secrets: Option<Arc<dyn Secrets>>) -> Self {
        Self {
            secrets,
            cache: Mutex::new(None),
        }
    }

    /// Whether `token` is accepted as of `now_ms`.
    pub async fn check(&self, token: Option<&str>, now_ms: i64) -> Result<(), TokenRefusal> {
        let cached = self.cached();
        let fresh = matches!(&cached, Some((_, at)) if now_ms - at < REREAD_AFTER_MS);
        if let Some((Some(tokens), _)) = &cached {
            if token.is_some_and(|t| tokens.accepts(t, now_ms)) {
                return Ok(());
            }
        }
        let tokens = match (cached, fresh) {
            (Some((tokens, _)), true) => tokens,
            _ => self.read(now_ms).await?,
        };
        match (tokens, token) {
            (None, _) => Err(TokenRefusal::NotConfigured),
            (Some(tokens), Some(t)) if tokens.accepts(t, now_ms) => Ok(()),
            (Some(_), _) => Err(TokenRefusal::Mismatch),
        }
    }

    fn cached(&self) -> Option<(Option<OutboundTokens>, i64)> {
        self.cache.lock().map(|c| c.clone()).unwrap_or(None)
    }

    async fn read(&self, now_ms: i64) -> Result<Option<OutboundTokens>, TokenRefusal> {
        let Some(secrets) = &self.secrets else {
            return Ok(None);
        };
        let tokens = match secrets.get(names::SALESFORCE_OUTBOUND_TOKEN).await {
            Ok(secret) => Some(OutboundTokens::from_secret(&secret)),
            Err(SecretsError::NotFound(_)) => None,
            Err(e) => return Err(TokenRefusal::Unavailable(e.to_string())),
        };
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((tokens.clone(), now_ms));
        }
        Ok(tokens)
    }
}
