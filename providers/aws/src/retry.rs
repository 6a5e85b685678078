//! `spec.retrySettings` as the SDK's retry configuration, the way ESO configures the Go SDK
//! (`providers/v1/aws/provider.go`): the standard retryer, `maxRetries` as the maximum number of
//! attempts (the first one included), and `retryInterval`, when set, as a fixed delay between
//! attempts. Without `retrySettings` the SDK's defaults apply.
use std::time::Duration;

use aws_config::retry::RetryConfig;

/// Retries of Secrets Manager calls for one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Attempts in all, at least 1.
    pub max_attempts: u32,
    /// A fixed delay between attempts; the SDK's exponential backoff with jitter when `None`.
    pub interval: Option<Duration>,
}

impl RetrySettings {
    /// ESO's default when `retrySettings` is set without `maxRetries`.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

    /// From the store's `maxRetries` (attempts, as ESO reads it) and `retryInterval`.
    ///
    /// `maxRetries: 0` (or less) means a single attempt. The Go SDK reads 0 as "no limit" and
    /// retries until its retry token bucket runs dry; a retry loop without end inside one
    /// reconcile would hold the worker, so lockstep does not follow it.
    pub fn from_spec(max_retries: Option<i32>, interval: Option<Duration>) -> Self {
        let max_attempts = match max_retries {
            None => Self::DEFAULT_MAX_ATTEMPTS,
            Some(n) => u32::try_from(n).unwrap_or(0).max(1),
        };
        Self {
            max_attempts,
            interval: interval.filter(|d| !d.is_zero()),
        }
    }

    pub fn retry_config(&self) -> RetryConfig {
        let config = RetryConfig::standard().with_max_attempts(self.max_attempts);
        match self.interval {
            // The standard strategy waits `base * min(initial * 2^n, max)`. With initial = max =
            // the interval and a static base of 1 that is exactly the interval on every attempt,
            // ESO's fixed delay. The static base is the only public switch for it and sits
            // behind aws-smithy-types' `test-util` feature, which adds nothing else.
            Some(interval) => config
                .with_initial_backoff(interval)
                .with_max_backoff(interval)
                .with_use_static_exponential_base(true),
            None => config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_retries_is_the_number_of_attempts_as_in_eso() {
        assert_eq!(RetrySettings::from_spec(None, None).max_attempts, 3);
        assert_eq!(RetrySettings::from_spec(Some(5), None).max_attempts, 5);
        assert_eq!(RetrySettings::from_spec(Some(1), None).max_attempts, 1);
        assert_eq!(RetrySettings::from_spec(Some(0), None).max_attempts, 1);
        assert_eq!(RetrySettings::from_spec(Some(-2), None).max_attempts, 1);
    }

    #[test]
    fn an_interval_is_a_fixed_delay() {
        let settings = RetrySettings::from_spec(Some(4), Some(Duration::from_secs(10)));
        let config = settings.retry_config();
        assert_eq!(config.max_attempts(), 4);
        assert_eq!(config.initial_backoff(), Duration::from_secs(10));
        assert_eq!(config.max_backoff(), Duration::from_secs(10));
        assert!(config.use_static_exponential_base());
    }

    #[test]
    fn without_an_interval_the_sdk_backoff_applies() {
        let config = RetrySettings::from_spec(Some(2), None).retry_config();
        let standard = RetryConfig::standard();
        assert_eq!(config.max_attempts(), 2);
        assert_eq!(config.initial_backoff(), standard.initial_backoff());
        assert_eq!(config.max_backoff(), standard.max_backoff());
        assert!(!config.use_static_exponential_base());
        let zero = RetrySettings::from_spec(Some(2), Some(Duration::ZERO));
        assert_eq!(zero.interval, None);
    }
}
