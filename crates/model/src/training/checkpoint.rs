//! Training checkpoints in the object store, written so that a reader finds either a
//! complete checkpoint or none: the blobs first, `meta.json` (with their sha256) last.
//! A checkpoint whose meta is missing, unreadable, or whose blobs do not match their
//! hashes is skipped with a warning, and the next older one is tried.

use std::collections::BTreeMap;

use bytes::Bytes;
use kiln_core::Result;
use kiln_core::store::{ArtifactStore, ContentHash, sha256_hex};
use serde::{Deserialize, Serialize};

const META: &str = "meta.json";
const FORMAT: u32 = 1;
/// Checkpoints kept; older ones are deleted after a new one is complete.
const KEEP: usize = 2;

/// The validation result of the best epoch so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub epoch: usize,
    pub val_loss: f64,
    pub val_auc: Option<f64>,
}

pub use kiln_core::contracts::train::EpochRecord;

/// Where training stands, without the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The epoch in progress (0-based).
    pub epoch: usize,
    /// The next batch of that epoch.
    pub batch: usize,
    pub global_step: u64,
    pub train_loss_sum: f64,
    pub train_loss_batches: u64,
    pub best: Option<Best>,
    pub stale_epochs: usize,
    pub history: Vec<EpochRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format_version: u32,
    /// Identifies the spec and inputs; checkpoints of other training runs are ignored.
    key: String,
    progress: Progress,
    files: BTreeMap<String, ContentHash>,
}

/// A complete checkpoint.
pub struct Checkpoint {
    pub progress: Progress,
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
    pub best_model: Option<Vec<u8>>,
}

/// The checkpoint folder of one training run.
pub struct CheckpointStore {
    pub dir: ArtifactStore,
    pub key: String,
}

impl CheckpointStore {
    /// Writes a checkpoint (blobs, then meta) and prunes older ones.
    pub async fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        let name = format!("step-{:012}", checkpoint.progress.global_step);
        let mut files = BTreeMap::new();
        let mut blobs: Vec<(&str, &[u8])> = vec![
            ("model.bin", &checkpoint.model),
            ("optimizer.bin", &checkpoint.optimizer),
        ];
        if let Some(best) = &checkpoint.best_model {
            blobs.push(("best.bin", best));
        }
        for (file, bytes) in blobs {
            let hash = self
                .dir
                .put(&format!("{name}/{file}"), Bytes::copy_from_slice(bytes))
                .await?;
            files.insert(file.to_string(), hash);
        }
        let meta = Meta {
            format_version: FORMAT,
            key: self.key.clone(),
            progress: checkpoint.progress.clone(),
            files,
        };
        self.dir.put_json(&format!("{name}/{META}"), &meta).await?;
        for old in self.names().await?.into_iter().rev().skip(KEEP) {
            self.dir.delete_prefix(&old).await?;
        }
        Ok(())
    }

    /// The newest complete checkpoint of this run, if any.
    pub async fn latest(&self) -> Result<Option<Checkpoint>> {
        for name in self.names().await?.into_iter().rev() {
            match self.read(&name).await {
                Ok(Some(checkpoint)) => return Ok(Some(checkpoint)),
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(checkpoint = %self.dir.uri_of(&name), %reason, "skipping a checkpoint that is incomplete or corrupt")
                }
            }
        }
        Ok(None)
    }

    /// Deletes every checkpoint (after training completed).
    pub async fn clear(&self) -> Result<()> {
        self.dir.delete_prefix("").await
    }

    /// Checkpoint folder names, oldest first.
    async fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .dir
            .list("")
            .await?
            .into_iter()
            .filter_map(|path| path.split('/').next().map(str::to_string))
            .filter(|name| name.starts_with("step-"))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Ok(None): a checkpoint of another run (different key). Err: incomplete or corrupt.
    #[expect(clippy::disallowed_methods, reason = "a checkpoint's own metadata")]
    async fn read(&self, name: &str) -> std::result::Result<Option<Checkpoint>, String> {
        let meta: Meta = self
            .dir
            .get_json(&format!("{name}/{META}"))
            .await
            .map_err(|e| e.to_string())?;
        if meta.format_version != FORMAT {
            return Err(format!("format {} is not {FORMAT}", meta.format_version));
        }
        if meta.key != self.key {
            tracing::info!(
                checkpoint = name,
                "ignoring a checkpoint of different inputs or spec"
            );
            return Ok(None);
        }
        let mut blobs = BTreeMap::new();
        for (file, hash) in &meta.files {
            let bytes = self
                .dir
                .get(&format!("{name}/{file}"))
                .await
                .map_err(|e| e.to_string())?;
            if sha256_hex(&bytes) != hash.sha256 {
                return Err(format!("{file} does not match its sha256"));
            }
            blobs.insert(file.clone(), bytes.to_vec());
        }
        let mut take = |file: &str| blobs.remove(file);
        Ok(Some(Checkpoint {
            model: take("model.bin").ok_or("model.bin is missing")?,
            optimizer: take("optimizer.bin").ok_or("optimizer.bin is missing")?,
            best_model: take("best.bin"),
            progress: meta.progress,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(step: u64) -> Checkpoint {
        Checkpoint {
            progress: Progress {
                epoch: step as usize,
                batch: 0,
                global_step: step,
                train_loss_sum: 0.0,
                train_loss_batches: 0,
                best: None,
                stale_epochs: 0,
                history: Vec::new(),
            },
            model: vec![step as u8; 16],
            optimizer: vec![1, 2, 3],
            best_model: None,
        }
    }

    #[tokio::test]
    async fn newest_valid_checkpoint_wins_and_corrupt_ones_are_skipped() {
        let store = CheckpointStore {
            dir: ArtifactStore::open("memory://ckpt-test/run/train/checkpoints").unwrap(),
            key: "k".into(),
        };
        assert!(store.latest().await.unwrap().is_none());
        for step in [10, 20, 30] {
            store.save(&checkpoint(step)).await.unwrap();
        }
        // Only the last two are kept.
        assert_eq!(
            store.names().await.unwrap(),
            vec!["step-000000000020", "step-000000000030"]
        );
        assert_eq!(
            store.latest().await.unwrap().unwrap().progress.global_step,
            30
        );
        // Corrupt the newest: the older one is used.
        store
            .dir
            .put(
                "step-000000000030/model.bin",
                Bytes::from_static(b"garbage"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.latest().await.unwrap().unwrap().progress.global_step,
            20
        );
        // A partial checkpoint (no meta) is skipped too.
        store
            .dir
            .put("step-000000000040/model.bin", Bytes::from_static(b"half"))
            .await
            .unwrap();
        assert_eq!(
            store.latest().await.unwrap().unwrap().progress.global_step,
            20
        );
        // Another run's checkpoints are ignored.
        let other = CheckpointStore {
            dir: store.dir.clone(),
            key: "other".into(),
        };
        assert!(other.latest().await.unwrap().is_none());
    }
}
