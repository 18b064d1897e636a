//! The REST client: configuration from MLflow's environment variables, retries with
//! backoff on 429, 5xx and connection errors, and MLflow's error codes as types.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::transport::{CLIENT_TOKEN_TAG, Method, client_token};

/// MLflow's `error_code`s that callers act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    InvalidParameterValue,
    PermissionDenied,
    Unauthenticated,
    Other(String),
}

impl ErrorCode {
    fn parse(code: &str) -> ErrorCode {
        match code {
            "RESOURCE_ALREADY_EXISTS" => ErrorCode::ResourceAlreadyExists,
            "RESOURCE_DOES_NOT_EXIST" | "NOT_FOUND" => ErrorCode::ResourceDoesNotExist,
            "INVALID_PARAMETER_VALUE" | "BAD_REQUEST" => ErrorCode::InvalidParameterValue,
            "PERMISSION_DENIED" => ErrorCode::PermissionDenied,
            "UNAUTHENTICATED" => ErrorCode::Unauthenticated,
            other => ErrorCode::Other(other.to_string()),
        }
    }
}

/// Errors of the MLflow client.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The server could not be reached, or kept failing (connection errors, 429, 5xx).
    #[error("MLflow at {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// 401/403: the credentials were refused.
    #[error(
        "MLflow {endpoint}: credentials refused (HTTP {status}); check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"
    )]
    Auth { endpoint: String, status: u16 },
    /// MLflow answered with an error.
    #[error("MLflow {endpoint}: {code:?}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
    /// A response that is not what MLflow's API documents.
    #[error("MLflow {endpoint}: unexpected response: {message}")]
    Protocol { endpoint: String, message: String },
}

impl MlflowError {
    /// The MLflow error code, for API errors.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            MlflowError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<MlflowError> for kiln_core::Error {
    fn from(e: MlflowError) -> Self {
        match e {
            MlflowError::Unreachable { url, message } => kiln_core::Error::Unreachable {
                uri: format!("MLflow at {url}"),
                message,
            },
            MlflowError::Auth { .. } | MlflowError::Config(_) => {
                kiln_core::Error::Usage(e.to_string())
            }
            // A model, run or experiment the command named is not there (a mistyped
            // `--model`): fix the command, do not retry it.
            MlflowError::Api {
                code: ErrorCode::ResourceDoesNotExist,
                ..
            } => kiln_core::Error::Usage(e.to_string()),
            other => kiln_core::Error::Invalid(other.to_string()),
        }
    }
}

type Result<T, E = MlflowError> = std::result::Result<T, E>;

/// How to authenticate.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

/// Where the tracking server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct MlflowConfig {
    /// `http(s)://host:port[/prefix]`, without a trailing slash.
    pub tracking_uri: String,
    pub auth: Auth,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long to keep retrying a failing call before giving up.
    pub retry_for: Duration,
}

impl MlflowConfig {
    /// From `MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_TOKEN` or
    /// `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`, `MLFLOW_HTTP_REQUEST_TIMEOUT`
    /// (seconds, default 120) and `KILN_MLFLOW_RETRY_TIMEOUT_SECS` (default 30). `None`
    /// when `MLFLOW_TRACKING_URI` is not set.
    pub fn from_env() -> Result<Option<MlflowConfig>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(uri) = var("MLFLOW_TRACKING_URI") else {
            return Ok(None);
        };
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return Err(MlflowError::Config(format!(
                "MLFLOW_TRACKING_URI `{uri}`: Kiln talks to a tracking server over REST (http:// or https://); without one, leave the variable unset and the run's own files are the record"
            )));
        }
        let auth = match (
            var("MLFLOW_TRACKING_TOKEN"),
            var("MLFLOW_TRACKING_USERNAME"),
        ) {
            (Some(token), _) => Auth::Bearer(token),
            (None, Some(user)) => Auth::Basic {
                user,
                password: var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default(),
            },
            (None, None) => Auth::None,
        };
        let seconds = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        Ok(Some(MlflowConfig {
            tracking_uri: uri.trim_end_matches('/').to_string(),
            auth,
            timeout: Duration::from_secs(seconds("MLFLOW_HTTP_REQUEST_TIMEOUT", 120)),
            retry_for: Duration::from_secs(seconds("KILN_MLFLOW_RETRY_TIMEOUT_SECS", 30)),
        }))
    }
}

/// A run as MLflow reports it (the fields Kiln reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub status: String,
    pub artifact_uri: String,
}

/// A model version (the fields Kiln reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A key/value tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// One metric value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// MLflow's limits for one `runs/log-batch` call.
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_TOTAL: usize = 1000;
/// MLflow's limit on a parameter value.
pub const MAX_PARAM_LENGTH: usize = 6000;

/// A typed async client for MLflow's REST API.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    pub(crate) http: reqwest::Client,
    pub(crate) config: MlflowConfig,
    /// `max_results` of each page of a search (MLflow's own cap is 1000).
    pub(crate) page_size: u32,
}

impl MlflowClient {
    pub fn new(config: MlflowConfig) -> Result<MlflowClient> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| MlflowError::Config(format!("HTTP client: {e}")))?;
        Ok(MlflowClient {
            http,
            config,
            page_size: 1000,
        })
    }

    /// Searches ask for pages of `page_size` results (and follow every page).
    pub fn with_page_size(mut self, page_size: u32) -> MlflowClient {
        self.page_size = page_size.clamp(1, 1000);
        self
    }

    /// A client from the environment; `None` when `MLFLOW_TRACKING_URI` is unset.
    pub fn from_env() -> Result<Option<MlflowClient>> {
        MlflowConfig::from_env()?.map(MlflowClient::new).transpose()
    }

    pub fn tracking_uri(&self) -> &str {
        &self.config.tracking_uri
    }

    // ---- Experiments ----

    /// The experiment id by name, `None` when there is none.
    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Option<String>> {
        match self
            .call(
                Method::Get,
                "experiments/get-by-name",
                json!({"experiment_name": name}),
            )
            .await
        {
            Ok(v) => Ok(v["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string)),
            Err(e) if e.code() == Some(&ErrorCode::ResourceDoesNotExist) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_experiment(&self, name: &str) -> Result<String> {
        let v = self
            .call(Method::Post, "experiments/create", json!({"name": name}))
            .await?;
        string_field(&v, "experiment_id", "experiments/create")
    }

    /// The experiment of that name, created when missing (safe against a concurrent creator).
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<String> {
        if let Some(id) = self.get_experiment_by_name(name).await? {
            return Ok(id);
        }
        match self.create_experiment(name).await {
            Ok(id) => Ok(id),
            Err(e) if e.code() == Some(&ErrorCode::ResourceAlreadyExists) => {
                self.get_experiment_by_name(name).await?.ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    // ---- Runs ----

    /// Creates a run, once: the request carries a client token tag, and a retry after
    /// a lost reply first looks the run up by it.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let token = client_token();
        let mut tags = key_values(tags);
        tags.push(json!({"key": CLIENT_TOKEN_TAG, "value": token}));
        let body = json!({"experiment_id": experiment_id, "run_name": run_name, "start_time": now_ms(), "tags": tags});
        let v = self
            .create("runs/create", body, || async {
                let filter = format!("tags.`{CLIENT_TOKEN_TAG}` = '{token}'");
                let runs = self.search_runs(experiment_id, &filter).await?;
                Ok(runs.into_iter().next().map(|run| json!({"run": run})))
            })
            .await?;
        run_info(&v, "runs/create")
    }

    /// Runs of an experiment that match an MLflow filter (every page).
    pub async fn search_runs(&self, experiment_id: &str, filter: &str) -> Result<Vec<Value>> {
        self.all_pages(
            Method::Post,
            "runs/search",
            json!({"experiment_ids": [experiment_id], "filter": filter}),
            "runs",
        )
        .await
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Value> {
        let v = self
            .call(Method::Get, "runs/get", json!({"run_id": run_id}))
            .await?;
        Ok(v["run"].clone())
    }

    pub async fn get_run_info(&self, run_id: &str) -> Result<RunInfo> {
        let v = self
            .call(Method::Get, "runs/get", json!({"run_id": run_id}))
            .await?;
        run_info(&v, "runs/get")
    }

    /// Sets a run's status (`RUNNING`, `FINISHED`, `FAILED`, `KILLED`) and, unless
    /// running, its end time.
    pub async fn update_run(&self, run_id: &str, status: &str) -> Result<()> {
        let mut body = json!({"run_id": run_id, "status": status});
        if status != "RUNNING" {
            body["end_time"] = json!(now_ms());
        }
        self.call(Method::Post, "runs/update", body).await.map(drop)
    }

    /// Logs metrics, params and tags, split into batches within MLflow's limits.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<()> {
        let kv = |items: &[(String, String)]| -> Vec<Value> {
            items
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v.chars().take(MAX_PARAM_LENGTH).collect::<String>()}))
                .collect()
        };
        let (params, tags) = (kv(params), kv(tags));
        let metrics: Vec<Value> = metrics.iter().map(|m| json!(m)).collect();
        let (mut m, mut p, mut t) = (metrics.as_slice(), params.as_slice(), tags.as_slice());
        while !(m.is_empty() && p.is_empty() && t.is_empty()) {
            let np = p.len().min(MAX_BATCH_PARAMS);
            let nt = t.len().min(MAX_BATCH_TAGS);
            let nm = m
                .len()
                .min(MAX_BATCH_METRICS)
                .min(MAX_BATCH_TOTAL - np - nt);
            self.call(
                Method::Post,
                "runs/log-batch",
                json!({"run_id": run_id, "metrics": &m[..nm], "params": &p[..np], "tags": &t[..nt]}),
            )
            .await?;
            (m, p, t) = (&m[nm..], &p[np..], &t[nt..]);
        }
        Ok(())
    }

    /// Uploads one artifact through the tracking server's artifact proxy
    /// (`mlflow server --serve-artifacts`, the default since MLflow 2).
    pub async fn upload_artifact(&self, run: &RunInfo, path: &str, bytes: Bytes) -> Result<()> {
        let root = run.artifact_uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            MlflowError::Config(format!(
                "run {} stores artifacts at `{}`, which Kiln cannot write through the tracking server: start `mlflow server` with artifact serving (--serve-artifacts, the default since MLflow 2)",
                run.run_id, run.artifact_uri
            ))
        })?;
        let root = root.trim_start_matches('/');
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{root}/{}",
            self.config.tracking_uri,
            path.trim_start_matches('/')
        );
        self.send("mlflow-artifacts/artifacts", || {
            self.authorize(self.http.put(&url).body(bytes.clone()))
        })
        .await
        .map(drop)
    }

    /// Downloads `file` under an `mlflow-artifacts:/...` source; `None` when absent.
    pub async fn download_artifact(&self, source: &str, file: &str) -> Result<Option<Bytes>> {
        let root = source.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            MlflowError::Config(format!(
                "model source `{source}` is not served by the tracking server"
            ))
        })?;
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{file}",
            self.config.tracking_uri,
            root.trim_start_matches('/').trim_end_matches('/')
        );
        match self
            .send("mlflow-artifacts/artifacts", || {
                self.authorize(self.http.get(&url))
            })
            .await
        {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.code() == Some(&ErrorCode::ResourceDoesNotExist) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists artifacts of a run under `path` (for checks).
    pub async fn list_artifacts(&self, run_id: &str, path: &str) -> Result<Vec<String>> {
        let v = self
            .call(
                Method::Get,
                "artifacts/list",
                json!({"run_id": run_id, "path": path}),
            )
            .await?;
        Ok(v["files"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|x| x["path"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    // ---- Registered models and versions ----

    /// A registered model, `None` when there is none.
    pub async fn get_registered_model(&self, name: &str) -> Result<Option<Value>> {
        match self
            .call(Method::Get, "registered-models/get", json!({"name": name}))
            .await
        {
            Ok(v) => Ok(Some(v["registered_model"].clone())),
            Err(e) if e.code() == Some(&ErrorCode::ResourceDoesNotExist) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the registered model unless it exists; true when it was created.
    pub async fn ensure_registered_model(
        &self,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<bool> {
        let tags = key_values(tags);
        match self
            .call(
                Method::Post,
                "registered-models/create",
                json!({"name": name, "tags": tags}),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some(&ErrorCode::ResourceAlreadyExists) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a model version, once: the request carries a client token tag, and a
    /// retry after a lost reply first looks for a version of this run with it.
    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[(String, String)],
    ) -> Result<ModelVersion> {
        let token = client_token();
        let mut tags = key_values(tags);
        tags.push(json!({"key": CLIENT_TOKEN_TAG, "value": token}));
        let body = json!({"name": name, "source": source, "run_id": run_id, "tags": tags});
        let v = self
            .create("model-versions/create", body, || async {
                let found = self
                    .find_model_version(name, run_id, CLIENT_TOKEN_TAG, &token)
                    .await?;
                Ok(found.map(|v| json!({"model_version": v})))
            })
            .await?;
        model_version(&v, "model-versions/create")
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let v = self
            .call(
                Method::Get,
                "model-versions/get",
                json!({"name": name, "version": version}),
            )
            .await?;
        model_version(&v, "model-versions/get")
    }

    /// Waits until a version is `READY` (fails on `FAILED_REGISTRATION`).
    pub async fn wait_until_ready(
        &self,
        name: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<ModelVersion> {
        let started = Instant::now();
        loop {
            let v = self.get_model_version(name, version).await?;
            match v.status.as_str() {
                "READY" => return Ok(v),
                "FAILED_REGISTRATION" => {
                    return Err(MlflowError::Protocol {
                        endpoint: "model-versions/get".into(),
                        message: format!("{name} version {version} failed registration"),
                    });
                }
                _ if started.elapsed() > timeout => {
                    return Err(MlflowError::Protocol {
                        endpoint: "model-versions/get".into(),
                        message: format!(
                            "{name} version {version} not READY after {timeout:?} (status {})",
                            v.status
                        ),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// The version of `name` made from run `run_id` that has tag `key` = `value`, if any.
    pub async fn find_model_version(
        &self,
        name: &str,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<ModelVersion>> {
        let filter = format!(
            "name='{}' and run_id='{}'",
            name.replace('\'', "\\'"),
            run_id.replace('\'', "\\'")
        );
        Ok(self
            .search_model_versions(&filter)
            .await?
            .into_iter()
            .find(|v| v.tags.iter().any(|t| t.key == key && t.value == value)))
    }

    /// Versions matching an MLflow filter, e.g. `name='m' and run_id='abc'`.
    pub async fn search_model_versions(&self, filter: &str) -> Result<Vec<ModelVersion>> {
        self.all_pages(
            Method::Get,
            "model-versions/search",
            json!({"filter": filter}),
            "model_versions",
        )
        .await?
        .into_iter()
        .map(|item| parse(item, "model-versions/search"))
        .collect()
    }

    pub async fn delete_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<()> {
        self.call(
            Method::Delete,
            "model-versions/delete-tag",
            json!({"name": name, "version": version, "key": key}),
        )
        .await
        .map(drop)
    }

    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.call(
            Method::Post,
            "model-versions/set-tag",
            json!({"name": name, "version": version, "key": key, "value": value}),
        )
        .await
        .map(drop)
    }

    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.call(
            Method::Post,
            "registered-models/set-tag",
            json!({"name": name, "key": key, "value": value}),
        )
        .await
        .map(drop)
    }

    pub async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        self.call(
            Method::Post,
            "registered-models/alias",
            json!({"name": name, "alias": alias, "version": version}),
        )
        .await
        .map(drop)
    }

    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.call(
            Method::Delete,
            "registered-models/alias",
            json!({"name": name, "alias": alias}),
        )
        .await
        .map(drop)
    }

    /// The version an alias points at, `None` when the alias is not set.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>> {
        match self
            .call(
                Method::Get,
                "registered-models/alias",
                json!({"name": name, "alias": alias}),
            )
            .await
        {
            Ok(v) => model_version(&v, "registered-models/alias").map(Some),
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::ResourceDoesNotExist | ErrorCode::InvalidParameterValue)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Tags (or params) as MLflow's `[{"key": ..., "value": ...}]`.
fn key_values(items: &[(String, String)]) -> Vec<Value> {
    items
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

pub(crate) fn api_error(endpoint: &str, status: u16, body: &[u8]) -> MlflowError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = parsed["error_code"].as_str().unwrap_or(if status == 404 {
        "NOT_FOUND"
    } else {
        "HTTP_ERROR"
    });
    let message = parsed["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )
        });
    MlflowError::Api {
        endpoint: endpoint.to_string(),
        status,
        code: ErrorCode::parse(code),
        message,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn parse<T: serde::de::DeserializeOwned>(v: Value, endpoint: &str) -> Result<T> {
    serde_json::from_value(v).map_err(|e| MlflowError::Protocol {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })
}

fn string_field(v: &Value, field: &str, endpoint: &str) -> Result<String> {
    v[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| MlflowError::Protocol {
            endpoint: endpoint.to_string(),
            message: format!("no `{field}`"),
        })
}

fn run_info(v: &Value, endpoint: &str) -> Result<RunInfo> {
    let info = &v["run"]["info"];
    Ok(RunInfo {
        run_id: string_field(info, "run_id", endpoint)?,
        experiment_id: string_field(info, "experiment_id", endpoint)?,
        status: info["status"].as_str().unwrap_or_default().to_string(),
        artifact_uri: info["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

fn model_version(v: &Value, endpoint: &str) -> Result<ModelVersion> {
    parse(v["model_version"].clone(), endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_parse() {
        assert_eq!(
            ErrorCode::parse("RESOURCE_ALREADY_EXISTS"),
            ErrorCode::ResourceAlreadyExists
        );
        assert_eq!(
            ErrorCode::parse("RESOURCE_DOES_NOT_EXIST"),
            ErrorCode::ResourceDoesNotExist
        );
        let e = api_error(
            "x",
            400,
            br#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}"#,
        );
        assert_eq!(e.code(), Some(&ErrorCode::InvalidParameterValue));
        assert_eq!(e.to_string(), "MLflow x: InvalidParameterValue: bad");
        let e = api_error("y", 404, b"<html>");
        assert_eq!(e.code(), Some(&ErrorCode::ResourceDoesNotExist));
    }

    #[test]
    fn unreachable_is_transient_and_auth_is_usage() {
        let e: kiln_core::Error = MlflowError::Unreachable {
            url: "u".into(),
            message: "m".into(),
        }
        .into();
        assert_eq!(e.class().code(), 75);
        let e: kiln_core::Error = MlflowError::Auth {
            endpoint: "e".into(),
            status: 401,
        }
        .into();
        assert_eq!(e.class().code(), 2);
        let e: kiln_core::Error = api_error(
            "registered-models/get",
            404,
            br#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=adlt not found"}"#,
        )
        .into();
        assert_eq!(e.class().code(), 2, "{e}");
        assert!(e.to_string().contains("adlt"), "{e}");
    }
}
