//! Kiln's images under podman, and a real OCI registry (Debian's docker-registry,
//! distribution 2.8) on loopback: what the image tests run against.

use std::sync::OnceLock;

use super::*;

/// The podman settings `scripts/images.sh` writes under `.cache/containers`.
fn containers_state() -> PathBuf {
    workspace_root().join(".cache/containers")
}

/// `podman` with Kiln's own settings (runtime, ulimits, storage in the clone).
pub fn podman() -> Command {
    let state = containers_state();
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", state.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", state.join("storage.conf"));
    cmd
}

/// `skopeo` with the same storage settings and the given trust policy.
pub fn skopeo(policy: &Path, registries_d: &Path) -> Command {
    let state = containers_state();
    let mut cmd = Command::new("skopeo");
    cmd.env("CONTAINERS_CONF", state.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", state.join("storage.conf"))
        .arg("--policy")
        .arg(policy)
        .arg("--registries.d")
        .arg(registries_d);
    cmd
}

/// Builds every image once per test binary, from this build's binaries (the dev
/// profile, stripped): `scripts/images.sh build --profile dev`, as `make images` does
/// with its profile.
pub fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        assert!(
            Command::new("podman")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "podman is not installed: run `make test-deps` (scripts/deps/install.sh images)"
        );
        let out = run(
            Command::new(workspace_root().join("scripts/images.sh")).args([
                "build",
                "--profile",
                "dev",
            ]),
        );
        assert!(out.status.success(), "make images: {}", stderr(&out));
    });
}

/// A real OCI registry (Debian's `docker-registry`) on a free loopback port, storing
/// under a temporary folder. Stopped when dropped.
pub struct OciRegistry {
    child: Child,
    pub storage: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub host: String,
}

impl OciRegistry {
    pub fn start() -> OciRegistry {
        let storage = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (make test-deps)");
        let registry = OciRegistry {
            child,
            storage,
            host: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_request(&registry.host, "GET", "/v2/", b"", Duration::from_secs(2)).map(|r| r.0)
            != Some(200)
        {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
