//! `kiln slo check`: each SLO's state, read from the rules `kiln slo generate` wrote,
//! as Prometheus evaluates them now.

use serde::Serialize;

use crate::error::{Result, SloError};
use crate::probe::ProbeResult;
use crate::prometheus::PrometheusClient;
use crate::rules::{names, sli_series};
use crate::spec::SloSpec;
use crate::windows::AlertWindows;

/// One SLO as Prometheus sees it. `None` is "no data".
#[derive(Debug, Clone, Serialize)]
pub struct SloStatus {
    pub id: String,
    pub slo: String,
    /// Percent of good events the SLO promises.
    pub objective: f64,
    /// Share of good events over the shortest window (1 − the error ratio).
    pub sli: Option<f64>,
    /// The error ratio over the whole period.
    pub period_error_ratio: Option<f64>,
    /// Share of the period's error budget left (1 = untouched, ≤ 0 = exhausted).
    pub budget_remaining: Option<f64>,
    pub current_burn_rate: Option<f64>,
    pub period_burn_rate: Option<f64>,
    /// Severities (`page`, `ticket`) of this SLO's alerts firing now.
    pub firing: Vec<String>,
}

impl SloStatus {
    /// Why this SLO fails the check, if it does.
    pub fn failure(&self) -> Option<String> {
        if self.firing.iter().any(|s| s == "page") {
            return Some(format!("{}: the page alert is firing", self.id));
        }
        match self.budget_remaining {
            Some(left) if left <= 0.0 => Some(format!(
                "{}: error budget exhausted ({:.1} % left)",
                self.id,
                left * 100.0
            )),
            _ => None,
        }
    }
}

/// Every SLO of a spec, and the probe's result when one ran.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub prometheus: String,
    pub period: String,
    pub slos: Vec<SloStatus>,
    pub probe: Option<ProbeResult>,
}

impl CheckReport {
    /// What makes the check fail (exit 3): exhausted budgets, page alerts, a failed probe.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = self.slos.iter().filter_map(SloStatus::failure).collect();
        if let Some(probe) = &self.probe
            && !probe.passed
        {
            failures.push(format!(
                "throughput probe failed: {}",
                probe.reasons.join("; ")
            ));
        }
        failures
    }

    /// `Ok` when nothing failed, else the failures as a breach (exit 3).
    pub fn verdict(&self) -> Result<()> {
        let failures = self.failures();
        if failures.is_empty() {
            return Ok(());
        }
        Err(SloError::Breached {
            summary: format!("SLO check failed: {}", failures.join("; ")),
            failures,
        })
    }

    /// The table `kiln slo check` prints.
    pub fn table(&self) -> String {
        let period = &self.period;
        let header = [
            "SLO".to_string(),
            "objective".into(),
            "SLI now".into(),
            format!("errors {period}"),
            "budget left".into(),
            "burn now".into(),
            format!("burn {period}"),
            "alerts".into(),
        ];
        let mut rows = vec![header.to_vec()];
        for s in &self.slos {
            let no_data = s.sli.is_none() && s.period_error_ratio.is_none();
            let cell =
                |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
            rows.push(vec![
                s.slo.clone(),
                format!("{} %", crate::rules::number(s.objective)),
                if no_data {
                    "no data".into()
                } else {
                    cell(s.sli, &|v| format!("{:.3} %", v * 100.0))
                },
                cell(s.period_error_ratio, &|v| format!("{:.3} %", v * 100.0)),
                cell(s.budget_remaining, &|v| format!("{:.1} %", v * 100.0)),
                cell(s.current_burn_rate, &|v| format!("{v:.2}x")),
                cell(s.period_burn_rate, &|v| format!("{v:.2}x")),
                if s.firing.is_empty() {
                    "-".into()
                } else {
                    s.firing.join(",")
                },
            ]);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = format!("SLOs at {} (period {period})\n", self.prometheus);
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    if i == 0 {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        if let Some(probe) = &self.probe {
            out.push_str(&probe.summary());
            out.push('\n');
        }
        let failures = self.failures();
        if failures.is_empty() {
            out.push_str("ok: no budget exhausted, no page alert firing\n");
        } else {
            for failure in failures {
                out.push_str(&format!("FAILED: {failure}\n"));
            }
        }
        out
    }
}

/// Reads every SLO's series from Prometheus. An SLO whose rules Prometheus does not
/// have (no `sloth_slo_info`) is a usage error: the check would otherwise pass on nothing.
pub async fn check(
    spec: &SloSpec,
    windows: &AlertWindows,
    client: &PrometheusClient,
) -> Result<CheckReport> {
    let shortest = windows.recorded_windows()[0];
    let period = windows.slo_period;
    let mut slos = Vec::new();
    let mut missing = Vec::new();
    for slo in &spec.slos {
        let id = slo.id(&spec.service);
        let select = |series: &str| format!("{series}{{sloth_id=\"{id}\"}}");
        if client.query(&select(names::INFO)).await?.is_empty() {
            missing.push(id.clone());
            continue;
        }
        let error_now = client.value(&select(&sli_series(shortest))).await?;
        let firing = client
            .query(&format!(
                "ALERTS{{sloth_id=\"{id}\", alertstate=\"firing\"}}"
            ))
            .await?;
        let mut severities: Vec<String> = firing
            .iter()
            .filter_map(|s| s.labels.get("sloth_severity").cloned())
            .collect();
        severities.sort();
        severities.dedup();
        slos.push(SloStatus {
            slo: slo.name.clone(),
            objective: slo.objective,
            sli: error_now.filter(|v| v.is_finite()).map(|e| 1.0 - e),
            period_error_ratio: finite(client.value(&select(&sli_series(period))).await?),
            budget_remaining: finite(client.value(&select(names::BUDGET_REMAINING)).await?),
            current_burn_rate: finite(client.value(&select(names::CURRENT_BURN_RATE)).await?),
            period_burn_rate: finite(client.value(&select(names::PERIOD_BURN_RATE)).await?),
            firing: severities,
            id,
        });
    }
    if !missing.is_empty() {
        return Err(SloError::Usage(format!(
            "Prometheus at {} has no rules for {} (no sloth_slo_info series): load the rules of `kiln slo generate` first",
            client.url(),
            missing.join(", ")
        )));
    }
    Ok(CheckReport {
        prometheus: client.url().to_string(),
        period: period.to_string(),
        slos,
        probe: None,
    })
}

/// NaN (a ratio of zero over zero: no traffic) is no data.
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}
