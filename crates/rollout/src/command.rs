//! What `kiln rollout` and `kiln-rollout` run: the flags turned into library calls.

use std::path::Path;

use kiln_prometheus::PromDuration;
use kiln_prometheus::PrometheusClient;
use kiln_registry::Registry;
use serde_json::Value;

use crate::args::{
    PatchesArgs, PinManifestArgs, RevertArgs, RolloutCommand, RouterArgs, RouterKind, RunArgs,
    SmokeArgs,
};
use crate::error::{Result, RolloutError};
use crate::rollout::{Plan, Rollout};
use crate::router::Router;
use crate::router::haproxy::HaproxyRouter;
use crate::router::kserve::{KserveRouter, KubeApi, canary_patch, traffic_patch};
use crate::router::patch::{json_patch, merge_patch};
use crate::settings::Settings;

/// Runs one `kiln rollout` subcommand.
pub async fn execute(command: &RolloutCommand) -> Result<()> {
    match command {
        RolloutCommand::Run(args) => match args.router.router {
            RouterKind::Haproxy => run(args, &haproxy(&args.router)?).await,
            RouterKind::Kserve => {
                let mut router = kserve(&args.router, &args.model)?;
                router.registry = Some(std::sync::Arc::new(Registry::open(&args.registry.uri)?));
                run(args, &router).await
            }
        },
        RolloutCommand::Revert(args) => match args.router.router {
            RouterKind::Haproxy => revert(args, &haproxy(&args.router)?).await,
            RouterKind::Kserve => {
                let mut router = kserve(&args.router, &args.model)?;
                router.registry = Some(std::sync::Arc::new(Registry::open(&args.registry.uri)?));
                revert(args, &router).await
            }
        },
        RolloutCommand::Patches(args) => patches(args),
        RolloutCommand::Pin(args) => pin(args).await,
        RolloutCommand::Smoke(args) => smoke(args).await,
    }
}

fn haproxy(args: &RouterArgs) -> Result<HaproxyRouter> {
    let admin = args.haproxy_admin.clone().ok_or_else(|| {
        RolloutError::Usage("--router haproxy needs --haproxy-admin ADDR (its runtime API)".into())
    })?;
    Ok(HaproxyRouter {
        admin,
        backend: args.haproxy_backend.clone(),
        stable_server: args.stable_server.clone(),
        canary_server: args.canary_server.clone(),
    })
}

fn kserve(args: &RouterArgs, model: &str) -> Result<KserveRouter> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| RolloutError::Usage(format!("{}: {e}", path.display())))
    };
    let api = match &args.kube_api {
        None => KubeApi::in_cluster()?,
        Some(url) => {
            let token = match &args.kube_token_file {
                Some(f) => Some(String::from_utf8_lossy(&read(f)?).into_owned()),
                None => None,
            };
            let ca = match &args.kube_ca_file {
                Some(f) => Some(read(f)?),
                None => None,
            };
            KubeApi::new(url, token, ca.as_deref())?
        }
    };
    let mut router = KserveRouter::new(api, &args.namespace, &args.isvc, model);
    router.container = args.pin.container.clone();
    router.model_template = args.pin.model_template.clone();
    Ok(router)
}

fn duration(flag: &str, text: &Option<String>) -> Result<Option<PromDuration>> {
    text.as_deref()
        .map(|t| {
            PromDuration::parse(t).ok_or_else(|| {
                RolloutError::Usage(format!("{flag} `{t}`: not a duration (e.g. 30s, 5m)"))
            })
        })
        .transpose()
}

/// The settings file (or the defaults) with the flags over it.
pub fn settings(args: &RunArgs) -> Result<Settings> {
    let mut s = match &args.settings {
        Some(path) => Settings::load(path)?,
        None => Settings::default(),
    };
    if let Some(d) = duration("--interval", &args.interval)? {
        s.interval = d;
    }
    if let Some(d) = duration("--window", &args.window)? {
        s.window = Some(d);
    }
    if let Some(d) = duration("--ready-timeout", &args.ready_timeout)? {
        s.ready_timeout = d;
    }
    s.canary_percent = args.canary_percent.unwrap_or(s.canary_percent);
    s.promote_after = args.promote_after.unwrap_or(s.promote_after);
    s.max_failures = args.max_failures.unwrap_or(s.max_failures);
    s.max_inconclusive = args.max_inconclusive.unwrap_or(s.max_inconclusive);
    s.validate(
        &args
            .settings
            .as_ref()
            .map_or("flags".into(), |p| p.display().to_string()),
    )?;
    Ok(s)
}

async fn run<R: Router>(args: &RunArgs, router: &R) -> Result<()> {
    let settings = settings(args)?;
    let prometheus = PrometheusClient::new(&args.prometheus)?;
    let registry = Registry::open(&args.registry.uri)?;
    let plan = Plan {
        model: args.model.clone(),
        served_name: args
            .served_name
            .clone()
            .unwrap_or_else(|| args.model.clone()),
        canary_version: args.version.clone(),
        alias: args.alias.clone(),
        stable_version: args.stable_version.clone(),
    };
    let rollout = Rollout {
        router,
        prometheus: &prometheus,
        registry: &registry,
        settings: &settings,
    };
    let finished = rollout.run(&plan, shutdown_signal()).await?;
    write_atomically(&args.out, &finished.report.to_json())?;
    tracing::info!("wrote {}", args.out.display());
    if let Some(client) = kiln_mlflow::MlflowClient::from_env().map_err(kiln_core::Error::from)? {
        match crate::tracking::log(&client, &finished.report).await {
            Ok(run_id) => tracing::info!("logged to MLflow run {run_id}"),
            // The decision stands; a tracking failure must not turn a rollback into a retry.
            Err(e) => tracing::warn!("logging the rollout to MLflow failed: {e}"),
        }
    }
    match finished.error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

async fn revert<R: Router>(args: &RevertArgs, router: &R) -> Result<()> {
    let registry = Registry::open(&args.registry.uri)?;
    let change = registry.rollback(&args.model, &args.alias).await?;
    router.revert(&change.to).await?;
    stdout(&format!(
        "{}: alias `{}` {} → {}; all traffic to version {} via {}\n",
        change.model,
        change.alias,
        change.from.as_deref().unwrap_or("(unset)"),
        change.to,
        change.to,
        router.describe()
    ))
}

async fn smoke(args: &SmokeArgs) -> Result<()> {
    let timeout = duration("--timeout", &Some(args.timeout.clone()))?.expect("given");
    let smoke = crate::smoke::Smoke {
        url: args.url.clone(),
        host: args.host.clone(),
        model: args.model.clone(),
        expect_version: args.expect_version.clone(),
        instances: crate::smoke::read_instances(&args.request)?,
        timeout: timeout.0,
    };
    let line = smoke.run().await?;
    stdout(&format!("{line}\n"))
}

async fn pin(args: &PinManifestArgs) -> Result<()> {
    let file = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| RolloutError::Usage(format!("{file}: cannot read: {e}")))?;
    let registry = Registry::open(&args.registry.uri)?;
    let (pinned, pins) =
        crate::pinning::pin_manifest(&text, &file, &registry, &args.container).await?;
    for line in &pins {
        tracing::info!("{line}");
    }
    match &args.out {
        Some(out) => write_atomically(out, &pinned),
        None => stdout(&pinned),
    }
}

/// Reads the InferenceService out of a YAML or JSON file (possibly many documents).
pub fn read_isvc(path: &Path) -> Result<Value> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| RolloutError::Usage(format!("{file}: cannot read: {e}")))?;
    for document in serde_norway::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(document)
            .map_err(|e| RolloutError::Usage(format!("{file}: not YAML: {e}")))?;
        if value["kind"] == "InferenceService" {
            return Ok(value);
        }
    }
    Err(RolloutError::Usage(format!(
        "{file}: no InferenceService in it"
    )))
}

fn patches(args: &PatchesArgs) -> Result<()> {
    let isvc = read_isvc(&args.isvc_file)?;
    let mut router_model = args.pin.model_template.replace("{model}", &args.model);
    router_model = router_model.replace("{version}", &args.version);
    let canary = canary_patch(
        &isvc,
        &args.pin.container,
        &router_model,
        args.canary_percent,
    )
    .map_err(|m| RolloutError::Usage(format!("{}: {m}", args.isvc_file.display())))?;
    let (promote, rollback) = (traffic_patch(100), traffic_patch(0));
    let mut after_canary = isvc.clone();
    json_patch(&mut after_canary, &canary)
        .map_err(|m| RolloutError::Usage(format!("{}: {m}", args.isvc_file.display())))?;
    let (mut after_promote, mut after_rollback) = (after_canary.clone(), after_canary.clone());
    merge_patch(&mut after_promote, &promote);
    merge_patch(&mut after_rollback, &rollback);
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("JSON") + "\n";
    match &args.out_dir {
        None => {
            stdout(&format!(
                "# start the canary: PATCH (application/json-patch+json)
{}
# promote: PATCH (application/merge-patch+json)
{}
# roll back: PATCH (application/merge-patch+json)
{}",
                pretty(&canary),
                pretty(&promote),
                pretty(&rollback)
            ))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| RolloutError::Usage(format!("{}: {e}", dir.display())))?;
            for (name, value) in [
                ("canary.json-patch.json", &canary),
                ("promote.merge-patch.json", &promote),
                ("rollback.merge-patch.json", &rollback),
                ("after-canary.json", &after_canary),
                ("after-promote.json", &after_promote),
                ("after-rollback.json", &after_rollback),
            ] {
                write_atomically(&dir.join(name), &pretty(value))?;
            }
        }
    }
    Ok(())
}

/// Writes a file whole or not at all.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    kiln_core::local_file::write_atomically(path, text.as_bytes()).map_err(|e| {
        RolloutError::Core(kiln_core::Error::io(
            format!("writing {}", path.display()),
            e,
        ))
    })
}

fn stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| RolloutError::Core(kiln_core::Error::io("writing to stdout", e)))
}

/// Resolves on SIGINT or SIGTERM: the rollout halts and gives the stable version all
/// the traffic before it exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
