//! A checked secret's versions (the Gainsight webhook's signing secret, the Outbound Message
//! endpoint's token), kept in memory so that a rotation needs no redeploy: a read is trusted for
//! five minutes, and a presented value the cached versions refuse reads them again (at most once
//! every ten seconds), so a new value is accepted within ten seconds of being stored and a revoked
//! one stops within five minutes.

use std::sync::{Arc, Mutex};

use shared::ports::{Secrets, SecretsError};
use shared::secret::{Secret, Versions};

/// How long a read is trusted before a refused value may read the secret again: an attacker
/// presenting guesses costs at most one read every ten seconds per warm instance.
const REREAD_AFTER_MS: i64 = 10_000;

/// How long a read is trusted at all: a value revoked by a rotation without overlap stops being
/// accepted by a warm instance within this.
const TRUST_FOR_MS: i64 = 300_000;

/// Where the versions come from.
enum Source {
    /// The secrets store, under this name.
    Store(Arc<dyn Secrets>, &'static str),
    /// Given once (tests, or a deployment that turned the path off with `None`).
    Fixed(Option<Versions>),
}

pub struct Keeper {
    source: Source,
    /// The versions last read (none when not stored), and when.
    cache: Mutex<Option<(Option<Versions>, i64)>>,
}

/// Why a presented value was not accepted.
#[derive(Debug, PartialEq)]
pub enum KeeperRefusal {
    /// No value is stored: nothing is accepted on this path.
    NotConfigured,
    Mismatch,
    /// The secrets store could not be read: worth the sender's retry.
    Unavailable(String),
}

impl Keeper {
    /// Versions read from `secrets` under `name` when first needed.
    pub fn stored(secrets: Arc<dyn Secrets>, name: &'static str) -> Self {
        Self {
            source: Source::Store(secrets, name),
            cache: Mutex::new(None),
        }
    }

    /// The versions of `value`, or nothing accepted when `None`.
    pub fn fixed(value: Option<&Secret>) -> Self {
        Self {
            source: Source::Fixed(value.map(Versions::from_secret)),
            cache: Mutex::new(None),
        }
    }

    /// Reads the versions now, so that a missing or undecryptable secret fails the cold start.
    pub async fn prime(&self, now_ms: i64) -> Result<(), SecretsError> {
        if let Source::Store(secrets, name) = &self.source {
            let secret = secrets.get(name).await?;
            self.remember(Some(Versions::from_secret(&secret)), now_ms);
        }
        Ok(())
    }

    /// Whether `accepts` holds for the versions as of `now_ms`.
    pub async fn check(
        &self,
        now_ms: i64,
        accepts: impl Fn(&Versions) -> bool,
    ) -> Result<(), KeeperRefusal> {
        let cached = self.cached();
        let age = cached.as_ref().map(|(_, at)| now_ms - at);
        if let (Some((Some(versions), _)), Some(age)) = (&cached, age) {
            if age < TRUST_FOR_MS && accepts(versions) {
                return Ok(());
            }
        }
        let versions = match (cached, age) {
            (Some((versions, _)), Some(age)) if age < REREAD_AFTER_MS => versions,
            _ => self.read(now_ms).await?,
        };
        match versions {
            None => Err(KeeperRefusal::NotConfigured),
            Some(versions) if accepts(&versions) => Ok(()),
            Some(_) => Err(KeeperRefusal::Mismatch),
        }
    }

    fn cached(&self) -> Option<(Option<Versions>, i64)> {
        self.cache.lock().map(|c| c.clone()).unwrap_or(None)
    }

    fn remember(&self, versions: Option<Versions>, now_ms: i64) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((versions, now_ms));
        }
    }

    async fn read(&self, now_ms: i64) -> Result<Option<Versions>, KeeperRefusal> {
        let versions = match &self.source {
            Source::Fixed(versions) => return Ok(versions.clone()),
            Source::Store(secrets, name) => match secrets.get(name).await {
                Ok(secret) => Some(Versions::from_secret(&secret)),
                Err(SecretsError::NotFound(_)) => None,
                Err(e) => return Err(KeeperRefusal::Unavailable(e.to_string())),
            },
        };
        self.remember(versions.clone(), now_ms);
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::fakes::MemorySecrets;
    use shared::secret::names::WEBHOOK_SECRET;

    async fn store(secrets: &MemorySecrets, versions: &Versions) {
        secrets
            .put(WEBHOOK_SECRET, &versions.to_secret())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_rotated_value_is_accepted_after_the_reread_time_and_a_revoked_one_stops_after_the_trust_time(
    ) {
        let secrets = Arc::new(MemorySecrets::default());
        let one = Versions::from_secret(&Secret::new("one"));
        store(&secrets, &one).await;
        let keeper = Keeper::stored(secrets.clone(), WEBHOOK_SECRET);
        let check = |value: &'static str, now: i64| {
            let keeper = &keeper;
            async move { keeper.check(now, |v| v.accepts(value, now)).await }
        };
        assert_eq!(check("one", 0).await, Ok(()));
        // Rotated with an overlap: the new value is read again on its first use after
        // REREAD_AFTER_MS, and refused before (the sender retries).
        store(
            &secrets,
            &Versions::rotated(Some(&one), "two", 1_000, 30_000),
        )
        .await;
        assert_eq!(check("two", 2_000).await, Err(KeeperRefusal::Mismatch));
        assert_eq!(check("two", REREAD_AFTER_MS).await, Ok(()));
        assert_eq!(check("one", 12_000).await, Ok(()), "within the overlap");
        assert_eq!(check("one", 31_000).await, Err(KeeperRefusal::Mismatch));
        // Revoked without overlap: the warm cache stops trusting "two" after TRUST_FOR_MS.
        let two = Versions::from_secret(&Secret::new("two"));
        store(&secrets, &Versions::rotated(Some(&two), "three", 20_000, 0)).await;
        assert_eq!(check("two", 40_000).await, Ok(()), "cached");
        // The last read was the one at 31,000 that refused "one".
        let stale = 31_000 + TRUST_FOR_MS;
        assert_eq!(check("two", stale).await, Err(KeeperRefusal::Mismatch));
        assert_eq!(check("three", stale + 1).await, Ok(()));
    }

    #[tokio::test]
    async fn guesses_read_the_store_at_most_once_a_minute() {
        let secrets = Arc::new(MemorySecrets::default());
        store(&secrets, &Versions::from_secret(&Secret::new("one"))).await;
        let keeper = Keeper::stored(secrets.clone(), WEBHOOK_SECRET);
        keeper.prime(0).await.unwrap();
        for now in (0..REREAD_AFTER_MS).step_by(1_000) {
            let refused = keeper.check(now, |v| v.accepts("guess", now)).await;
            assert_eq!(refused, Err(KeeperRefusal::Mismatch));
        }
        assert_eq!(secrets.gets(), 1, "only the prime read the store");
    }

    #[tokio::test]
    async fn nothing_is_accepted_when_nothing_is_stored() {
        let keeper = Keeper::stored(Arc::new(MemorySecrets::default()), WEBHOOK_SECRET);
        assert_eq!(
            keeper.check(0, |_| true).await,
            Err(KeeperRefusal::NotConfigured)
        );
        assert_eq!(
            Keeper::fixed(None).check(0, |_| true).await,
            Err(KeeperRefusal::NotConfigured)
        );
    }
}
