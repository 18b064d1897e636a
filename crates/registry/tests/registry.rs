//! The local registry on a shared store: concurrent registrations never share a number.

use std::collections::{BTreeMap, BTreeSet};

use kiln_core::store::ArtifactStore;
use kiln_registry::Registry;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_registrations_get_eight_distinct_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("registry");
    let bundle_dir = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle_dir).unwrap();
    std::fs::write(bundle_dir.join("metadata.json"), b"{}").unwrap();
    let bundle = ArtifactStore::open(bundle_dir.to_str().unwrap()).unwrap();
    // Version 1 exists before the race: the racers all start from the same listing.
    let first = Registry::Local(ArtifactStore::open(root.to_str().unwrap()).unwrap());
    let v1 = first
        .create("m", &bundle, "run-0", None, &BTreeMap::new(), &[], None)
        .await
        .unwrap()
        .version;
    assert_eq!(v1, "1");

    let racers = (1..=8).map(|i| {
        // Each racer opens the registry itself, as eight pipeline pods would.
        let root = root.clone();
        let bundle = bundle.clone();
        tokio::spawn(async move {
            let registry = Registry::Local(ArtifactStore::open(root.to_str().unwrap()).unwrap());
            let run = format!("run-{i}");
            let created = registry
                .create("m", &bundle, &run, None, &BTreeMap::new(), &[], None)
                .await
                .unwrap();
            let (version, source) = (created.version, created.source);
            (run, version, source)
        })
    });
    let results: Vec<_> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let versions: BTreeSet<u64> = results.iter().map(|(_, v, _)| v.parse().unwrap()).collect();
    assert_eq!(versions, (2..=9).collect(), "{results:?}");
    // Each version's record names the run that got it, and its bundle is its own.
    for (run, version, source) in &results {
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("m/versions/{version}/version.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(record["run_uri"], run.as_str(), "version {version}");
        assert_eq!(record["version"], version.parse::<u64>().unwrap());
        assert!(
            source.ends_with(&format!("m/versions/{version}/model")),
            "{source}"
        );
    }
    // The next registration continues after the highest.
    let next = first
        .create("m", &bundle, "run-9", None, &BTreeMap::new(), &[], None)
        .await
        .unwrap()
        .version;
    assert_eq!(next, "10");
}
