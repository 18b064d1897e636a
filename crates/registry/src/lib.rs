//! The two registries: MLflow's (over REST) and a local one in the store, with the
//! same operations — find a version of a run, create a version, set, read and roll
//! back aliases (each alias keeps the history of versions it pointed at).
//!
//! Local layout under the registry root:
//!
//! ```text
//! <model>/versions/<n>/model/...      the bundle's files
//! <model>/versions/<n>/version.json   run, model sha256, tags, time (written last)
//! <model>/aliases.json                {"aliases": {"staging": 3}, "history": {"staging": [1, 2]}}
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use kiln_core::contracts::bundle::{BUNDLE_FILES, bundle_digest};
use kiln_core::store::ArtifactStore;
use kiln_core::{Error, Result};
use kiln_mlflow::{MlflowClient, ModelVersion, RunLink};

/// `version.json` of a local version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalVersion {
    pub version: u64,
    pub run_uri: String,
    pub model_sha256: String,
    pub created_at: String,
    pub tags: BTreeMap<String, String>,
}

/// `aliases.json` of a local model, and each revision in `aliases/<revision>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aliases {
    /// How many alias moves led here (0: none recorded in the revision log yet).
    #[serde(default)]
    pub revision: u64,
    pub aliases: BTreeMap<String, u64>,
    /// Earlier versions of each alias, oldest first.
    pub history: BTreeMap<String, Vec<u64>>,
}

/// What an alias move does.
enum Move<'a> {
    To(&'a str),
    Back,
}

/// Attempts of one alias move before it gives up (each lost race re-reads and retries).
const MAX_MOVE_ATTEMPTS: u32 = 64;

/// The revision file of a local model's aliases.
fn revision_path(model: &str, revision: u64) -> String {
    format!("{model}/aliases/{revision:010}.json")
}

/// MLflow has no compare-and-swap on aliases: this process's moves go one at a time,
/// and each is read back after it is written.
static MLFLOW_MOVES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A registry.
pub enum Registry {
    Local(ArtifactStore),
    Mlflow(MlflowClient),
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registry::Local(root) => f.debug_tuple("Local").field(&root.uri()).finish(),
            Registry::Mlflow(client) => f.debug_tuple("Mlflow").field(client).finish(),
        }
    }
}

pub use kiln_core::contracts::register::Registered;

/// An alias change, as `promote` and `rollback` report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasChange {
    pub model: String,
    pub alias: String,
    pub from: Option<String>,
    pub to: String,
}

/// Registered-model tag that keeps an alias's history in MLflow.
/// The version tag (local `version.json` tags, MLflow model-version tags) holding the
/// registered bundle's digest ([`kiln_model::bundle::bundle_digest`]).
pub const BUNDLE_SHA256_TAG: &str = "kiln.bundle_sha256";
/// A version [`Registry::create`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub version: String,
    /// Where its bundle is.
    pub source: String,
    /// The tags it was created with (digests and signature included).
    pub tags: BTreeMap<String, String>,
}

/// The OMS root digest of a signed version's files (the signature's subject).
pub const SIGNATURE_ROOT_TAG: &str = "kiln.signature.root_sha256";
/// sha256 of the version's signature file, `model/model.sig`.
pub const SIGNATURE_SHA256_TAG: &str = "kiln.signature.sha256";
/// The signing key's hint: sha256 of its PEM public key.
pub const SIGNATURE_KEY_TAG: &str = "kiln.signature.key_hint";

/// The file that reserves a local version number (created if absent, before the copy).
const CLAIM: &str = "claim.json";
/// How many taken numbers a registration steps over before it gives up.
const MAX_CLAIMS: u64 = 1000;

fn history_tag(alias: &str) -> String {
    format!("kiln.alias_history.{alias}")
}

impl Registry {
    /// MLflow when `MLFLOW_TRACKING_URI` is set, else the local registry at `local`.
    pub fn open(local: &str) -> Result<Registry> {
        Ok(match MlflowClient::from_env()? {
            Some(client) => Registry::Mlflow(client),
            None => Registry::Local(ArtifactStore::open(local)?),
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Registry::Local(_) => "local",
            Registry::Mlflow(_) => "mlflow",
        }
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "the local registry's own records"
    )]
    async fn local_versions(root: &ArtifactStore, model: &str) -> Result<Vec<LocalVersion>> {
        let mut out = Vec::new();
        for path in root.list(&format!("{model}/versions")).await? {
            if path.ends_with("/version.json") {
                out.push(root.get_json::<LocalVersion>(&path).await?);
            }
        }
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    /// Claims the next free version number: `versions/<n>/claim.json` is created only
    /// if absent, so two registrations racing on one store (two pipelines, two Argo
    /// pods) never get the same number; the loser moves on to the next. A claim whose
    /// registration died is skipped for good: version numbers may have gaps, never
    /// duplicates.
    async fn claim_version(root: &ArtifactStore, model: &str, run_uri: &str) -> Result<u64> {
        let prefix = format!("{model}/versions/");
        let highest = root
            .list(&format!("{model}/versions"))
            .await?
            .iter()
            .filter_map(|path| {
                let rest = path.strip_prefix(&prefix)?;
                rest.split('/').next()?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0);
        let claim = serde_json::to_vec(&serde_json::json!({
            "run_uri": run_uri,
            "claimed_at": chrono::Utc::now().to_rfc3339(),
        }))
        .map_err(|e| Error::Invalid(format!("encoding a version claim: {e}")))?;
        for next in highest + 1..=highest + MAX_CLAIMS {
            let path = format!("{prefix}{next}/{CLAIM}");
            if root.create(&path, Bytes::from(claim.clone())).await? {
                return Ok(next);
            }
        }
        Err(Error::Invalid(format!(
            "{model}: {MAX_CLAIMS} version numbers after {highest} were claimed while this registration tried"
        )))
    }

    /// The aliases as of the newest revision: `aliases.json` (a view that may lag),
    /// then every revision recorded after it.
    #[expect(
        clippy::disallowed_methods,
        reason = "the local registry's own records"
    )]
    async fn local_aliases(root: &ArtifactStore, model: &str) -> Result<Aliases> {
        let path = format!("{model}/aliases.json");
        let mut aliases = if root.exists(&path).await? {
            root.get_json::<Aliases>(&path).await?
        } else {
            Aliases::default()
        };
        loop {
            let next = revision_path(model, aliases.revision + 1);
            if !root.exists(&next).await? {
                return Ok(aliases);
            }
            aliases = root.get_json(&next).await?;
        }
    }

    /// One alias move on a local or S3 registry, as compare-and-swap: read the newest
    /// revision r, compute the move, and create `aliases/<r+1>.json` only if absent
    /// (a create-if-absent both object_store backends provide: O_EXCL on a folder,
    /// If-None-Match on S3). A writer that loses the race re-reads and tries again, so
    /// concurrent moves are applied one after another and none is lost. `aliases.json`
    /// is then rewritten as a view of the newest revision.
    async fn move_local(
        root: &ArtifactStore,
        model: &str,
        alias: &str,
        to: Move<'_>,
    ) -> Result<AliasChange> {
        let parse = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| Error::usage(format!("version `{v}` is not a number")))
        };
        if let Move::To(version) = to {
            parse(version)?;
            if !root
                .exists(&format!("{model}/versions/{version}/version.json"))
                .await?
            {
                return Err(Error::usage(format!(
                    "{model}: no version {version} in {}",
                    root.uri()
                )));
            }
        }
        for attempt in 0..MAX_MOVE_ATTEMPTS {
            let mut aliases = Self::local_aliases(root, model).await?;
            let from = aliases.aliases.get(alias).copied();
            let history = aliases.history.entry(alias.to_string()).or_default();
            let target = match to {
                Move::To(version) => {
                    let version = parse(version)?;
                    if from == Some(version) {
                        return Ok(AliasChange {
                            model: model.into(),
                            alias: alias.into(),
                            from: from.map(|v| v.to_string()),
                            to: version.to_string(),
                        });
                    }
                    history.extend(from);
                    version
                }
                Move::Back => history.pop().ok_or_else(|| {
                    Error::usage(format!(
                        "{model}: alias `{alias}` has no earlier version to roll back to (it points at {})",
                        from.map_or("nothing".to_string(), |v| v.to_string())
                    ))
                })?,
            };
            aliases.aliases.insert(alias.to_string(), target);
            aliases.revision += 1;
            let bytes = serde_json::to_vec_pretty(&aliases)
                .map_err(|e| Error::Invalid(format!("encoding aliases: {e}")))?;
            if root
                .create(&revision_path(model, aliases.revision), Bytes::from(bytes))
                .await?
            {
                Self::publish_aliases(root, model).await?;
                return Ok(AliasChange {
                    model: model.into(),
                    alias: alias.into(),
                    from: from.map(|v| v.to_string()),
                    to: target.to_string(),
                });
            }
            // Another move took this revision: back off a little (more after each loss,
            // with jitter so the racers spread out), then start again from the newest.
            let jitter = u64::from(chrono::Utc::now().timestamp_subsec_nanos() % 7);
            let wait = (2 + jitter) * u64::from(attempt.min(10) + 1);
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
        Err(Error::Unreachable {
            uri: root.uri_of(&format!("{model}/aliases")),
            message: format!(
                "alias `{alias}` lost {MAX_MOVE_ATTEMPTS} races with concurrent moves; retry"
            ),
        })
    }

    /// Rewrites `aliases.json` as the newest revision, again if a newer one appeared
    /// meanwhile, so the view converges on the log however the writers interleave.
    async fn publish_aliases(root: &ArtifactStore, model: &str) -> Result<()> {
        let path = format!("{model}/aliases.json");
        loop {
            let newest = Self::local_aliases(root, model).await?;
            root.put_json(&path, &newest).await?;
            if Self::local_aliases(root, model).await?.revision == newest.revision {
                return Ok(());
            }
        }
    }

    /// The version already registered for this run and model bytes, if any.
    pub async fn find(
        &self,
        model: &str,
        run_uri: &str,
        run_id: Option<&str>,
        sha256: &str,
    ) -> Result<Option<String>> {
        match self {
            Registry::Local(root) => Ok(Self::local_versions(root, model)
                .await?
                .into_iter()
                .find(|v| v.run_uri == run_uri && v.model_sha256 == sha256)
                .map(|v| v.version.to_string())),
            Registry::Mlflow(client) => {
                let Some(run_id) = run_id else {
                    return Ok(None);
                };
                if client.get_registered_model(model).await?.is_none() {
                    return Ok(None);
                }
                Ok(client
                    .find_model_version(model, run_id, "kiln.model_sha256", sha256)
                    .await?
                    .map(|v| v.version))
            }
        }
    }

    /// Registers a bundle: local copy, or (MLflow) a version whose source is the run's
    /// uploaded `model/` artifacts. Returns the version and its source.
    ///
    /// With a `signer`, the registered files are signed (OMS v1.0, `model.sig` beside
    /// them in the version's `model/` folder) before the version exists, and the
    /// signature's digests are tagged on it.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        model: &str,
        bundle: &ArtifactStore,
        run_uri: &str,
        mlflow_run: Option<&kiln_mlflow::TrackedRun>,
        tags: &BTreeMap<String, String>,
        extra: &[(&str, bytes::Bytes)],
        signer: Option<&kiln_signing::SigningKey>,
    ) -> Result<Created> {
        let sha = tags.get("kiln.model_sha256").cloned().unwrap_or_default();
        // The registered bundle (the trained files, with `extra` over them) is pinned by
        // its digest: deploy and rollout write it beside the version, kiln-serve checks it.
        let mut files: BTreeMap<&str, Bytes> = BTreeMap::new();
        for file in BUNDLE_FILES {
            if bundle.exists(file).await? {
                files.insert(file, bundle.get(file).await?);
            }
        }
        for (file, bytes) in extra {
            files.insert(file, bytes.clone());
        }
        let views: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_ref())).collect();
        let mut tags = tags.clone();
        tags.insert(BUNDLE_SHA256_TAG.into(), bundle_digest(&views));
        let mut extra: Vec<(&str, Bytes)> = extra.to_vec();
        if let Some(key) = signer {
            let named: Vec<(String, Bytes)> = files
                .iter()
                .map(|(n, b)| (n.to_string(), b.clone()))
                .collect();
            let signed = kiln_signing::sign("model", &named, key)
                .map_err(|e| Error::Usage(format!("signing {model}: {e}")))?;
            tags.insert(SIGNATURE_ROOT_TAG.into(), signed.root_digest);
            tags.insert(
                SIGNATURE_SHA256_TAG.into(),
                kiln_core::store::sha256_hex(&signed.bytes),
            );
            tags.insert(SIGNATURE_KEY_TAG.into(), key.verifying_key().hint());
            extra.push((kiln_signing::SIGNATURE_FILE, Bytes::from(signed.bytes)));
        }
        // What the version stores: the bundle's files read above, with `extra` (and the
        // signature) over them.
        let mut stored = files.clone();
        for (file, bytes) in &extra {
            stored.insert(file, bytes.clone());
        }
        let tags = &tags;
        match self {
            Registry::Local(root) => {
                let next = Self::claim_version(root, model, run_uri).await?;
                let dir = format!("{model}/versions/{next}");
                let puts = stored.iter().map(|(file, bytes)| {
                    let (path, bytes) = (format!("{dir}/model/{file}"), bytes.clone());
                    async move { root.put(&path, bytes).await }
                });
                futures::future::try_join_all(puts).await?;
                let version = LocalVersion {
                    version: next,
                    run_uri: run_uri.to_string(),
                    model_sha256: sha,
                    created_at: chrono::Utc::now().to_rfc3339(),
                    tags: tags.clone(),
                };
                root.put_json(&format!("{dir}/version.json"), &version)
                    .await?;
                Ok(Created {
                    version: next.to_string(),
                    source: root.uri_of(&format!("{dir}/model")),
                    tags: tags.clone(),
                })
            }
            Registry::Mlflow(client) => {
                let run = mlflow_run
                    .ok_or_else(|| Error::Invalid("no MLflow run to register from".into()))?;
                let info = run.info();
                // The files go up concurrently: each is its own artifact PUT.
                let uploads = stored.iter().map(|(file, bytes)| {
                    let (path, bytes, info) = (format!("model/{file}"), bytes.clone(), &info);
                    async move { client.upload_artifact(info, &path, bytes).await }
                });
                futures::future::try_join_all(uploads).await?;
                let model_tags: Vec<(String, String)> =
                    vec![("kiln.managed".into(), "true".into())];
                client.ensure_registered_model(model, &model_tags).await?;
                let source = format!("{}/model", run.artifact_uri.trim_end_matches('/'));
                let tag_list: Vec<(String, String)> =
                    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let version = client
                    .create_model_version(model, &source, &run.run_id, &tag_list)
                    .await?;
                // A version whose files are already in place is READY at once (what
                // MLflow answers for a run's artifacts); otherwise poll until it is.
                let ready = if version.status == "READY" {
                    version
                } else {
                    client
                        .wait_until_ready(
                            model,
                            &version.version,
                            std::time::Duration::from_secs(120),
                        )
                        .await?
                };
                Ok(Created {
                    version: ready.version,
                    source,
                    tags: tags.clone(),
                })
            }
        }
    }

    /// Stores a document about a version beside its bundle (the ML-BOM): in the local
    /// registry `<model>/versions/<v>/<name>`; in MLflow a run artifact `<name>`, named
    /// on the version by the tags `kiln.<name>` (its URI) and `kiln.<name>.sha256`.
    /// Returns its URI.
    pub async fn attach(
        &self,
        model: &str,
        version: &str,
        mlflow_run: Option<&kiln_mlflow::TrackedRun>,
        name: &str,
        bytes: Bytes,
    ) -> Result<String> {
        match self {
            Registry::Local(root) => {
                let path = format!("{model}/versions/{version}/{name}");
                root.put(&path, bytes).await?;
                Ok(root.uri_of(&path))
            }
            Registry::Mlflow(client) => {
                let run = mlflow_run
                    .ok_or_else(|| Error::Invalid("no MLflow run to attach to".into()))?;
                let sha = kiln_core::store::sha256_hex(&bytes);
                client.upload_artifact(&run.info(), name, bytes).await?;
                let uri = format!("{}/{name}", run.artifact_uri.trim_end_matches('/'));
                let (uri_tag, sha_tag) = (format!("kiln.{name}"), format!("kiln.{name}.sha256"));
                futures::future::try_join(
                    client.set_model_version_tag(model, version, &uri_tag, &uri),
                    client.set_model_version_tag(model, version, &sha_tag, &sha),
                )
                .await?;
                Ok(uri)
            }
        }
    }

    /// A version's tags (`kiln.run_uri`, `kiln.model_sha256`, `kiln.bundle_sha256`, the
    /// data and signature digests, ...).
    pub async fn tags(&self, model: &str, version: &str) -> Result<BTreeMap<String, String>> {
        match self {
            Registry::Local(root) => {
                let path = format!("{model}/versions/{version}/version.json");
                if !root.exists(&path).await? {
                    return Err(Error::usage(format!(
                        "{model}: no version {version} in {}",
                        root.uri()
                    )));
                }
                #[expect(clippy::disallowed_methods, reason = "the local registry's own record")]
                let record: LocalVersion = root.get_json(&path).await?;
                let mut tags = record.tags;
                tags.entry("kiln.run_uri".into()).or_insert(record.run_uri);
                tags.entry("kiln.model_sha256".into())
                    .or_insert(record.model_sha256);
                Ok(tags)
            }
            Registry::Mlflow(client) => {
                let v = client.get_model_version(model, version).await?;
                Ok(v.tags.into_iter().map(|t| (t.key, t.value)).collect())
            }
        }
    }

    /// The digest a version's bundle was registered with (`None` for versions
    /// registered before digests were recorded).
    pub async fn bundle_sha256(&self, model: &str, version: &str) -> Result<Option<String>> {
        Ok(self.tags(model, version).await?.remove(BUNDLE_SHA256_TAG))
    }

    /// The version an alias points at.
    pub async fn alias(&self, model: &str, alias: &str) -> Result<Option<String>> {
        match self {
            Registry::Local(root) => Ok(Self::local_aliases(root, model)
                .await?
                .aliases
                .get(alias)
                .map(u64::to_string)),
            Registry::Mlflow(client) => Ok(client
                .get_model_version_by_alias(model, alias)
                .await?
                .map(|v| v.version)),
        }
    }

    /// Where a version's bundle is (local folder, or downloaded from MLflow to `scratch`).
    pub async fn bundle_of(
        &self,
        model: &str,
        version: &str,
        scratch: &ArtifactStore,
    ) -> Result<ArtifactStore> {
        match self {
            Registry::Local(root) => Ok(root.child(&format!("{model}/versions/{version}/model"))),
            Registry::Mlflow(client) => {
                let v: ModelVersion = client.get_model_version(model, version).await?;
                for file in BUNDLE_FILES
                    .iter()
                    .chain(std::iter::once(&kiln_signing::SIGNATURE_FILE))
                {
                    if let Some(bytes) = client.download_artifact(&v.source, file).await? {
                        scratch.put(file, bytes).await?;
                    }
                }
                Ok(scratch.clone())
            }
        }
    }

    /// Points an alias at a version, remembering where it pointed before.
    pub async fn set_alias(&self, model: &str, alias: &str, version: &str) -> Result<AliasChange> {
        match self {
            Registry::Local(root) => Self::move_local(root, model, alias, Move::To(version)).await,
            Registry::Mlflow(_) => {
                let _one_at_a_time = MLFLOW_MOVES.lock().await;
                let from = self.alias(model, alias).await?;
                if from.as_deref() != Some(version) {
                    let mut history = self.history(model, alias).await?;
                    if let Some(previous) = &from {
                        history.push(previous.clone());
                    }
                    self.write_mlflow_alias(model, alias, version, from.as_deref(), history)
                        .await?;
                }
                Ok(AliasChange {
                    model: model.into(),
                    alias: alias.into(),
                    from,
                    to: version.into(),
                })
            }
        }
    }

    /// Moves an alias back to the version it pointed at before.
    pub async fn rollback(&self, model: &str, alias: &str) -> Result<AliasChange> {
        match self {
            Registry::Local(root) => Self::move_local(root, model, alias, Move::Back).await,
            Registry::Mlflow(_) => {
                let _one_at_a_time = MLFLOW_MOVES.lock().await;
                let from = self.alias(model, alias).await?;
                let mut history = self.history(model, alias).await?;
                let to = history.pop().ok_or_else(|| {
                    Error::usage(format!(
                        "{model}: alias `{alias}` has no earlier version to roll back to (it points at {})",
                        from.as_deref().unwrap_or("nothing")
                    ))
                })?;
                self.write_mlflow_alias(model, alias, &to, from.as_deref(), history)
                    .await?;
                Ok(AliasChange {
                    model: model.into(),
                    alias: alias.into(),
                    from,
                    to,
                })
            }
        }
    }

    async fn history(&self, model: &str, alias: &str) -> Result<Vec<String>> {
        match self {
            Registry::Local(root) => Ok(Self::local_aliases(root, model)
                .await?
                .history
                .get(alias)
                .map(|h| h.iter().map(u64::to_string).collect())
                .unwrap_or_default()),
            Registry::Mlflow(client) => {
                let registered = client.get_registered_model(model).await?;
                let tag = history_tag(alias);
                let text = registered
                    .as_ref()
                    .and_then(|m| m["tags"].as_array())
                    .and_then(|tags| tags.iter().find(|t| t["key"] == tag.as_str()))
                    .and_then(|t| t["value"].as_str())
                    .unwrap_or("[]")
                    .to_string();
                Ok(serde_json::from_str(&text).unwrap_or_default())
            }
        }
    }

    /// Points an MLflow alias at `version` (it left `left`, if anywhere), records its
    /// history, and reads the alias back: a move by another process in between is
    /// reported, not silently overwritten.
    async fn write_mlflow_alias(
        &self,
        model: &str,
        alias: &str,
        version: &str,
        left: Option<&str>,
        history: Vec<String>,
    ) -> Result<()> {
        let Registry::Mlflow(client) = self else {
            return Err(Error::Invalid("not an MLflow registry".into()));
        };
        client.get_model_version(model, version).await?;
        client.set_alias(model, alias, version).await?;
        let text = serde_json::to_string(&history).unwrap_or_default();
        client
            .set_registered_model_tag(model, &history_tag(alias), &text)
            .await?;
        client
            .set_model_version_tag(model, version, "stage", alias)
            .await?;
        // The version the alias left no longer holds that stage: without this,
        // after a rollback two versions would both say `production`.
        if let Some(left) = left.filter(|&l| l != version) {
            let old = client.get_model_version(model, left).await?;
            if old
                .tags
                .iter()
                .any(|t| t.key == "stage" && t.value == alias)
            {
                client
                    .delete_model_version_tag(model, left, "stage")
                    .await?;
            }
        }
        let now = self.alias(model, alias).await?;
        if now.as_deref() != Some(version) {
            return Err(Error::Unreachable {
                uri: format!("models:/{model}@{alias}"),
                message: format!(
                    "the alias was moved to {} by someone else while this move wrote {version}; check it and retry",
                    now.as_deref().unwrap_or("nothing")
                ),
            });
        }
        Ok(())
    }
}

/// Which version of a registered model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Version(String),
    Alias(String),
}

/// What a `--model` argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelReference {
    /// A bundle folder: a local path or a store URI (`s3://…`, `/mnt/models`).
    Bundle(String),
    /// A version in the local registry (`adult-income@staging`, `adult-income/3`).
    Local { model: String, selector: Selector },
    /// A version in MLflow (`models:/adult-income@staging`, `models:/adult-income/3`).
    Mlflow { model: String, selector: Selector },
}

impl ModelReference {
    /// Parses a reference. A path that exists locally is a bundle even when it looks
    /// like `name/3`; a URI with a scheme (other than `models:`) is a bundle.
    pub fn parse(text: &str) -> Result<ModelReference> {
        if let Some(rest) = text.strip_prefix("models:/") {
            let (model, selector) = name_and_selector(rest).ok_or_else(|| {
                Error::usage(format!(
                    "model reference `{text}`: expected models:/<name>@<alias> or models:/<name>/<version>"
                ))
            })?;
            return Ok(ModelReference::Mlflow { model, selector });
        }
        if text.contains("://") || std::path::Path::new(text).exists() {
            return Ok(ModelReference::Bundle(text.to_string()));
        }
        match name_and_selector(text) {
            Some((model, selector)) => Ok(ModelReference::Local { model, selector }),
            None => Ok(ModelReference::Bundle(text.to_string())),
        }
    }
}

fn name_and_selector(text: &str) -> Option<(String, Selector)> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if let Some((model, alias)) = text.split_once('@') {
        return (valid_name(model) && valid_name(alias))
            .then(|| (model.to_string(), Selector::Alias(alias.to_string())));
    }
    let (model, version) = text.split_once('/')?;
    (valid_name(model) && !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()))
        .then(|| (model.to_string(), Selector::Version(version.to_string())))
}

/// A reference resolved to a bundle folder.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub bundle: ArtifactStore,
    /// The registered model's name, for registry references.
    pub model: Option<String>,
    /// The registered version, for registry references.
    pub version: Option<String>,
    /// Where it came from, for logs (`models:/adult-income@staging → version 3`).
    pub description: String,
}

/// Resolves a model reference to a bundle folder. `local_registry` is the local
/// registry's root; MLflow references need `MLFLOW_TRACKING_URI` and are downloaded
/// through MLflow's artifact proxy into `scratch`.
pub async fn resolve(
    reference: &ModelReference,
    local_registry: &str,
    scratch: &ArtifactStore,
) -> Result<ResolvedModel> {
    let Some(located) = locate(reference, local_registry).await? else {
        let ModelReference::Bundle(uri) = reference else {
            return Err(Error::Invalid(
                "a registry reference located nothing".into(),
            ));
        };
        return Ok(ResolvedModel {
            bundle: ArtifactStore::open(uri)?,
            model: None,
            version: None,
            description: uri.clone(),
        });
    };
    let bundle = located
        .registry
        .bundle_of(&located.model, &located.version, scratch)
        .await?;
    Ok(ResolvedModel {
        description: located.describe(),
        bundle,
        model: Some(located.model),
        version: Some(located.version),
    })
}

/// A registered version a reference names: its registry, model and version.
#[derive(Debug)]
pub struct Located {
    pub registry: Registry,
    pub model: String,
    pub version: String,
}

impl Located {
    /// `adult-income version 3 (local registry)`.
    pub fn describe(&self) -> String {
        format!(
            "{} version {} ({} registry)",
            self.model,
            self.version,
            self.registry.backend()
        )
    }
}

/// The registered version a reference names, its alias resolved (`None` for a bundle
/// folder or URI, which no registry knows). An unknown alias or version is a usage
/// error naming it.
pub async fn locate(reference: &ModelReference, local_registry: &str) -> Result<Option<Located>> {
    let (registry, model, selector) = match reference {
        ModelReference::Bundle(_) => return Ok(None),
        ModelReference::Local { model, selector } => (
            Registry::Local(ArtifactStore::open(local_registry)?),
            model,
            selector,
        ),
        ModelReference::Mlflow { model, selector } => {
            let client = MlflowClient::from_env()?.ok_or_else(|| {
                Error::usage(format!(
                    "model reference `models:/{model}…` needs MLFLOW_TRACKING_URI"
                ))
            })?;
            (Registry::Mlflow(client), model, selector)
        }
    };
    let version = match selector {
        Selector::Version(v) => v.clone(),
        Selector::Alias(alias) => registry.alias(model, alias).await?.ok_or_else(|| {
            Error::usage(format!(
                "registered model `{model}` ({} registry) has no alias `{alias}`",
                registry.backend()
            ))
        })?,
    };
    if let Registry::Local(root) = &registry
        && !root
            .exists(&format!("{model}/versions/{version}/version.json"))
            .await?
    {
        return Err(Error::usage(format!(
            "registered model `{model}` has no version {version} in the local registry {}",
            root.uri()
        )));
    }
    Ok(Some(Located {
        registry,
        model: model.clone(),
        version,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let alias = |m: &str, a: &str| (m.to_string(), Selector::Alias(a.to_string()));
        assert_eq!(
            ModelReference::parse("adult-income@staging").unwrap(),
            ModelReference::Local {
                model: "adult-income".into(),
                selector: alias("adult-income", "staging").1
            }
        );
        assert_eq!(
            ModelReference::parse("adult-income/3").unwrap(),
            ModelReference::Local {
                model: "adult-income".into(),
                selector: Selector::Version("3".into())
            }
        );
        assert_eq!(
            ModelReference::parse("models:/adult-income@production").unwrap(),
            ModelReference::Mlflow {
                model: "adult-income".into(),
                selector: Selector::Alias("production".into())
            }
        );
        assert!(ModelReference::parse("models:/adult income").is_err());
        for bundle in [
            "s3://bucket/runs/1/train/model",
            "/mnt/models",
            "some/dir/model",
        ] {
            assert_eq!(
                ModelReference::parse(bundle).unwrap(),
                ModelReference::Bundle(bundle.into())
            );
        }
    }
}
