//! What `kiln slo` and `kiln-slo` run: the flags turned into library calls.

use std::io::Write;
use std::path::Path;

use crate::args::{
    CheckArgs, DashboardArgs, GenerateArgs, RuleFormat, SloCommand, duration, key_values,
};
use crate::error::{Result, SloError};
use crate::probe::ProbeSettings;
use crate::rules::{GenerateOptions, RuleFile, generate, render_prometheus_rule, render_rule_file};
use crate::spec::SloSpec;

/// Runs one `kiln slo` subcommand; output goes to stdout (or `--out`).
pub async fn execute(command: &SloCommand) -> Result<()> {
    match command {
        SloCommand::Generate(args) => run_generate(args),
        SloCommand::Check(args) => run_check(args).await,
        SloCommand::Dashboards(args) => run_dashboards(args),
    }
}

fn run_dashboards(args: &DashboardArgs) -> Result<()> {
    if args.out_dir.is_none() && args.config_maps.is_none() {
        return Err(SloError::Usage(
            "kiln slo dashboards: give --out-dir DIR and/or --config-maps FILE".into(),
        ));
    }
    let spec = SloSpec::load(&args.spec)?;
    let dashboards = crate::dashboards::all(&spec, &args.windows.load()?);
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).map_err(|source| SloError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        for (file, dashboard) in &dashboards {
            write_atomically(&dir.join(file), &crate::dashboards::render(dashboard))?;
        }
    }
    if let Some(path) = &args.config_maps {
        write_atomically(
            path,
            &crate::dashboards::config_maps(&dashboards, &args.namespace),
        )?;
    }
    Ok(())
}

fn run_generate(args: &GenerateArgs) -> Result<()> {
    let spec = SloSpec::load(&args.spec)?;
    let options = GenerateOptions {
        extra_labels: key_values("--label", &args.labels)?,
        windows: args.windows.load()?,
        ..GenerateOptions::default()
    };
    let mut rules = generate(&spec, &options);
    let mut source = args.spec.display().to_string();
    for path in &args.include {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SloError::spec(&file, format!("cannot read: {e}")))?;
        let extra: RuleFile = serde_norway::from_str(&text)
            .map_err(|e| SloError::spec(&file, format!("not a Prometheus rule file: {e}")))?;
        rules.groups.extend(extra.groups);
        source.push_str(&format!(" and {file}"));
    }
    let text = match args.format {
        RuleFormat::Rules => render_rule_file(&rules, &source),
        RuleFormat::PrometheusRule => render_prometheus_rule(
            &rules,
            &source,
            &args.name,
            args.namespace.as_deref(),
            &key_values("--resource-label", &args.resource_labels)?,
        ),
    };
    match &args.out {
        Some(path) => write_atomically(path, &text),
        None => stdout(&text),
    }
}

async fn run_check(args: &CheckArgs) -> Result<()> {
    let spec = SloSpec::load(&args.spec)?;
    let windows = args.windows.load()?;
    let client = crate::prometheus::PrometheusClient::new(&args.prometheus)?;
    let mut report = crate::check::check(&spec, &windows, &client).await?;
    if let Some(url) = &args.probe {
        let body = match &args.probe_body {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                SloError::Usage(format!("--probe-body {}: cannot read: {e}", path.display()))
            })?),
            None => None,
        };
        let settings = ProbeSettings {
            url: url.clone(),
            body,
            rate: args.probe_rate,
            duration: duration("--probe-duration", &args.probe_duration)?,
            latency: duration("--probe-latency", &args.probe_latency)?,
            max_error_ratio: args.probe_max_errors,
            max_in_flight: ((args.probe_rate * 2.0) as usize).clamp(16, 4096),
        };
        report.probe = Some(crate::probe::probe(&settings).await?);
    }
    stdout(&report.table())?;
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).expect("the report serialises") + "\n";
        write_atomically(path, &json)?;
    }
    report.verdict()
}

fn stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| SloError::Write {
            path: "stdout".into(),
            source,
        })
}

/// Writes beside the target and renames: the file is either the old one or complete.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    kiln_core::local_file::write_atomically(path, text.as_bytes()).map_err(|source| {
        SloError::Write {
            path: path.display().to_string(),
            source,
        }
    })
}
