//! tune's `best.json`: the configuration train trains the final model with
//! ([`BestConfig`], defined with the tune spec it comes from).

use super::Artifact;
use crate::spec::{BEST_CONFIG_FORMAT, BestConfig};

impl Artifact for BestConfig {
    const STEP: &'static str = "tune";
    const FILE: &'static str = "best.json";
    const FORMAT_VERSION: u32 = BEST_CONFIG_FORMAT;

    fn format_version(&self) -> u32 {
        self.format_version
    }
}
