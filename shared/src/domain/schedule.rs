//! Schedule expressions of EventBridge, as job files and the template write them.

use std::time::Duration;

/// The period of a `rate(N unit)` expression; `None` for cron or nonsense.
pub fn rate_period(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_become_periods_and_cron_is_left_out() {
        assert_eq!(
            rate_period("rate(10 minutes)"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            rate_period("rate(1 hour)"),
            Some(Duration::from_secs(3_600))
        );
        assert_eq!(
            rate_period("rate(4 hours)"),
            Some(Duration::from_secs(14_400))
        );
        assert_eq!(
            rate_period("rate(1 day)"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(rate_period("cron(0 12 * * ? *)"), None);
        assert_eq!(rate_period("rate(0 minutes)"), None);
        assert_eq!(rate_period("rate(5 fortnights)"), None);
    }
}
