//! The command-line flags of `kiln promote` and `kiln rollback` (feature `cli`).

/// Flags of `kiln promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct PromoteArgs {
    /// The registered model.
    pub model: String,
    /// The version to point the alias at.
    #[arg(long)]
    pub version: String,
    /// The alias to move.
    #[arg(long, default_value = "production")]
    pub alias: String,
    /// The local registry (ignored when MLFLOW_TRACKING_URI is set).
    #[arg(long, env = "KILN_REGISTRY", value_name = "URI")]
    pub registry: Option<String>,
}

/// Flags of `kiln rollback`.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    /// The registered model.
    pub model: String,
    /// The alias to move back.
    #[arg(long, default_value = "production")]
    pub alias: String,
    /// The local registry (ignored when MLFLOW_TRACKING_URI is set).
    #[arg(long, env = "KILN_REGISTRY", value_name = "URI")]
    pub registry: Option<String>,
}
