//! A KServe InferenceService as the router (Serverless mode: Knative revisions behind
//! Istio). KServe splits traffic between the last rolled-out revision and the latest
//! ready one by `spec.predictor.canaryTrafficPercent`; it never rolls back by itself.
//!
//! - start: one JSON patch (RFC 6902) that pins the predictor's `--model` to the new
//!   version and sets the canary share, so the new revision never gets more than that
//!   share (a `test` op guards against a concurrent edit of the argument);
//! - promote / roll back: a JSON merge patch of `canaryTrafficPercent` (100 / 0);
//! - ready: the predictor's latest created revision is new and is the latest ready one.
//!
//! Calls go to the Kubernetes API with the pod's service account (in a pod), or to a
//! given API URL and token (`kubectl proxy` on a laptop).

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Result, RolloutError, error_chain};
use crate::router::Router;

const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";

/// A client of the Kubernetes API (the calls this router makes). `Debug` says whether
/// there is a token, never what it is.
#[derive(Clone)]
pub struct KubeApi {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi")
            .field("base", &self.base)
            .field(
                "token",
                &self.token.as_ref().map(|_| format_args!("<redacted>")),
            )
            .finish_non_exhaustive()
    }
}

impl KubeApi {
    /// `base` (`https://…`, or `http://127.0.0.1:8001` behind `kubectl proxy`), a bearer
    /// token and a CA bundle (PEM) to trust, each optional.
    pub fn new(base: &str, token: Option<String>, ca_pem: Option<&[u8]>) -> Result<KubeApi> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| RolloutError::Usage(format!("Kubernetes CA bundle: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| RolloutError::Usage(format!("HTTP client: {e}")))?;
        Ok(KubeApi {
            base: base.trim_end_matches('/').to_string(),
            token: token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
            http,
        })
    }

    /// Inside a pod: the API server from `KUBERNETES_SERVICE_HOST`/`_PORT`, the service
    /// account's token and CA.
    pub fn in_cluster() -> Result<KubeApi> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
            RolloutError::Usage(
                "--router kserve: not in a pod (no KUBERNETES_SERVICE_HOST); give --kube-api URL (e.g. `kubectl proxy` and http://127.0.0.1:8001)".into(),
            )
        })?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let read = |file: &str| {
            std::fs::read(format!("{SERVICE_ACCOUNT}/{file}")).map_err(|e| {
                RolloutError::Usage(format!(
                    "{SERVICE_ACCOUNT}/{file}: {e} (is a service account token mounted?)"
                ))
            })
        };
        let token = String::from_utf8_lossy(&read("token")?).into_owned();
        let ca = read("ca.crt")?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        KubeApi::new(&format!("https://{host}:{port}"), Some(token), Some(&ca))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)), path)
            .await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Value> {
        let request = self
            .http
            .patch(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_string());
        self.send(request, path).await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder, path: &str) -> Result<Value> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RolloutError::Unreachable {
                url: format!("Kubernetes API {}", self.base),
                message: error_chain(&e),
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| RolloutError::Unreachable {
                url: format!("Kubernetes API {}", self.base),
                message: error_chain(&e),
            })?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["message"]
            .as_str()
            .map_or_else(|| text.chars().take(300).collect(), str::to_string);
        let what = format!("{path}: HTTP {}: {message}", status.as_u16());
        Err(match status.as_u16() {
            401 | 403 => RolloutError::Usage(format!(
                "Kubernetes API {what} (the service account needs get and patch on inferenceservices.serving.kserve.io)"
            )),
            404 => RolloutError::Usage(format!("Kubernetes API {what}")),
            429 | 500..=599 => RolloutError::Unreachable {
                url: format!("Kubernetes API {}", self.base),
                message: what,
            },
            _ => RolloutError::Router {
                router: format!("Kubernetes API {}", self.base),
                message: what,
            },
        })
    }
}

/// The merge patch that sets the canary's share (0: roll back, 100: promote).
pub fn traffic_patch(percent: u8) -> Value {
    json!({"spec": {"predictor": {"canaryTrafficPercent": percent}}})
}

/// Where the model reference sits in the predictor's container.
#[derive(Debug, Clone, PartialEq)]
enum ModelFlag {
    /// `args[j]` is `--model=REF`.
    Joined(usize, usize),
    /// `args[j]` is `--model`, `args[j + 1]` the reference.
    Separate(usize, usize),
    /// `env[j]` is `KILN_MODEL`.
    Env(usize, usize),
}

fn find_model_flag(
    isvc: &Value,
    container: &str,
) -> std::result::Result<(ModelFlag, Value), String> {
    let containers = isvc
        .pointer("/spec/predictor/containers")
        .and_then(Value::as_array)
        .ok_or(
            "spec.predictor.containers: absent (a custom predictor running kiln-serve is expected)",
        )?;
    let i = containers
        .iter()
        .position(|c| c["name"] == container)
        .ok_or_else(|| format!("spec.predictor.containers: no container named `{container}`"))?;
    let c = &containers[i];
    if let Some(args) = c["args"].as_array() {
        for (j, arg) in args.iter().enumerate() {
            match arg.as_str() {
                Some(a) if a.starts_with("--model=") => {
                    return Ok((ModelFlag::Joined(i, j), arg.clone()));
                }
                Some("--model") if j + 1 < args.len() => {
                    return Ok((ModelFlag::Separate(i, j + 1), args[j + 1].clone()));
                }
                _ => {}
            }
        }
    }
    if let Some(env) = c["env"].as_array()
        && let Some(j) = env.iter().position(|e| e["name"] == "KILN_MODEL")
    {
        return Ok((ModelFlag::Env(i, j), env[j]["value"].clone()));
    }
    Err(format!(
        "container `{container}` sets no --model argument or KILN_MODEL variable"
    ))
}

/// The annotation where a pin records which version it set and which revision served
/// before it, so a rollout retried after exit 75 resumes instead of pinning again.
pub const PIN_ANNOTATION: &str = "kiln.dev/rollout-pin";

/// What a pin writes: the version's reference and, when the registry recorded it, the
/// bundle's digest (`--bundle-sha256`: kiln-serve refuses any other bundle).
#[derive(Debug, Clone, PartialEq)]
pub struct Pin<'a> {
    pub model_ref: &'a str,
    pub bundle_sha256: Option<&'a str>,
}

/// The predictor container's index and its `args` (if it has them).
fn container_of<'v>(isvc: &'v Value, container: &str) -> Option<(usize, &'v Value)> {
    let containers = isvc.pointer("/spec/predictor/containers")?.as_array()?;
    let i = containers.iter().position(|c| c["name"] == container)?;
    Some((i, &containers[i]))
}

/// The JSON patch that pins a version: guarded by a `test` of the resource version (a
/// concurrent edit makes the API server refuse it) and of the current `--model`, it
/// sets `--model`, sets or removes `--bundle-sha256`, records the pin in an annotation
/// and, with `percent`, sets `canaryTrafficPercent` — one request, so the new revision
/// never gets more than that share.
pub fn pin_patch(
    isvc: &Value,
    container: &str,
    pin: &Pin<'_>,
    percent: Option<u8>,
    marker: &Value,
) -> std::result::Result<Value, String> {
    let (flag, current) = find_model_flag(isvc, container)?;
    let (path, value) = match flag {
        ModelFlag::Joined(i, j) => (
            format!("/spec/predictor/containers/{i}/args/{j}"),
            json!(format!("--model={}", pin.model_ref)),
        ),
        ModelFlag::Separate(i, j) => (
            format!("/spec/predictor/containers/{i}/args/{j}"),
            json!(pin.model_ref),
        ),
        ModelFlag::Env(i, j) => (
            format!("/spec/predictor/containers/{i}/env/{j}/value"),
            json!(pin.model_ref),
        ),
    };
    let mut ops = Vec::new();
    if let Some(version) = isvc.pointer("/metadata/resourceVersion") {
        ops.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": version}));
    }
    ops.push(json!({"op": "test", "path": path, "value": current}));
    ops.push(json!({"op": "replace", "path": path, "value": value}));
    ops.extend(sha_ops(isvc, container, &flag, pin.bundle_sha256));
    match isvc.pointer("/metadata/annotations") {
        Some(Value::Object(_)) => ops.push(json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", PIN_ANNOTATION.replace('/', "~1")),
            "value": marker.to_string(),
        })),
        _ => ops.push(json!({
            "op": "add",
            "path": "/metadata/annotations",
            "value": {PIN_ANNOTATION: marker.to_string()},
        })),
    }
    if let Some(percent) = percent {
        ops.push(
            json!({"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": percent}),
        );
    }
    Ok(Value::Array(ops))
}

/// The operations that set (or, without a digest, remove) `--bundle-sha256`: an argument
/// where the model is an argument, `KILN_BUNDLE_SHA256` where it is a variable.
fn sha_ops(isvc: &Value, container: &str, flag: &ModelFlag, sha: Option<&str>) -> Vec<Value> {
    let Some((i, c)) = container_of(isvc, container) else {
        return Vec::new();
    };
    const FLAG: &str = "--bundle-sha256=";
    const VAR: &str = "KILN_BUNDLE_SHA256";
    let mut ops = Vec::new();
    if let ModelFlag::Env(..) = flag {
        let env = c["env"].as_array().cloned().unwrap_or_default();
        match (env.iter().position(|e| e["name"] == VAR), sha) {
            (Some(j), Some(sha)) => ops.push(json!({"op": "replace", "path": format!("/spec/predictor/containers/{i}/env/{j}/value"), "value": sha})),
            (Some(j), None) => ops.push(json!({"op": "remove", "path": format!("/spec/predictor/containers/{i}/env/{j}")})),
            (None, Some(sha)) => ops.push(json!({"op": "add", "path": format!("/spec/predictor/containers/{i}/env/-"), "value": {"name": VAR, "value": sha}})),
            (None, None) => {}
        }
        return ops;
    }
    let args = c["args"].as_array().cloned().unwrap_or_default();
    let at = args
        .iter()
        .position(|a| a.as_str().is_some_and(|a| a.starts_with(FLAG)));
    match (at, sha) {
        (Some(j), Some(sha)) => {
            ops.push(json!({"op": "test", "path": format!("/spec/predictor/containers/{i}/args/{j}"), "value": args[j]}));
            ops.push(json!({"op": "replace", "path": format!("/spec/predictor/containers/{i}/args/{j}"), "value": format!("{FLAG}{sha}")}));
        }
        (Some(j), None) => {
            ops.push(json!({"op": "test", "path": format!("/spec/predictor/containers/{i}/args/{j}"), "value": args[j]}));
            ops.push(json!({"op": "remove", "path": format!("/spec/predictor/containers/{i}/args/{j}")}));
        }
        (None, Some(sha)) => ops.push(json!({"op": "add", "path": format!("/spec/predictor/containers/{i}/args/-"), "value": format!("{FLAG}{sha}")})),
        (None, None) => {}
    }
    ops
}

/// The JSON patch that starts a canary: [`pin_patch`] with the share, without a digest
/// or a recorded revision (what `kiln rollout patches` shows for a version).
pub fn canary_patch(
    isvc: &Value,
    container: &str,
    model_ref: &str,
    percent: u8,
) -> std::result::Result<Value, String> {
    let pin = Pin {
        model_ref,
        bundle_sha256: None,
    };
    pin_patch(
        isvc,
        container,
        &pin,
        Some(percent),
        &json!({"model": model_ref}),
    )
}

/// The pin an InferenceService records ([`PIN_ANNOTATION`]), if any.
pub fn recorded_pin(isvc: &Value) -> Option<Value> {
    let key = PIN_ANNOTATION.replace('/', "~1");
    let text = isvc
        .pointer(&format!("/metadata/annotations/{key}"))?
        .as_str()?;
    serde_json::from_str(text).ok()
}

/// The reference the predictor's `--model` holds now.
pub fn current_model(isvc: &Value, container: &str) -> Option<String> {
    let (flag, value) = find_model_flag(isvc, container).ok()?;
    let value = value.as_str()?;
    Some(match flag {
        ModelFlag::Joined(..) => value.trim_start_matches("--model=").to_string(),
        _ => value.to_string(),
    })
}

/// The predictor's latest created revision, from the status.
pub fn latest_created(isvc: &Value) -> Option<String> {
    isvc.pointer("/status/components/predictor/latestCreatedRevision")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Ready: a revision newer than `before` was created and is the latest ready one.
pub fn revision_ready(isvc: &Value, before: Option<&str>) -> bool {
    let predictor = isvc.pointer("/status/components/predictor");
    let created = predictor.and_then(|p| p["latestCreatedRevision"].as_str());
    let ready = predictor.and_then(|p| p["latestReadyRevision"].as_str());
    matches!((created, ready), (Some(c), Some(r)) if c == r && Some(c) != before)
}

/// An InferenceService in a namespace.
#[derive(Debug)]
pub struct KserveRouter {
    pub api: KubeApi,
    pub namespace: String,
    pub name: String,
    /// The predictor container running kiln-serve.
    pub container: String,
    /// The registered model, for the reference.
    pub model: String,
    /// How a version is referenced: `{model}` and `{version}` filled in.
    pub model_template: String,
    /// Where each version's bundle digest is looked up (pinned as `--bundle-sha256`).
    pub registry: Option<std::sync::Arc<kiln_registry::Registry>>,
    before: Mutex<Option<String>>,
}

impl KserveRouter {
    pub fn new(api: KubeApi, namespace: &str, name: &str, model: &str) -> KserveRouter {
        KserveRouter {
            api,
            namespace: namespace.into(),
            name: name.into(),
            container: "kserve-container".into(),
            model: model.into(),
            model_template: "models:/{model}/{version}".into(),
            registry: None,
            before: Mutex::new(None),
        }
    }

    pub fn path(&self) -> String {
        format!(
            "/apis/serving.kserve.io/v1beta1/namespaces/{}/inferenceservices/{}",
            self.namespace, self.name
        )
    }

    pub fn model_ref(&self, version: &str) -> String {
        self.model_template
            .replace("{model}", &self.model)
            .replace("{version}", version)
    }

    async fn pin_once(&self, version: &str, percent: u8) -> Result<()> {
        let path = self.path();
        let isvc = self.api.get(&path).await?;
        let model_ref = self.model_ref(version);
        let bundle_sha256 = match &self.registry {
            Some(registry) => registry
                .bundle_sha256(&self.model, version)
                .await
                .map_err(RolloutError::from)?,
            None => None,
        };
        // A retry after exit 75: this very pin is in place (the annotation says so and
        // `--model` holds it). Resume from the revision it recorded instead of patching
        // again, which would start no new revision and time out waiting for one.
        if let Some(marker) = recorded_pin(&isvc)
            && marker["model"] == model_ref.as_str()
            && marker["bundle_sha256"] == json!(bundle_sha256)
            && current_model(&isvc, &self.container).as_deref() == Some(model_ref.as_str())
        {
            tracing::info!(
                version,
                "the pin is already in place (a retried rollout): resuming"
            );
            *self.before.lock().expect("not poisoned") =
                marker["before"].as_str().map(str::to_string);
            let share = isvc.pointer("/spec/predictor/canaryTrafficPercent");
            if share != Some(&json!(percent)) {
                self.api
                    .patch(&path, MERGE_PATCH, &traffic_patch(percent))
                    .await?;
            }
            return Ok(());
        }
        let before = latest_created(&isvc);
        *self.before.lock().expect("not poisoned") = before.clone();
        let marker = json!({"model": model_ref, "bundle_sha256": bundle_sha256, "before": before});
        let pin = Pin {
            model_ref: &model_ref,
            bundle_sha256: bundle_sha256.as_deref(),
        };
        let patch =
            pin_patch(&isvc, &self.container, &pin, Some(percent), &marker).map_err(|m| {
                RolloutError::Usage(format!(
                    "InferenceService {}/{}: {m}",
                    self.namespace, self.name
                ))
            })?;
        tracing::info!(patch = %patch, "patching {path}");
        self.api.patch(&path, JSON_PATCH, &patch).await.map(drop)
    }

    /// [`Self::pin_once`], read again and retried when the resource changed between
    /// the read and the patch (409 Conflict, or the `test` of its version failing).
    async fn pin(&self, version: &str, percent: u8) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.pin_once(version, percent).await {
                Err(RolloutError::Router { message, .. })
                    if attempt < 3
                        && (message.contains("HTTP 409") || message.contains("HTTP 422")) =>
                {
                    attempt += 1;
                    tracing::warn!(%message, "the InferenceService changed meanwhile: reading it again");
                }
                other => return other,
            }
        }
    }
}

impl Router for KserveRouter {
    fn describe(&self) -> String {
        format!(
            "kserve InferenceService {}/{} at {}",
            self.namespace,
            self.name,
            self.api.base()
        )
    }

    async fn start_canary(&self, version: &str, percent: u8) -> Result<()> {
        self.pin(version, percent).await
    }

    async fn canary_ready(&self) -> Result<bool> {
        let isvc = self.api.get(&self.path()).await?;
        let before = self.before.lock().expect("not poisoned").clone();
        Ok(revision_ready(&isvc, before.as_deref()))
    }

    async fn set_canary_percent(&self, percent: u8) -> Result<()> {
        let patch = traffic_patch(percent);
        tracing::info!(patch = %patch, "patching {}", self.path());
        self.api
            .patch(&self.path(), MERGE_PATCH, &patch)
            .await
            .map(drop)
    }

    /// A new revision pinned to `previous` with all the traffic: after a promotion the
    /// last rolled-out revision is the bad one, so `canaryTrafficPercent: 0` alone would
    /// not go back. KServe keeps serving the current revision until the new one is ready.
    async fn revert(&self, previous: &str) -> Result<()> {
        self.pin(previous, 100).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let api = KubeApi::new(
            "https://kubernetes.default.svc",
            Some("sa-token-xyz".into()),
            None,
        )
        .unwrap();
        let text = format!("{api:?}");
        assert!(text.contains("kubernetes.default.svc"), "{text}");
        assert!(text.contains("Some(<redacted>)"), "{text}");
        assert!(!text.contains("sa-token-xyz"), "{text}");
    }

    fn isvc(args: Value) -> Value {
        json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
               "spec": {"predictor": {"containers": [{"name": "other"}, {"name": "kserve-container", "args": args}]}}})
    }

    #[test]
    fn the_canary_patch_pins_the_version_and_the_share_in_one_request() {
        let doc = isvc(json!([
            "--model=models:/adult-income@production",
            "--http=0.0.0.0:8080"
        ]));
        let patch = canary_patch(&doc, "kserve-container", "models:/adult-income/7", 10).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/spec/predictor/containers/1/args/0", "value": "--model=models:/adult-income@production"},
                {"op": "replace", "path": "/spec/predictor/containers/1/args/0", "value": "--model=models:/adult-income/7"},
                {"op": "add", "path": "/metadata/annotations", "value": {PIN_ANNOTATION: "{\"model\":\"models:/adult-income/7\"}"}},
                {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 10}
            ])
        );
        let separate = isvc(json!([
            "--http=0.0.0.0:8080",
            "--model",
            "adult-income@production"
        ]));
        let patch =
            canary_patch(&separate, "kserve-container", "models:/adult-income/7", 10).unwrap();
        assert_eq!(
            patch[1],
            json!({"op": "replace", "path": "/spec/predictor/containers/1/args/2", "value": "models:/adult-income/7"})
        );
        let e = canary_patch(&isvc(json!(["--http=x"])), "kserve-container", "m", 10).unwrap_err();
        assert_eq!(
            e,
            "container `kserve-container` sets no --model argument or KILN_MODEL variable"
        );
    }

    #[test]
    fn a_pin_guards_the_resource_version_and_sets_or_clears_the_digest() {
        let mut doc = isvc(json!([
            "--model=models:/m@production",
            "--bundle-sha256=old"
        ]));
        doc["metadata"] = json!({"resourceVersion": "41", "annotations": {"a": "b"}});
        let pin = Pin {
            model_ref: "models:/m/7",
            bundle_sha256: Some("abc"),
        };
        let marker = json!({"model": "models:/m/7", "bundle_sha256": "abc", "before": "r-1"});
        let patch = pin_patch(&doc, "kserve-container", &pin, None, &marker).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
                {"op": "test", "path": "/spec/predictor/containers/1/args/0", "value": "--model=models:/m@production"},
                {"op": "replace", "path": "/spec/predictor/containers/1/args/0", "value": "--model=models:/m/7"},
                {"op": "test", "path": "/spec/predictor/containers/1/args/1", "value": "--bundle-sha256=old"},
                {"op": "replace", "path": "/spec/predictor/containers/1/args/1", "value": "--bundle-sha256=abc"},
                {"op": "add", "path": "/metadata/annotations/kiln.dev~1rollout-pin", "value": marker.to_string()},
            ])
        );
        let mut after = doc.clone();
        crate::router::patch::json_patch(&mut after, &patch).unwrap();
        assert_eq!(recorded_pin(&after), Some(marker));
        assert_eq!(
            current_model(&after, "kserve-container").as_deref(),
            Some("models:/m/7")
        );
        // Without a digest a stale one is removed: it would refuse the new bundle.
        let unpinned = Pin {
            model_ref: "models:/m/8",
            bundle_sha256: None,
        };
        let patch = pin_patch(&after, "kserve-container", &unpinned, Some(10), &json!({})).unwrap();
        assert!(
            patch
                .as_array()
                .unwrap()
                .contains(&json!({"op": "remove", "path": "/spec/predictor/containers/1/args/1"}))
        );
        // A variable-configured container gets the digest as a variable.
        let env = json!({"spec": {"predictor": {"containers": [{"name": "kserve-container", "env": [{"name": "KILN_MODEL", "value": "m@production"}]}]}}});
        let patch = pin_patch(&env, "kserve-container", &pin, None, &json!({})).unwrap();
        assert!(patch.as_array().unwrap().contains(&json!({"op": "add", "path": "/spec/predictor/containers/0/env/-", "value": {"name": "KILN_BUNDLE_SHA256", "value": "abc"}})));
    }

    #[test]
    fn promote_and_rollback_are_merge_patches_of_the_share() {
        assert_eq!(
            traffic_patch(100).to_string(),
            r#"{"spec":{"predictor":{"canaryTrafficPercent":100}}}"#
        );
        assert_eq!(
            traffic_patch(0).to_string(),
            r#"{"spec":{"predictor":{"canaryTrafficPercent":0}}}"#
        );
    }

    #[test]
    fn ready_means_a_new_revision_is_the_latest_ready_one() {
        let status = |created: &str, ready: &str| json!({"status": {"components": {"predictor": {"latestCreatedRevision": created, "latestReadyRevision": ready}}}});
        assert!(!revision_ready(
            &status("p-00002", "p-00001"),
            Some("p-00001")
        ));
        assert!(!revision_ready(
            &status("p-00001", "p-00001"),
            Some("p-00001")
        ));
        assert!(revision_ready(
            &status("p-00002", "p-00002"),
            Some("p-00001")
        ));
        assert!(!revision_ready(&json!({}), None));
    }
}
