//! The APIs' allowances and the share of them this deployment may use: Salesforce's daily API
//! calls and Gainsight's calls per minute. Above that share the pusher stops writing to that
//! system and defers, so the sync never starves the org's or tenant's other integrations (or
//! its people) of API calls.

use std::time::Duration;

/// The daily API usage Salesforce reports with every response (`Sforce-Limit-Info:
/// api-usage=used/max`) and in `/limits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    /// Reads `api-usage=25/15000` (other parts of the header, such as `per-app-api-usage`, are
    /// skipped); `None` for anything else.
    pub fn parse(header: &str) -> Option<Self> {
        header.split(';').find_map(|part| {
            let (used, max) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
            Some(Self {
                used: used.trim().parse().ok()?,
                max: max.trim().parse().ok()?,
            })
        })
    }
}

/// The share of the daily allowance the sync may use, in percent (80 by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub percent: u8,
}

impl Default for Budget {
    fn default() -> Self {
        Self { percent: 80 }
    }
}

impl Budget {
    /// `Err` with why, when the usage is at or over the budget; an unknown usage is allowed (the
    /// first call tells).
    pub fn allows(&self, usage: Option<ApiUsage>) -> Result<(), String> {
        let Some(u) = usage.filter(|u| u.max > 0) else {
            return Ok(());
        };
        if u.used * 100 < u.max * u64::from(self.percent) {
            return Ok(());
        }
        Err(format!(
            "deferred: the Salesforce org has used {} of its {} daily API calls ({}%), at or over the {}% this deployment may use; writes resume by themselves once usage falls below it",
            u.used,
            u.max,
            u.used * 100 / u.max,
            self.percent
        ))
    }
}

/// The length of Gainsight's rate-limit window (its general data APIs count calls per minute).
pub const GAINSIGHT_WINDOW: Duration = Duration::from_secs(60);

/// Gainsight's usage of its per-minute window, as its last answer reported it (`x-ratelimit-limit`
/// and `x-ratelimit-remaining`), and how long ago that answer came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUsage {
    pub usage: ApiUsage,
    pub age: Duration,
}

impl WindowUsage {
    /// Reads the two headers' values; `None` unless both are numbers and the limit is not zero.
    pub fn parse(limit: &str, remaining: &str) -> Option<ApiUsage> {
        let max: u64 = limit.trim().parse().ok()?;
        let remaining: u64 = remaining.trim().parse().ok()?;
        (max > 0).then(|| ApiUsage {
            used: max.saturating_sub(remaining),
            max,
        })
    }
}

impl Budget {
    /// For Gainsight's per-minute window: `Err` with why and how long to wait (until the window
    /// the usage was seen in has surely ended) when it is at or over the budget. A usage seen a
    /// window ago or more says nothing of the current window.
    pub fn allows_window(&self, seen: Option<WindowUsage>) -> Result<(), (String, Duration)> {
        let Some(WindowUsage { usage: u, age }) =
            seen.filter(|s| s.usage.max > 0 && s.age < GAINSIGHT_WINDOW)
        else {
            return Ok(());
        };
        if u.used * 100 < u.max * u64::from(self.percent) {
            return Ok(());
        }
        let wait = GAINSIGHT_WINDOW
            .saturating_sub(age)
            .max(Duration::from_secs(1));
        Err((
            format!(
                "deferred: Gainsight reported {} of its {} calls a minute used, at or over the {}% this deployment may use; the writes go again in {} s",
                u.used,
                u.max,
                self.percent,
                wait.as_secs()
            ),
            wait,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gainsight_window_defers_until_it_has_ended() {
        let budget = Budget::default();
        let seen = |remaining: &str, age_s: u64| {
            WindowUsage::parse("100", remaining).map(|usage| WindowUsage {
                usage,
                age: Duration::from_secs(age_s),
            })
        };
        assert_eq!(WindowUsage::parse("100", "x"), None);
        assert_eq!(WindowUsage::parse("0", "0"), None);
        assert!(budget.allows_window(None).is_ok());
        assert!(budget.allows_window(seen("21", 5)).is_ok(), "79 used");
        let (why, wait) = budget.allows_window(seen("20", 5)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(55));
        assert!(
            why.contains("80 of its 100 calls a minute used") && why.contains("again in 55 s"),
            "{why}"
        );
        assert!(
            budget.allows_window(seen("0", 60)).is_ok(),
            "a window ago: a new window has begun"
        );
        assert_eq!(
            budget.allows_window(seen("0", 59)).unwrap_err().1,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn the_usage_header_is_read() {
        assert_eq!(
            ApiUsage::parse("api-usage=25/15000"),
            Some(ApiUsage {
                used: 25,
                max: 15000
            })
        );
        assert_eq!(
            ApiUsage::parse("api-usage=7/100; per-app-api-usage=2/50(appName=sync)"),
            Some(ApiUsage { used: 7, max: 100 })
        );
        assert_eq!(ApiUsage::parse("nonsense"), None);
    }

    #[test]
    fn the_budget_stops_at_its_share() {
        let budget = Budget::default();
        assert!(budget.allows(None).is_ok());
        assert!(budget
            .allows(Some(ApiUsage {
                used: 11_999,
                max: 15_000
            }))
            .is_ok());
        let why = budget
            .allows(Some(ApiUsage {
                used: 12_000,
                max: 15_000,
            }))
            .unwrap_err();
        assert!(
            why.contains("12000 of its 15000 daily API calls (80%)"),
            "{why}"
        );
    }
}
