//! One check of the analysis: the canary's and the stable version's numbers over the
//! window, and the verdict the thresholds give them. Pure: measuring is in
//! [`crate::rollout`], judging is here.

use serde::{Deserialize, Serialize};

use crate::settings::Thresholds;

/// One version's numbers over a check's window. `None`: Prometheus had no sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub version: String,
    pub requests: Option<f64>,
    pub errors: Option<f64>,
    /// errors / requests, when there were requests.
    pub error_ratio: Option<f64>,
    pub p99_seconds: Option<f64>,
}

impl Measurement {
    pub fn new(
        version: &str,
        requests: Option<f64>,
        errors: Option<f64>,
        p99: Option<f64>,
    ) -> Measurement {
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        let (requests, errors, p99_seconds) = (finite(requests), finite(errors), finite(p99));
        let error_ratio = match (requests, errors) {
            (Some(r), Some(e)) if r > 0.0 => Some((e / r).clamp(0.0, 1.0)),
            _ => None,
        };
        Measurement {
            version: version.into(),
            requests,
            errors,
            error_ratio,
            p99_seconds,
        }
    }
}

/// What a check says about the canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every threshold held on enough data.
    Pass,
    /// At least one threshold was crossed.
    Fail,
    /// Not enough data to judge: counts neither way, and halts the analysis when it
    /// repeats.
    Inconclusive,
}

/// Judges the canary against the thresholds and the stable version. The reasons name
/// each crossed threshold (or the missing data) with the numbers.
pub fn judge(canary: &Measurement, stable: &Measurement, t: &Thresholds) -> (Verdict, Vec<String>) {
    let requests = canary.requests.unwrap_or(0.0);
    if requests < t.min_requests {
        return (
            Verdict::Inconclusive,
            vec![format!(
                "canary served {requests:.0} requests in the window, under min_requests {}",
                t.min_requests
            )],
        );
    }
    // Judge what was measured: a missing latency cannot hide a failing error ratio.
    let mut failures = Vec::new();
    let mut missing = Vec::new();
    match canary.error_ratio {
        None => missing.push("its 5xx count"),
        Some(ratio) => {
            if let Some(max) = t.max_error_ratio
                && ratio > max
            {
                failures.push(format!(
                    "canary error ratio {ratio:.4} > max_error_ratio {max}"
                ));
            }
            if let (Some(increase), Some(base)) = (t.max_error_ratio_increase, stable.error_ratio)
                && ratio > base + increase
            {
                failures.push(format!(
                    "canary error ratio {ratio:.4} > stable {base:.4} + max_error_ratio_increase {increase}"
                ));
            }
        }
    }
    match canary.p99_seconds {
        None => missing.push("its latency histogram"),
        Some(p99) => {
            if let Some(max) = t.max_p99_seconds
                && p99 > max
            {
                failures.push(format!("canary p99 {p99:.4}s > max_p99_seconds {max}"));
            }
            if let (Some(factor), Some(base)) = (t.max_p99_ratio, stable.p99_seconds)
                && p99 > (base * factor).max(t.p99_ratio_floor_seconds)
            {
                failures.push(format!(
                    "canary p99 {p99:.4}s > {factor} × stable p99 {base:.4}s (floor {}s)",
                    t.p99_ratio_floor_seconds
                ));
            }
        }
    }
    if !failures.is_empty() {
        return (Verdict::Fail, failures);
    }
    if !missing.is_empty() {
        return (
            Verdict::Inconclusive,
            vec![format!(
                "canary has requests but no samples of {}",
                missing.join(" or ")
            )],
        );
    }
    (Verdict::Pass, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(requests: f64, errors: f64, p99: f64) -> Measurement {
        Measurement::new("v", Some(requests), Some(errors), Some(p99))
    }

    #[test]
    fn a_healthy_canary_passes() {
        let t = Thresholds::default();
        assert_eq!(
            judge(&m(100.0, 0.0, 0.004), &m(900.0, 0.0, 0.003), &t).0,
            Verdict::Pass
        );
    }

    #[test]
    fn errors_fail_absolutely_and_relative_to_stable() {
        let t = Thresholds::default();
        let (v, reasons) = judge(&m(100.0, 30.0, 0.004), &m(900.0, 0.0, 0.003), &t);
        assert_eq!(v, Verdict::Fail);
        assert_eq!(
            reasons[0],
            "canary error ratio 0.3000 > max_error_ratio 0.01"
        );
        assert!(reasons[1].contains("> stable 0.0000 + max_error_ratio_increase 0.005"));
        // Only the relative threshold: the stable version fails as often.
        let t = Thresholds {
            max_error_ratio: None,
            ..Thresholds::default()
        };
        assert_eq!(
            judge(&m(100.0, 30.0, 0.004), &m(900.0, 270.0, 0.003), &t).0,
            Verdict::Pass
        );
    }

    #[test]
    fn latency_fails_absolutely_and_relative_above_the_floor() {
        let t = Thresholds::default();
        let (v, reasons) = judge(&m(100.0, 0.0, 0.45), &m(900.0, 0.0, 0.004), &t);
        assert_eq!(v, Verdict::Fail);
        assert_eq!(reasons[0], "canary p99 0.4500s > max_p99_seconds 0.3");
        // 3 ms against 1 ms is noise under the floor, 200 ms against 100 ms is not.
        assert_eq!(
            judge(&m(100.0, 0.0, 0.003), &m(900.0, 0.0, 0.001), &t).0,
            Verdict::Pass
        );
        let (v, reasons) = judge(&m(100.0, 0.0, 0.2), &m(900.0, 0.0, 0.1), &t);
        assert_eq!(v, Verdict::Fail);
        assert!(
            reasons[0].starts_with("canary p99 0.2000s > 1.5 × stable p99 0.1000s"),
            "{reasons:?}"
        );
    }

    #[test]
    fn no_data_is_never_a_pass() {
        let t = Thresholds::default();
        let none = Measurement::new("v", None, None, None);
        let (v, reasons) = judge(&none, &m(900.0, 0.0, 0.003), &t);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(reasons[0].contains("served 0 requests"), "{reasons:?}");
        assert_eq!(
            judge(&m(5.0, 0.0, 0.003), &none, &t).0,
            Verdict::Inconclusive
        );
        let nan = Measurement::new("v", Some(100.0), Some(0.0), Some(f64::NAN));
        let (v, reasons) = judge(&nan, &none, &t);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(reasons[0].contains("latency histogram"));
        // Errors that reached no server still fail the check without a latency.
        let unserved = Measurement::new("v", Some(100.0), Some(60.0), None);
        assert_eq!(judge(&unserved, &m(900.0, 0.0, 0.003), &t).0, Verdict::Fail);
        // Without stable numbers the relative thresholds are skipped, not failed.
        assert_eq!(judge(&m(100.0, 0.0, 0.003), &none, &t).0, Verdict::Pass);
    }
}
