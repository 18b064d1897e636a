//! The KServe router's whole request sequence against a **test double of the Kubernetes
//! API server** (no API server can run here): an HTTP server on loopback that keeps one
//! InferenceService, applies JSON patches (RFC 6902, `test` operations enforced: 409 when
//! the resource version moved, 422 for any other failed test) and merge patches, bumps
//! `metadata.resourceVersion` on every change, starts a new "revision" when the predictor
//! changes (ready two reads later, as Knative would report it), and records every
//! request. The patch logic here is the double's own, not the router's.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use kiln_core::store::ArtifactStore;
use kiln_registry::Registry;
use kiln_rollout::router::Router;
use kiln_rollout::router::kserve::{KserveRouter, KubeApi, PIN_ANNOTATION};
use serde_json::{Value, json};

const PATH: &str = "/apis/serving.kserve.io/v1beta1/namespaces/kiln/inferenceservices/adult-income";

#[derive(Default)]
struct State {
    doc: Value,
    /// (method, content type, body) of every request.
    log: Vec<(String, String, Value)>,
    /// A revision waiting to become ready, and the reads until it is.
    pending: Option<(String, u32)>,
    revisions: u32,
    /// Another writer changes the resource right after the next read.
    interfere: bool,
}

fn apply_json_patch(doc: &Value, ops: &Value) -> Result<Value, (u16, String)> {
    let mut out = doc.clone();
    for op in ops.as_array().ok_or((400, "not an array".to_string()))? {
        let path = op["path"].as_str().unwrap_or_default();
        let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
        let last = last.replace("~1", "/").replace("~0", "~");
        match op["op"].as_str().unwrap_or_default() {
            "test" => {
                if out.pointer(path) != Some(&op["value"]) {
                    let code = if path == "/metadata/resourceVersion" {
                        409
                    } else {
                        422
                    };
                    return Err((code, format!("test failed at {path}")));
                }
            }
            name @ ("add" | "replace" | "remove") => {
                let target = out
                    .pointer_mut(parent)
                    .ok_or((422, format!("no parent for {path}")))?;
                match target {
                    Value::Object(map) => {
                        if name == "remove" {
                            map.remove(&last)
                                .ok_or((422, format!("nothing at {path}")))?;
                        } else {
                            if name == "replace" && !map.contains_key(&last) {
                                return Err((422, format!("nothing at {path}")));
                            }
                            map.insert(last, op["value"].clone());
                        }
                    }
                    Value::Array(items) => {
                        let index = if last == "-" {
                            items.len()
                        } else {
                            last.parse().map_err(|_| (422, path.to_string()))?
                        };
                        match name {
                            "add" if index <= items.len() => {
                                items.insert(index, op["value"].clone())
                            }
                            "replace" if index < items.len() => items[index] = op["value"].clone(),
                            "remove" if index < items.len() => {
                                items.remove(index);
                            }
                            _ => return Err((422, format!("index out of range: {path}"))),
                        }
                    }
                    _ => return Err((422, format!("bad parent for {path}"))),
                }
            }
            other => return Err((422, format!("unknown op {other}"))),
        }
    }
    Ok(out)
}

fn apply_merge_patch(doc: &mut Value, patch: &Value) {
    match (doc, patch) {
        (Value::Object(doc), Value::Object(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    doc.remove(k);
                } else {
                    apply_merge_patch(doc.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (doc, patch) => *doc = patch.clone(),
    }
}

impl State {
    fn commit(&mut self, next: Value) {
        let containers_changed = next.pointer("/spec/predictor/containers")
            != self.doc.pointer("/spec/predictor/containers");
        self.doc = next;
        let version: u64 = self.doc["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        self.doc["metadata"]["resourceVersion"] = json!((version + 1).to_string());
        if containers_changed {
            self.revisions += 1;
            let name = format!("adult-income-predictor-{:05}", self.revisions);
            self.doc["status"]["components"]["predictor"]["latestCreatedRevision"] = json!(name);
            self.pending = Some((name, 2));
        }
    }

    fn handle(&mut self, method: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.log
            .push((method.into(), content_type.into(), parsed.clone()));
        match method {
            "GET" => {
                if let Some((name, reads)) = self.pending.take() {
                    if reads <= 1 {
                        self.doc["status"]["components"]["predictor"]["latestReadyRevision"] =
                            json!(name);
                    } else {
                        self.pending = Some((name, reads - 1));
                    }
                }
                let answer = self.doc.clone();
                if std::mem::take(&mut self.interfere) {
                    // Someone else labels the resource: its version moves.
                    let mut next = self.doc.clone();
                    next["metadata"]["labels"]["touched-by"] = json!("someone-else");
                    self.commit(next);
                }
                (200, answer)
            }
            "PATCH" if content_type == "application/json-patch+json" => {
                match apply_json_patch(&self.doc, &parsed) {
                    Ok(next) => {
                        self.commit(next);
                        (200, self.doc.clone())
                    }
                    Err((code, message)) => (
                        code,
                        json!({"kind": "Status", "code": code, "message": message}),
                    ),
                }
            }
            "PATCH" if content_type == "application/merge-patch+json" => {
                let mut next = self.doc.clone();
                apply_merge_patch(&mut next, &parsed);
                self.commit(next);
                (200, self.doc.clone())
            }
            _ => (405, json!({"message": "not supported by the double"})),
        }
    }
}

/// The double on a loopback port; `state` is shared with the test.
fn start(doc: Value) -> (String, Arc<Mutex<State>>) {
    let state = Arc::new(Mutex::new(State {
        doc,
        revisions: 1,
        ..State::default()
    }));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = shared.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, path) = (
                        parts.next().unwrap_or("").to_string(),
                        parts.next().unwrap_or("").to_string(),
                    );
                    let mut headers = BTreeMap::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let (code, answer) = if path != PATH {
                        (404, json!({"message": format!("{path} not found")}))
                    } else if headers.get("authorization").map(String::as_str)
                        != Some("Bearer sa-token")
                    {
                        (401, json!({"message": "Unauthorized"}))
                    } else {
                        let content_type = headers.get("content-type").cloned().unwrap_or_default();
                        state.lock().unwrap().handle(&method, &content_type, &body)
                    };
                    let text = answer.to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                }
            });
        }
    });
    (url, state)
}

fn isvc() -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "adult-income", "namespace": "kiln", "resourceVersion": "100"},
        "spec": {"predictor": {"containers": [{
            "name": "kserve-container",
            "image": "kiln-serve@sha256:0000",
            "args": ["--model=models:/adult-income@production", "--http=0.0.0.0:8080", "--insecure"],
        }]}},
        "status": {"components": {"predictor": {
            "latestCreatedRevision": "adult-income-predictor-00001",
            "latestReadyRevision": "adult-income-predictor-00001",
        }}},
    })
}

/// A local registry with versions 1 and 2 of adult-income (each its own bundle), and
/// their digests.
fn registry(dir: &std::path::Path) -> (Arc<Registry>, BTreeMap<String, String>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let registry =
            Registry::Local(ArtifactStore::open(dir.join("registry").to_str().unwrap()).unwrap());
        let mut digests = BTreeMap::new();
        for run in 1..=2 {
            let bundle_dir = dir.join(format!("bundle-{run}"));
            std::fs::create_dir_all(&bundle_dir).unwrap();
            std::fs::write(
                bundle_dir.join("metadata.json"),
                format!("{{\"run\": {run}}}"),
            )
            .unwrap();
            let bundle = ArtifactStore::open(bundle_dir.to_str().unwrap()).unwrap();
            let version = registry
                .create(
                    "adult-income",
                    &bundle,
                    &format!("run-{run}"),
                    None,
                    &BTreeMap::new(),
                    &[],
                    None,
                )
                .await
                .unwrap()
                .version;
            let digest = registry
                .bundle_sha256("adult-income", &version)
                .await
                .unwrap()
                .unwrap();
            digests.insert(version, digest);
        }
        (Arc::new(registry), digests)
    })
}

fn router(url: &str, registry: &Arc<Registry>) -> KserveRouter {
    let api = KubeApi::new(url, Some("sa-token".into()), None).unwrap();
    let mut router = KserveRouter::new(api, "kiln", "adult-income", "adult-income");
    router.registry = Some(registry.clone());
    router
}

fn requests(state: &Arc<Mutex<State>>) -> Vec<String> {
    state
        .lock()
        .unwrap()
        .log
        .iter()
        .map(|(m, t, _)| match t.as_str() {
            "application/json-patch+json" => "PATCH json".to_string(),
            "application/merge-patch+json" => "PATCH merge".to_string(),
            _ => m.clone(),
        })
        .collect()
}

#[tokio::test]
async fn a_rollout_pins_version_and_digest_and_a_retry_after_exit_75_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, digests) = tokio::task::spawn_blocking({
        let path = dir.path().to_path_buf();
        move || registry(&path)
    })
    .await
    .unwrap();
    let (url, state) = start(isvc());

    // The first attempt pins version 2 at 10 %, then dies (exit 75) before the revision
    // is ready.
    let first = router(&url, &registry);
    first.start_canary("2", 10).await.unwrap();
    drop(first);
    assert_eq!(requests(&state), ["GET", "PATCH json"]);
    let doc = state.lock().unwrap().doc.clone();
    let args = &doc["spec"]["predictor"]["containers"][0]["args"];
    assert_eq!(args[0], "--model=models:/adult-income/2");
    assert_eq!(
        args.as_array().unwrap().last().unwrap(),
        &json!(format!("--bundle-sha256={}", digests["2"]))
    );
    assert_eq!(doc["spec"]["predictor"]["canaryTrafficPercent"], 10);
    assert_eq!(doc["metadata"]["resourceVersion"], "101");
    let marker: Value = serde_json::from_str(
        doc["metadata"]["annotations"][PIN_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(marker["before"], "adult-income-predictor-00001");
    // The patch was guarded by the version it read.
    let patch = state.lock().unwrap().log[1].2.clone();
    assert_eq!(
        patch[0],
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": "100"})
    );

    // Argo's retry: a new process, the same version. No second pin (that would start no
    // new revision and time out waiting for one); it waits for the one it started.
    let retry = router(&url, &registry);
    retry.start_canary("2", 10).await.unwrap();
    let mut ready = false;
    for _ in 0..5 {
        if retry.canary_ready().await.unwrap() {
            ready = true;
            break;
        }
    }
    assert!(ready, "the retry saw the pinned revision become ready");
    retry.set_canary_percent(100).await.unwrap();
    let sequence = requests(&state);
    assert_eq!(
        sequence.iter().filter(|r| *r == "PATCH json").count(),
        1,
        "pinned once: {sequence:?}"
    );
    assert_eq!(sequence.last().map(String::as_str), Some("PATCH merge"));
    let doc = state.lock().unwrap().doc.clone();
    assert_eq!(doc["spec"]["predictor"]["canaryTrafficPercent"], 100);
    assert_eq!(
        doc["status"]["components"]["predictor"]["latestReadyRevision"],
        "adult-income-predictor-00002"
    );

    // Rolling back pins version 1 and its own digest, at 100 %.
    retry.revert("1").await.unwrap();
    let doc = state.lock().unwrap().doc.clone();
    let args = doc["spec"]["predictor"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(args[0], "--model=models:/adult-income/1");
    assert!(args.contains(&json!(format!("--bundle-sha256={}", digests["1"]))));
    assert_eq!(
        args.iter()
            .filter(|a| a.as_str().unwrap().starts_with("--bundle-sha256="))
            .count(),
        1
    );
}

#[tokio::test]
async fn an_edit_between_the_read_and_the_patch_is_refused_and_the_pin_reads_again() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _) = tokio::task::spawn_blocking({
        let path = dir.path().to_path_buf();
        move || registry(&path)
    })
    .await
    .unwrap();
    let (url, state) = start(isvc());
    state.lock().unwrap().interfere = true;
    router(&url, &registry).start_canary("2", 10).await.unwrap();
    assert_eq!(requests(&state), ["GET", "PATCH json", "GET", "PATCH json"]);
    let doc = state.lock().unwrap().doc.clone();
    // Both edits are there: the other writer's label and the pin.
    assert_eq!(doc["metadata"]["labels"]["touched-by"], "someone-else");
    assert_eq!(
        doc["spec"]["predictor"]["containers"][0]["args"][0],
        "--model=models:/adult-income/2"
    );
    // A wrong token is refused by the double as the API server would (exit 2, one line).
    let api = KubeApi::new(&url, Some("wrong".into()), None).unwrap();
    let e = KserveRouter::new(api, "kiln", "adult-income", "adult-income")
        .start_canary("2", 10)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 401"), "{e}");
}
