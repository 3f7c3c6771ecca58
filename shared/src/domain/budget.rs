//! The org's daily API allowance and the share of it this deployment may use: above that share
//! the pusher stops writing to Salesforce and defers, so the sync never starves the org's other
//! integrations (or its people) of API calls.

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

#[cfg(test)]
mod tests {
    use super::*;

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
