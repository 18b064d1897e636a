//! The command-line flags of `kiln slo` and `kiln-slo` (feature `cli`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::error::{Result, SloError};
use crate::windows::{AlertWindows, PromDuration};

/// `kiln slo …`
#[derive(Debug, Subcommand)]
pub enum SloCommand {
    /// Write Prometheus rules (SLIs per window, budgets, burn rates, page and ticket alerts) from a Sloth prometheus/v1 spec.
    Generate(GenerateArgs),
    /// Print each SLO's SLI, budget left and burn rates from Prometheus; exit 3 on an exhausted budget or a firing page.
    Check(CheckArgs),
    /// Write the Grafana dashboards (serving, SLOs, pipeline, GPUs) as JSON files and/or Kubernetes ConfigMaps.
    Dashboards(DashboardArgs),
}

/// `kiln slo dashboards`
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// The SLO spec the SLO dashboard is built from.
    #[arg(long, value_name = "FILE", default_value = "monitoring/slos.yaml")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub windows: WindowArgs,
    /// Write one JSON file per dashboard into this folder.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Write them as ConfigMaps (for Grafana's dashboard sidecar) to this file.
    #[arg(long, value_name = "FILE")]
    pub config_maps: Option<PathBuf>,
    /// With --config-maps: their namespace.
    #[arg(long, default_value = "monitoring")]
    pub namespace: String,
}

/// The SLO period and alert windows.
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// The SLO period with Sloth's built-in windows (30d or 28d).
    #[arg(long, default_value = "30d", conflicts_with = "windows")]
    pub period: String,
    /// A Sloth AlertWindows file (sloth.slok.dev/v1) with its own period and windows.
    #[arg(long, value_name = "FILE")]
    pub windows: Option<PathBuf>,
}

impl WindowArgs {
    pub fn load(&self) -> Result<AlertWindows> {
        match &self.windows {
            Some(path) => {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| SloError::spec(&file, format!("cannot read: {e}")))?;
                AlertWindows::parse(&file, &text)
            }
            None => AlertWindows::builtin(&self.period).ok_or_else(|| {
                SloError::Usage(format!(
                    "--period {}: built-in windows exist for 30d and 28d; give other periods as --windows FILE",
                    self.period
                ))
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuleFormat {
    /// A Prometheus rule file (`rule_files:`, promtool).
    Rules,
    /// A prometheus-operator PrometheusRule resource.
    PrometheusRule,
}

/// `kiln slo generate`
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The SLO spec (Sloth prometheus/v1 YAML).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub windows: WindowArgs,
    /// A label added to every recording rule, e.g. `--label team=ml` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Append the groups of these hand-written rule files (repeatable), e.g. to ship
    /// them in the same PrometheusRule.
    #[arg(long = "include", value_name = "FILE")]
    pub include: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RuleFormat::Rules)]
    pub format: RuleFormat,
    /// With --format prometheus-rule: the resource's name.
    #[arg(long, default_value = "kiln-slos")]
    pub name: String,
    /// With --format prometheus-rule: the resource's namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// With --format prometheus-rule: a metadata label (e.g. the operator's ruleSelector's), repeatable.
    #[arg(long = "resource-label", value_name = "KEY=VALUE")]
    pub resource_labels: Vec<String>,
    /// Write here (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `kiln slo check`
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The SLO spec (Sloth prometheus/v1 YAML) whose rules Prometheus evaluates.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub windows: WindowArgs,
    /// Prometheus's base URL.
    #[arg(
        long,
        env = "KILN_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    pub prometheus: String,
    /// Also run the throughput check against this URL (e.g. a V1 `:predict` endpoint).
    #[arg(long, value_name = "URL")]
    pub probe: Option<String>,
    /// With --probe: a JSON body to POST (GET without it).
    #[arg(long, value_name = "FILE", requires = "probe")]
    pub probe_body: Option<PathBuf>,
    /// With --probe: requests per second (the throughput objective).
    #[arg(long, default_value_t = 100.0, requires = "probe")]
    pub probe_rate: f64,
    /// With --probe: how long to send.
    #[arg(long, default_value = "30s", requires = "probe")]
    pub probe_duration: String,
    /// With --probe: the p99 latency objective.
    #[arg(long, default_value = "300ms", requires = "probe")]
    pub probe_latency: String,
    /// With --probe: the largest share of failed requests.
    #[arg(long, default_value_t = 0.001, requires = "probe")]
    pub probe_max_errors: f64,
    /// Write the report as JSON here too.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `KEY=VALUE` pairs into a map.
pub fn key_values(flag: &str, pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| SloError::Usage(format!("{flag} `{pair}`: expected KEY=VALUE")))
        })
        .collect()
}

/// A duration flag.
pub fn duration(flag: &str, text: &str) -> Result<std::time::Duration> {
    PromDuration::parse(text).map(|d| d.0).ok_or_else(|| {
        SloError::Usage(format!("{flag} `{text}`: not a duration (e.g. 30s, 300ms)"))
    })
}
