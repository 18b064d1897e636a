//! The command-line flags of `kiln rollout` and `kiln-rollout` (feature `cli`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `kiln rollout …`
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Canary a new version: give it 10 % of the traffic, check its errors and p99 against the stable version every interval, then promote it (100 %, alias `production`) or roll it back.
    Run(Box<RunArgs>),
    /// After the fact: all traffic back to the version the alias pointed at before, and the alias with it.
    Revert(RevertArgs),
    /// Send a V2 inference request to a new deployment until that version answers it (the deploy workflow's smoke test).
    Smoke(SmokeArgs),
    /// Print the Kubernetes patches a KServe rollout sends, and the InferenceService each one produces, without a cluster.
    Patches(PatchesArgs),
    /// Pin every InferenceService of a rendered manifest (kubectl kustomize output) that serves an alias: the alias resolved to its version now, and that version's bundle digest (--bundle-sha256), so every pod of a revision serves the same bytes.
    Pin(PinManifestArgs),
}

/// Where versions and aliases are: the local registry, or MLflow's.
#[derive(Debug, Clone, Args)]
pub struct RegistryArg {
    /// The local registry (MLflow's when MLFLOW_TRACKING_URI is set).
    #[arg(
        long = "registry",
        env = "KILN_REGISTRY",
        default_value = "kiln-runs/registry",
        value_name = "URI"
    )]
    pub uri: String,
}

/// Which router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RouterKind {
    /// A KServe InferenceService (Serverless mode) through the Kubernetes API.
    Kserve,
    /// HAProxy's runtime API (a laptop, the tests).
    Haproxy,
}

/// Where traffic is steered.
#[derive(Debug, Clone, Args)]
pub struct RouterArgs {
    #[arg(long, value_enum, env = "KILN_ROUTER")]
    pub router: RouterKind,
    /// HAProxy: the runtime API (`host:port` of `stats socket ipv4@…`, or a socket path).
    #[arg(long, env = "KILN_HAPROXY_ADMIN", value_name = "ADDR")]
    pub haproxy_admin: Option<String>,
    /// HAProxy: the backend holding both servers.
    #[arg(long, default_value = "kiln")]
    pub haproxy_backend: String,
    /// HAProxy: the server of the stable version.
    #[arg(long, default_value = "stable")]
    pub stable_server: String,
    /// HAProxy: the server of the canary.
    #[arg(long, default_value = "canary")]
    pub canary_server: String,
    /// KServe: the InferenceService.
    #[arg(long, default_value = "adult-income")]
    pub isvc: String,
    /// KServe: its namespace.
    #[arg(long, env = "KILN_NAMESPACE", default_value = "kiln")]
    pub namespace: String,
    /// KServe: the Kubernetes API (default: in-cluster, with the pod's service account).
    #[arg(long, env = "KILN_KUBE_API", value_name = "URL")]
    pub kube_api: Option<String>,
    /// KServe: a bearer token file for --kube-api.
    #[arg(long, value_name = "FILE")]
    pub kube_token_file: Option<PathBuf>,
    /// KServe: a CA bundle (PEM) for --kube-api.
    #[arg(long, value_name = "FILE")]
    pub kube_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub pin: PinArgs,
}

/// How a KServe revision is pinned to a version.
#[derive(Debug, Clone, Args)]
pub struct PinArgs {
    /// KServe: the predictor container running kiln-serve.
    #[arg(long, default_value = "kserve-container")]
    pub container: String,
    /// KServe: the `--model` reference of a version.
    #[arg(long, default_value = "models:/{model}/{version}")]
    pub model_template: String,
}

/// `kiln rollout run`
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The registered model.
    pub model: String,
    /// The version to roll out.
    #[arg(long)]
    pub version: String,
    /// The alias it takes on promotion.
    #[arg(long, default_value = "production")]
    pub alias: String,
    /// The version serving now (default: the alias's).
    #[arg(long)]
    pub stable_version: Option<String>,
    /// The name kiln-serve serves the model under (default: the model).
    #[arg(long)]
    pub served_name: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArg,
    /// Prometheus's base URL.
    #[arg(
        long,
        env = "PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090",
        value_name = "URL"
    )]
    pub prometheus: String,
    /// Analysis settings (YAML); the flags below override it.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// Time between checks (30s).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// The range each check measures (the interval).
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// The canary's share in percent (10).
    #[arg(long)]
    pub canary_percent: Option<u8>,
    /// Passing checks that promote (5).
    #[arg(long)]
    pub promote_after: Option<u32>,
    /// Failed checks that roll back (2).
    #[arg(long)]
    pub max_failures: Option<u32>,
    /// Checks in a row without enough data that halt (3).
    #[arg(long)]
    pub max_inconclusive: Option<u32>,
    /// How long the canary may take to become ready (10m).
    #[arg(long, value_name = "DURATION")]
    pub ready_timeout: Option<String>,
    /// Where the report goes.
    #[arg(long, default_value = "rollout.json", value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub router: RouterArgs,
}

/// `kiln rollout revert`
#[derive(Debug, Clone, Args)]
pub struct RevertArgs {
    /// The registered model.
    pub model: String,
    /// The alias to move back.
    #[arg(long, default_value = "production")]
    pub alias: String,
    #[command(flatten)]
    pub registry: RegistryArg,
    #[command(flatten)]
    pub router: RouterArgs,
}

/// `kiln rollout patches`
#[derive(Debug, Clone, Args)]
pub struct PatchesArgs {
    /// The InferenceService as deployed (YAML or JSON; a multi-document file such as
    /// `kubectl kustomize` output is searched for it).
    #[arg(long, value_name = "FILE")]
    pub isvc_file: PathBuf,
    /// The registered model.
    #[arg(long, default_value = "adult-income")]
    pub model: String,
    /// The version the canary would serve.
    #[arg(long)]
    pub version: String,
    /// The canary's share in percent.
    #[arg(long, default_value_t = 10)]
    pub canary_percent: u8,
    #[command(flatten)]
    pub pin: PinArgs,
    /// Write the patches and the patched resources here (else print the patches).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `kiln rollout pin`
#[derive(Debug, Clone, Args)]
pub struct PinManifestArgs {
    /// The rendered manifest (YAML, any number of documents).
    pub file: PathBuf,
    /// Write the pinned manifest here (may be FILE itself; default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArg,
    /// The predictor container running kiln-serve.
    #[arg(long, default_value = "kserve-container")]
    pub container: String,
}

/// `kiln rollout smoke`
#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    /// The server or gateway (`http://host:port`).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A Host header (an Istio ingress gateway routes by it).
    #[arg(long)]
    pub host: Option<String>,
    /// The served model name.
    #[arg(long, default_value = "adult-income")]
    pub model: String,
    /// Pass only when this version answers.
    #[arg(long)]
    pub expect_version: Option<String>,
    /// KServe V1 records to send (`{"instances": [...]}`), as V2 tensors.
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
    /// How long the new revision may take.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
}
