//! The decision policy: how a model's scores become 0/1 decisions.
//!
//! A registered model version is its bundle plus this policy: the global threshold
//! and, when fairness mitigation chose them, one threshold per group of a sensitive
//! attribute. evaluate, fairness, register's champion scoring and serve all decide
//! through [`DecisionPolicy::decide`], so a version decides the same way everywhere.
//!
//! **A missing group value** (the attribute is null in a row) is decided with the
//! group thresholds' `default_threshold`, exactly as a group mitigation did not list
//! (unseen, or too small to get its own threshold): fairness's `decisions.parquet`,
//! register's champion check and kiln-serve all apply this one rule
//! ([`GroupThresholds::threshold`]). A batch without the attribute's column at all is
//! refused: the column is part of the version's input contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::MitigationConstraint;

/// File name of the policy inside a registered model version's bundle folder.
pub const DECISION_POLICY: &str = "decision_policy.json";
/// File name of mitigation's group thresholds (written by fairness).
pub const GROUP_THRESHOLDS: &str = "thresholds.json";
/// Version of the `decision_policy.json` format.
pub const POLICY_FORMAT: u32 = 1;

/// Group thresholds chosen by fairness mitigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupThresholds {
    #[serde(default = "crate::contracts::first_version")]
    pub format_version: u32,
    pub attribute: String,
    pub constraint: MitigationConstraint,
    pub min_ratio: f64,
    /// `score >= thresholds[group]` is positive.
    pub thresholds: BTreeMap<String, f64>,
    /// For groups not listed (unseen or too small).
    pub default_threshold: f64,
    pub chosen_on: String,
}

impl GroupThresholds {
    /// The threshold of a group: the default for an unlisted group and for a missing
    /// value (`None`), the module's one rule.
    pub fn threshold(&self, group: Option<&str>) -> f64 {
        group
            .and_then(|g| self.thresholds.get(g))
            .copied()
            .unwrap_or(self.default_threshold)
    }

    /// Decisions for scores of rows in the given groups.
    pub fn decide(&self, scores: &[f64], groups: &[Option<String>]) -> Vec<u8> {
        scores
            .iter()
            .zip(groups)
            .map(|(s, g)| u8::from(*s >= self.threshold(g.as_deref())))
            .collect()
    }
}

/// How scores become decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionPolicy {
    pub format_version: u32,
    /// Scores at or above this are positive (when no group threshold applies).
    pub threshold: f64,
    /// Group thresholds from fairness mitigation, if it chose them.
    pub groups: Option<GroupThresholds>,
}

impl DecisionPolicy {
    /// One threshold for everyone.
    pub fn global(threshold: f64) -> Self {
        DecisionPolicy {
            format_version: POLICY_FORMAT,
            threshold,
            groups: None,
        }
    }

    /// The global threshold with mitigation's group thresholds.
    pub fn with_groups(threshold: f64, groups: GroupThresholds) -> Self {
        DecisionPolicy {
            groups: Some(groups),
            ..DecisionPolicy::global(threshold)
        }
    }

    /// Parses `decision_policy.json`.
    pub fn from_json(bytes: &[u8], uri: &str) -> Result<Self> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the decision policy's own reader"
        )]
        let policy: DecisionPolicy = crate::store::parse_json(bytes, uri)?;
        if policy.format_version != POLICY_FORMAT {
            return Err(Error::Invalid(format!(
                "{uri}: decision policy format {} is not supported (expected {POLICY_FORMAT})",
                policy.format_version
            )));
        }
        Ok(policy)
    }

    /// The sensitive attribute the policy needs with every row, if any.
    pub fn attribute(&self) -> Option<&str> {
        self.groups.as_ref().map(|g| g.attribute.as_str())
    }

    /// The threshold that applies to a row of `group` (the attribute's value).
    pub fn threshold_for(&self, group: Option<&str>) -> f64 {
        match &self.groups {
            Some(g) => g.threshold(group),
            None => self.threshold,
        }
    }

    /// The decision for one score. `group` is the row's value of [`attribute`]
    /// (ignored by a global policy; `None` when the row's value is missing, which the
    /// module's rule decides with the default threshold).
    ///
    /// [`attribute`]: Self::attribute
    pub fn decide(&self, score: f64, group: Option<&str>) -> u8 {
        u8::from(score >= self.threshold_for(group))
    }

    /// Decisions for many rows: `groups` holds each row's value of the attribute (empty
    /// for a global policy). A grouped policy given no groups is refused, naming the
    /// attribute.
    pub fn decide_all(&self, scores: &[f64], groups: &[Option<String>]) -> Result<Vec<u8>> {
        match &self.groups {
            None => Ok(scores
                .iter()
                .map(|&s| u8::from(s >= self.threshold))
                .collect()),
            Some(g) => {
                if groups.len() != scores.len() {
                    return Err(Error::usage(format!(
                        "the decision policy needs attribute `{}` with every row",
                        g.attribute
                    )));
                }
                Ok(g.decide(scores, groups))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DecisionPolicy {
        DecisionPolicy::with_groups(
            0.5,
            GroupThresholds {
                format_version: 1,
                attribute: "sex".into(),
                constraint: MitigationConstraint::DemographicParity,
                min_ratio: 0.8,
                thresholds: [("Female".to_string(), 0.3), ("Male".to_string(), 0.6)].into(),
                default_threshold: 0.5,
                chosen_on: "validation".into(),
            },
        )
    }

    #[test]
    fn group_thresholds_apply_per_group() {
        let p = policy();
        assert_eq!(p.decide(0.4, Some("Female")), 1);
        assert_eq!(p.decide(0.4, Some("Male")), 0);
        assert_eq!(p.decide(0.55, Some("Other")), 1);
        assert_eq!(p.decide(0.6, Some("Male")), 1);
        let global = DecisionPolicy::global(0.5);
        assert_eq!(global.decide(0.5, None), 1);
        assert_eq!(global.decide(0.49, None), 0);
    }

    #[test]
    fn a_missing_group_value_gets_the_default_threshold_like_an_unseen_group() {
        let p = policy();
        // default 0.5: a missing value decides as "Other" does, not as Female (0.3).
        assert_eq!(p.decide(0.4, None), 0);
        assert_eq!(p.decide(0.5, None), 1);
        let groups = [
            Some("Female".to_string()),
            None,
            Some("Other".to_string()),
            None,
        ];
        let scores = [0.4, 0.4, 0.4, 0.55];
        assert_eq!(p.decide_all(&scores, &groups).unwrap(), [1, 0, 0, 1]);
        assert_eq!(
            p.decide_all(&scores, &groups).unwrap(),
            p.groups.as_ref().unwrap().decide(&scores, &groups),
            "the policy and mitigation's thresholds are one rule"
        );
        // No column at all is refused, naming the attribute.
        let e = p.decide_all(&[0.1, 0.2], &[]).unwrap_err().to_string();
        assert!(e.contains("`sex`"), "{e}");
    }

    #[test]
    fn round_trips_through_json() {
        let p = policy();
        let bytes = serde_json::to_vec(&p).unwrap();
        assert_eq!(DecisionPolicy::from_json(&bytes, "p.json").unwrap(), p);
        let mut bad = p.clone();
        bad.format_version = 9;
        let bytes = serde_json::to_vec(&bad).unwrap();
        assert!(DecisionPolicy::from_json(&bytes, "p.json").is_err());
    }
}
