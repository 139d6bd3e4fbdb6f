//! Retention policy: how long a tenant keeps each stream, as Loki decides it.
//!
//! Owns the rule resolution of Loki's `TenantsRetention.RetentionPeriodFor`
//! (`pkg/compactor/retention/expiration.go`): among the `retention_stream`
//! rules whose selector matches the stream, the highest priority wins, and
//! among equal priorities the shortest period; with no matching rule the
//! tenant's `retention_period` applies. A period of zero keeps data forever.
//! Does not own where limits come from: the compactor reads them through the
//! narrow [`RetentionLimits`] trait, implemented for the runtime
//! [`Overrides`] (so a reloaded runtime file takes effect at the next run).

use std::time::Duration;

use crate::limits::Overrides;
use crate::model::{Labels, Matcher, SelectorError, parse_selector};

/// The limits retention reads, per tenant.
pub trait RetentionLimits: Send + Sync {
    fn retention_period(&self, tenant: &str) -> Duration;
    /// `(selector, priority, period)` per `retention_stream` rule, in order.
    fn stream_retention(&self, tenant: &str) -> Vec<(String, i64, Duration)>;
}

impl RetentionLimits for Overrides {
    fn retention_period(&self, tenant: &str) -> Duration {
        self.get(tenant).retention_period.get()
    }

    fn stream_retention(&self, tenant: &str) -> Vec<(String, i64, Duration)> {
        self.get(tenant)
            .retention_stream
            .iter()
            .map(|r| (r.selector.clone(), r.priority, r.period.get()))
            .collect()
    }
}

/// One parsed `retention_stream` rule.
#[derive(Clone, Debug)]
pub struct StreamRule {
    pub matchers: Vec<Matcher>,
    pub priority: i64,
    pub period: Duration,
}

/// A tenant's retention policy.
#[derive(Clone, Debug, Default)]
pub struct RetentionPolicy {
    /// `retention_period`; zero keeps data forever.
    pub period: Duration,
    pub rules: Vec<StreamRule>,
}

impl RetentionPolicy {
    /// Reads and parses a tenant's policy.
    pub fn for_tenant(limits: &dyn RetentionLimits, tenant: &str) -> Result<Self, SelectorError> {
        let rules = limits
            .stream_retention(tenant)
            .into_iter()
            .map(|(selector, priority, period)| {
                Ok(StreamRule {
                    matchers: parse_selector(&selector)?,
                    priority,
                    period,
                })
            })
            .collect::<Result<Vec<_>, SelectorError>>()?;
        Ok(RetentionPolicy {
            period: limits.retention_period(tenant),
            rules,
        })
    }

    /// The retention period of a stream (zero: forever).
    pub fn period_for(&self, labels: &Labels) -> Duration {
        let mut chosen: Option<&StreamRule> = None;
        for rule in &self.rules {
            if !rule.matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            chosen = match chosen {
                Some(c) if c.priority > rule.priority => Some(c),
                Some(c) if c.priority == rule.priority && c.period <= rule.period => Some(c),
                _ => Some(rule),
            };
        }
        chosen.map_or(self.period, |r| r.period)
    }

    /// The longest period any stream of the tenant keeps data; `None` when
    /// some stream keeps data forever (Loki's `getMaxRetentionInterval`).
    pub fn max_period(&self) -> Option<Duration> {
        if self.period.is_zero() || self.rules.iter().any(|r| r.period.is_zero()) {
            return None;
        }
        Some(
            self.rules
                .iter()
                .map(|r| r.period)
                .fold(self.period, Duration::max),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    struct Fixed(Duration, Vec<(String, i64, Duration)>);

    impl RetentionLimits for Fixed {
        fn retention_period(&self, _: &str) -> Duration {
            self.0
        }
        fn stream_retention(&self, _: &str) -> Vec<(String, i64, Duration)> {
            self.1.clone()
        }
    }

    fn rule(sel: &str, prio: i64, hours: u64) -> (String, i64, Duration) {
        (sel.to_string(), prio, Duration::from_secs(hours * H))
    }

    fn period(p: &RetentionPolicy, labels: &str) -> u64 {
        p.period_for(&Labels::parse(labels).unwrap()).as_secs() / H
    }

    #[test]
    fn rules_resolve_as_loki_orders_them() {
        // Loki's expiration_test.go cases, in spirit.
        let limits = Fixed(
            Duration::from_secs(744 * H),
            vec![
                rule(r#"{namespace="dev"}"#, 1, 24),
                rule(r#"{namespace="dev", app="api"}"#, 1, 48),
                rule(r#"{namespace=~"dev|prod"}"#, 2, 168),
                rule(r#"{env="qa"}"#, 0, 72),
                rule(r#"{env="qa", team="a"}"#, 0, 36),
            ],
        );
        let p = RetentionPolicy::for_tenant(&limits, "t").unwrap();
        assert_eq!(
            period(&p, r#"{app="x"}"#),
            744,
            "no rule: the global period"
        );
        assert_eq!(
            period(&p, r#"{namespace="dev"}"#),
            168,
            "higher priority wins over a shorter period"
        );
        assert_eq!(period(&p, r#"{namespace="prod"}"#), 168);
        assert_eq!(period(&p, r#"{env="qa"}"#), 72);
        assert_eq!(
            period(&p, r#"{env="qa", team="a"}"#),
            36,
            "equal priority: the shortest period"
        );
        assert_eq!(p.max_period(), Some(Duration::from_secs(744 * H)));
    }

    #[test]
    fn zero_means_forever() {
        let p = RetentionPolicy::for_tenant(&Fixed(Duration::ZERO, vec![]), "t").unwrap();
        assert_eq!(period(&p, r#"{a="b"}"#), 0);
        assert_eq!(p.max_period(), None);
        let p = RetentionPolicy::for_tenant(
            &Fixed(Duration::ZERO, vec![rule(r#"{a="b"}"#, 0, 48)]),
            "t",
        )
        .unwrap();
        assert_eq!(
            period(&p, r#"{a="b"}"#),
            48,
            "a rule applies without a global period"
        );
        assert_eq!(period(&p, r#"{a="c"}"#), 0);
        assert_eq!(p.max_period(), None);
    }

    #[test]
    fn runtime_overrides_feed_the_policy() {
        let o = Overrides::new(crate::limits::Limits::default());
        o.apply_runtime_yaml(
            "overrides:\n  t1:\n    retention_period: 48h\n    retention_stream:\n      - selector: '{app=\"a\"}'\n        period: 24h\n",
            "rt.yaml",
        )
        .unwrap();
        let p = RetentionPolicy::for_tenant(&o, "t1").unwrap();
        assert_eq!(period(&p, r#"{app="a"}"#), 24);
        assert_eq!(period(&p, r#"{app="b"}"#), 48);
        let other = RetentionPolicy::for_tenant(&o, "t2").unwrap();
        assert_eq!(other.max_period(), None);
    }
}
