//! The artifact store: one API over a local folder, S3 and memory, via `object_store`.
//!
//! Every step reads and writes through [`ArtifactStore`], so the same code runs on a
//! laptop (`./kiln-runs/adult`), in tests (`memory://name`) and on Argo (`s3://bucket/prefix`).
//!
//! Writes are atomic: a single `put` is atomic on every backend (the local backend
//! stages to a temporary file and renames it; S3 makes an object visible only when
//! the upload completes), and streamed uploads become visible only on completion.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The sha256 and size of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContentHash {
    /// Lower-case hex sha256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Incremental sha256 + size, fed as bytes pass by.
#[derive(Default, Clone)]
pub struct Hasher {
    digest: Sha256,
    size: u64,
}

impl Hasher {
    /// Adds bytes to the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// The hash of everything seen so far.
    pub fn finish(self) -> ContentHash {
        ContentHash {
            sha256: hex::encode(self.digest.finalize()),
            size: self.size,
        }
    }
}

/// What identifies an object's version without reading it: the store's ETag (S3's,
/// or a local file's, which is made of its inode, modification time and size), else
/// its size and modification time. A rewrite changes it; a rename on one file system
/// does not.
pub fn version_of(meta: &object_store::ObjectMeta) -> String {
    meta.e_tag
        .clone()
        .unwrap_or_else(|| format!("{}@{}", meta.size, meta.last_modified.timestamp_micros()))
}

/// sha256 of a byte slice, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// In-memory stores by name, so that `memory://name` opened twice is the same store.
static MEMORY_STORES: LazyLock<Mutex<HashMap<String, Arc<InMemory>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// S3 clients by bucket and configuration, so that every URI in one bucket shares one
/// client (its connection pool and credential cache) instead of building one per URI.
static S3_STORES: LazyLock<Mutex<HashMap<S3Key, Arc<dyn ObjectStore>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A bucket and the environment an S3 client is configured from: a change of endpoint
/// or credentials in the same process gets a new client, not a stale one.
#[derive(PartialEq, Eq, Hash)]
struct S3Key {
    bucket: String,
    settings: Vec<(String, String)>,
}

impl S3Key {
    fn current(bucket: &str) -> Self {
        let mut settings: Vec<(String, String)> = std::env::vars()
            .filter(|(name, _)| name.starts_with("AWS_") || name.starts_with("KILN_S3_"))
            .collect();
        settings.sort();
        S3Key {
            bucket: bucket.to_string(),
            settings,
        }
    }
}

/// The local file system backend; it holds no state beyond its options, so one serves all.
static LOCAL_STORE: LazyLock<Arc<LocalFileSystem>> =
    LazyLock::new(|| Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)));

/// One object (a file) in some store, addressed by a URI.
#[derive(Clone)]
pub struct ObjectRef {
    store: Arc<dyn ObjectStore>,
    path: Path,
    uri: String,
}

impl std::fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri)
    }
}

impl ObjectRef {
    /// Resolves a URI (plain path, `file://`, `s3://bucket/key`, `memory://name/key`).
    pub fn parse(uri: &str) -> Result<Self> {
        let (store, path, _) = resolve(uri)?;
        Ok(ObjectRef {
            store,
            path,
            uri: uri.to_string(),
        })
    }

    /// The URI as the user gave it, for messages and manifests.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The last segment of the path (the file name).
    pub fn file_name(&self) -> String {
        self.path.filename().unwrap_or_default().to_string()
    }

    /// Reads the whole object.
    pub async fn get(&self) -> Result<Bytes> {
        let result = self
            .store
            .get(&self.path)
            .await
            .map_err(|e| Error::from_store(&self.uri, e))?;
        result
            .bytes()
            .await
            .map_err(|e| Error::from_store(&self.uri, e))
    }

    /// Streams the object's bytes.
    pub async fn stream(&self) -> Result<BoxStream<'static, Result<Bytes>>> {
        let result = self
            .store
            .get(&self.path)
            .await
            .map_err(|e| Error::from_store(&self.uri, e))?;
        let uri = self.uri.clone();
        Ok(result
            .into_stream()
            .map_err(move |e| Error::from_store(&uri, e))
            .boxed())
    }

    /// Streams the object once to compute its sha256 and size.
    pub async fn hash(&self) -> Result<ContentHash> {
        let mut stream = self.stream().await?;
        let mut hasher = Hasher::default();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk?);
        }
        Ok(hasher.finish())
    }

    /// The store's metadata of the object; `None` when nothing is there. One HEAD.
    async fn head(&self) -> Result<Option<object_store::ObjectMeta>> {
        match self.store.head(&self.path).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::from_store(&self.uri, e)),
        }
    }

    /// The metadata of an object that must exist.
    async fn head_existing(&self) -> Result<object_store::ObjectMeta> {
        self.head().await?.ok_or_else(|| Error::InputNotFound {
            uri: self.uri.clone(),
        })
    }

    /// Whether the object exists.
    pub async fn exists(&self) -> Result<bool> {
        Ok(self.head().await?.is_some())
    }

    /// Size in bytes, from the store's metadata.
    pub async fn size(&self) -> Result<u64> {
        Ok(self.head_existing().await?.size)
    }

    /// What identifies the object's current version without reading it (see
    /// [`version_of`]).
    pub async fn version(&self) -> Result<String> {
        Ok(version_of(&self.head_existing().await?))
    }

    /// The object's current version, `None` when it does not exist: one HEAD.
    pub async fn current_version(&self) -> Result<Option<String>> {
        Ok(self.head().await?.as_ref().map(version_of))
    }

    /// The backend and path, for readers that take them directly (Parquet).
    pub fn parts(&self) -> (Arc<dyn ObjectStore>, Path) {
        (Arc::clone(&self.store), self.path.clone())
    }

    /// The object as a URL with an absolute path (`file:///abs/path`, `s3://bucket/key`,
    /// `memory://name/key`), and the URL of its store's root (`file://`, `s3://bucket`,
    /// `memory://name`), for engines that take a store by its root URL and address
    /// objects by full URL (DataFusion).
    pub fn urls(&self) -> (String, String) {
        let root = ["s3://", "memory://"]
            .iter()
            .find_map(|scheme| {
                let rest = self.uri.strip_prefix(scheme)?;
                let authority = rest.split('/').next().unwrap_or(rest);
                Some(format!("{scheme}{authority}"))
            })
            .unwrap_or_else(|| "file://".to_string());
        (format!("{root}/{}", self.path), root)
    }
}

/// A folder-like prefix in a store, under which a run or a step keeps its artifacts.
#[derive(Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    uri: String,
    /// The folder on disk when the store is local (to remove emptied folders).
    local_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri)
    }
}

impl ArtifactStore {
    /// Opens a store rooted at `uri`: a plain path, `file://`, `s3://bucket/prefix`
    /// or `memory://name/prefix`. S3 settings come from the standard AWS variables.
    pub fn open(uri: &str) -> Result<Self> {
        let (store, root, local_dir) = resolve(uri)?;
        Ok(ArtifactStore {
            store,
            root,
            uri: uri.trim_end_matches('/').to_string(),
            local_dir,
        })
    }

    /// The root URI as given.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// A store rooted at a sub-folder of this one (`run.child("prepare")`).
    pub fn child(&self, rel: &str) -> ArtifactStore {
        ArtifactStore {
            store: Arc::clone(&self.store),
            root: self.path(rel),
            uri: self.uri_of(rel),
            local_dir: self.local_dir.as_ref().map(|d| d.join(rel)),
        }
    }

    /// The object at a relative path under this root.
    pub fn object(&self, rel: &str) -> ObjectRef {
        ObjectRef {
            store: Arc::clone(&self.store),
            path: self.path(rel),
            uri: self.uri_of(rel),
        }
    }

    /// The full URI of a relative path, for messages and manifests.
    pub fn uri_of(&self, rel: &str) -> String {
        format!("{}/{}", self.uri, rel.trim_start_matches('/'))
    }

    fn path(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|part| !part.is_empty())
            .fold(self.root.clone(), |path, part| path.join(part))
    }

    /// Writes bytes atomically and returns their hash.
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<ContentHash> {
        let mut hasher = Hasher::default();
        hasher.update(&bytes);
        self.store
            .put(&self.path(rel), PutPayload::from(bytes))
            .await
            .map_err(|e| Error::from_store(self.uri_of(rel), e))?;
        Ok(hasher.finish())
    }

    /// Writes bytes only if nothing is at `rel` yet, atomically against every other
    /// writer of the store (a local rename without replace, S3's `If-None-Match: *`).
    /// Returns `false`, writing nothing, when the object already exists.
    pub async fn create(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        let options = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(rel), PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(Error::from_store(self.uri_of(rel), e)),
        }
    }

    /// Serialises a value as pretty JSON and writes it atomically.
    pub async fn put_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<ContentHash> {
        let mut text = serde_json::to_vec_pretty(value)
            .map_err(|e| Error::Invalid(format!("encoding {}: {e}", self.uri_of(rel))))?;
        text.push(b'\n');
        self.put(rel, Bytes::from(text)).await
    }

    /// Reads a whole object.
    pub async fn get(&self, rel: &str) -> Result<Bytes> {
        self.object(rel).get().await
    }

    /// Reads and parses a JSON object; the error names the file, line and column.
    pub async fn get_json<T: DeserializeOwned>(&self, rel: &str) -> Result<T> {
        let bytes = self.get(rel).await?;
        #[expect(clippy::disallowed_methods, reason = "the raw reader itself")]
        parse_json(&bytes, &self.uri_of(rel))
    }

    /// Whether an object exists.
    pub async fn exists(&self, rel: &str) -> Result<bool> {
        self.object(rel).exists().await
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::from_store(self.uri_of(rel), e)),
        }
    }

    /// Deletes everything under a relative prefix.
    pub async fn delete_prefix(&self, rel: &str) -> Result<()> {
        let prefix = self.path(rel);
        let paths: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| Error::from_store(self.uri_of(rel), e))?;
        for path in paths {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::from_store(self.uri_of(rel), e)),
            }
        }
        // Object stores have no folders, but a local disk keeps the emptied ones.
        if let Some(dir) = &self.local_dir {
            let folder = dir.join(rel);
            if folder.is_dir() {
                std::fs::remove_dir_all(&folder)
                    .map_err(|e| Error::io(format!("removing {}", folder.display()), e))?;
            }
        }
        Ok(())
    }

    /// Lists the relative paths of all objects under a relative prefix.
    pub async fn list(&self, rel: &str) -> Result<Vec<String>> {
        let prefix = self.path(rel);
        let mut names: Vec<String> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| {
                meta.location
                    .prefix_match(&self.root)
                    .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .join("/")
            })
            .try_collect()
            .await
            .map_err(|e| Error::from_store(self.uri_of(rel), e))?;
        names.sort();
        Ok(names)
    }

    /// Moves an object within this store (a rename on a local disk, copy + delete on S3).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.store
            .rename(&self.path(from), &self.path(to))
            .await
            .map_err(|e| Error::from_store(self.uri_of(from), e))
    }

    /// The backend and the full path of a relative path.
    pub fn parts(&self, rel: &str) -> (Arc<dyn ObjectStore>, Path) {
        (Arc::clone(&self.store), self.path(rel))
    }
}

/// Parses JSON with an error that names the file, line and column.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], uri: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path.is_empty() || path == "." {
            String::new()
        } else {
            format!("field `{path}`: ")
        };
        Error::Json {
            uri: uri.to_string(),
            message: format!("{at}{inner}"),
        }
    })
}

/// A backend, a path inside it, and the folder on disk for local stores.
type Resolved = (Arc<dyn ObjectStore>, Path, Option<std::path::PathBuf>);

/// Resolves a URI to a backend and a path inside it.
fn resolve(uri: &str) -> Result<Resolved> {
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::usage(format!(
                "`{uri}`: an s3:// URI needs a bucket"
            )));
        }
        return Ok((open_s3(bucket, uri)?, parse_key(key, uri)?, None));
    }
    if let Some(rest) = uri.strip_prefix("memory://") {
        let (name, key) = rest.split_once('/').unwrap_or((rest, ""));
        let store = MEMORY_STORES
            .lock()
            .map_err(|_| Error::Invalid("memory store registry poisoned".into()))?
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(InMemory::new()))
            .clone();
        return Ok((store, parse_key(key, uri)?, None));
    }
    let local = match uri.strip_prefix("file://") {
        Some(rest) => std::path::PathBuf::from(rest),
        None if uri.contains("://") => {
            return Err(Error::usage(format!(
                "`{uri}`: unsupported URI scheme (use a path, file://, s3:// or memory://)"
            )));
        }
        None => std::path::PathBuf::from(uri),
    };
    let absolute = if local.is_absolute() {
        local
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("reading the current directory", e))?
            .join(local)
    };
    let normalised = normalise(&absolute);
    let path = Path::from_absolute_path(&normalised)
        .map_err(|e| Error::usage(format!("`{uri}`: invalid path: {e}")))?;
    // Automatic cleanup removes folders left empty by deletes (the staging folder).
    let store: Arc<dyn ObjectStore> = LOCAL_STORE.clone();
    Ok((store, path, Some(normalised)))
}

/// Removes `.` and `..` segments without touching the file system (the path may not exist yet).
fn normalise(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn parse_key(key: &str, uri: &str) -> Result<Path> {
    Path::parse(key.trim_matches('/'))
        .map_err(|e| Error::usage(format!("`{uri}`: invalid object key: {e}")))
}

/// The S3 client for a bucket: the one already built for it in this process under the
/// same settings, or a new one.
fn open_s3(bucket: &str, uri: &str) -> Result<Arc<dyn ObjectStore>> {
    let key = S3Key::current(bucket);
    let mut clients = S3_STORES
        .lock()
        .map_err(|_| Error::Invalid("S3 client registry poisoned".into()))?;
    if let Some(client) = clients.get(&key) {
        return Ok(Arc::clone(client));
    }
    let client = build_s3(bucket, uri)?;
    clients.insert(key, Arc::clone(&client));
    Ok(client)
}

/// Builds an S3 client from the standard AWS variables (`AWS_ENDPOINT_URL`,
/// `AWS_REGION`, credentials, `AWS_ALLOW_HTTP`). Retries are bounded so that an
/// unreachable endpoint fails in seconds with exit code 75, for Argo to retry.
fn build_s3(bucket: &str, uri: &str) -> Result<Arc<dyn ObjectStore>> {
    let retry_secs = env_secs("KILN_S3_RETRY_TIMEOUT_SECS", 30);
    let retry = RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(retry_secs),
        ..RetryConfig::default()
    };
    // Timeouts go in as config keys: `with_client_options` would replace the client
    // options `from_env` read (such as `AWS_ALLOW_HTTP`).
    let connect = format!("{}s", env_secs("KILN_S3_CONNECT_TIMEOUT_SECS", 5));
    let request = format!("{}s", env_secs("KILN_S3_TIMEOUT_SECS", 120));
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry)
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            connect,
        )
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), request);
    // Create-if-absent (the registry's version numbers) as S3 and its peers do it:
    // `If-None-Match: *`, unless `AWS_CONDITIONAL_PUT` chose another mode.
    if std::env::var("AWS_CONDITIONAL_PUT").is_err() {
        builder = builder.with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
    }
    // `AWS_REGION` is the variable the AWS CLI and SDKs read; object_store only reads
    // `AWS_DEFAULT_REGION` by itself.
    if let Ok(region) = std::env::var("AWS_REGION") {
        builder = builder.with_region(region);
    }
    // A local S3-protocol server serves buckets under its path, not as subdomains.
    if std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_ENDPOINT").is_ok() {
        builder = builder.with_virtual_hosted_style_request(false);
    }
    let store = builder
        .build()
        .map_err(|e| Error::usage(format!("`{uri}`: cannot configure S3: {e}")))?;
    Ok(Arc::new(store))
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resolves `target` against the folder that holds `base` (a spec file's URI), so
/// a spec can name its data relative to itself. Absolute paths and URIs pass through.
pub fn resolve_relative(base: &str, target: &str) -> String {
    if target.contains("://") || std::path::Path::new(target).is_absolute() {
        return target.to_string();
    }
    match base.rfind('/') {
        Some(idx) => format!("{}/{}", &base[..idx], target),
        None => target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_hash_and_list_in_memory() {
        let store = ArtifactStore::open("memory://store-test/run1").unwrap();
        let hash = store
            .put("prepare/a.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(hash.size, 2);
        assert_eq!(hash.sha256, sha256_hex(b"{}"));
        assert_eq!(store.object("prepare/a.json").hash().await.unwrap(), hash);
        // The same name opens the same store.
        let again = ArtifactStore::open("memory://store-test/run1").unwrap();
        assert_eq!(again.list("prepare").await.unwrap(), vec!["prepare/a.json"]);
        store.delete_prefix("prepare").await.unwrap();
        assert!(!again.exists("prepare/a.json").await.unwrap());
    }

    #[tokio::test]
    async fn local_paths_with_dot_segments() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("{}/x/../run", dir.path().display());
        let store = ArtifactStore::open(&uri).unwrap();
        store
            .put("step/out.txt", Bytes::from_static(b"hi"))
            .await
            .unwrap();
        assert!(dir.path().join("run/step/out.txt").exists());
        let child = store.child("step");
        assert_eq!(
            child.get("out.txt").await.unwrap(),
            Bytes::from_static(b"hi")
        );
    }

    #[test]
    fn uris_in_one_bucket_share_one_s3_client() {
        let store = |uri: &str| ObjectRef::parse(uri).unwrap().parts().0;
        let a = store("s3://kiln-share-test/runs/a/prepare/train.parquet");
        let b = store("s3://kiln-share-test/runs/b/spec.yaml");
        let other = store("s3://kiln-share-test-other/x");
        assert!(
            Arc::ptr_eq(&a, &b),
            "two URIs in one bucket built two clients"
        );
        assert!(!Arc::ptr_eq(&a, &other), "two buckets shared a client");
        // The artifact-store view of the bucket uses the same client too.
        let run = ArtifactStore::open("s3://kiln-share-test/runs/a").unwrap();
        assert!(Arc::ptr_eq(&a, &run.object("x").parts().0));
    }

    #[tokio::test]
    async fn missing_object_is_input_not_found() {
        let store = ArtifactStore::open("memory://store-test-missing").unwrap();
        let err = store.get("nope.json").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "input not found: memory://store-test-missing/nope.json"
        );
    }

    #[test]
    fn json_errors_name_file_line_and_field() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        #[expect(clippy::disallowed_methods, reason = "testing the raw parser")]
        let err = parse_json::<T>(b"{\"a\": \"x\"}", "s/t.json").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("json s/t.json: field `a`: invalid type"),
            "{text}"
        );
        assert!(text.contains("line 1"), "{text}");
    }

    #[test]
    fn relative_uris_resolve_against_the_spec_folder() {
        assert_eq!(
            resolve_relative("examples/adult/spec.yaml", "data.csv"),
            "examples/adult/data.csv"
        );
        assert_eq!(
            resolve_relative("s3://b/p/spec.yaml", "d/x.csv"),
            "s3://b/p/d/x.csv"
        );
        assert_eq!(resolve_relative("spec.yaml", "/abs/x.csv"), "/abs/x.csv");
        assert_eq!(
            resolve_relative("spec.yaml", "s3://b/x.csv"),
            "s3://b/x.csv"
        );
        assert_eq!(resolve_relative("spec.yaml", "x.csv"), "x.csv");
    }
}
