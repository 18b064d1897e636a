//! prepare's outputs, by name: the one place the other steps take them from (the
//! Parquet tables' schema is the spec's, the transform is `kiln_features`'s and the
//! profile is `kiln_stats`'s).

/// prepare's step folder.
pub const STEP: &str = "prepare";
/// The training split (Parquet).
pub const TRAIN: &str = "train.parquet";
/// The test split (Parquet).
pub const TEST: &str = "test.parquet";
/// The fitted feature transform.
pub const TRANSFORM: &str = "transform.json";
/// The training split's profile (the drift reference).
pub const PROFILE: &str = "profile.json";
/// The feature table (Parquet, written when the spec has `transform.lookup`): each entity
/// key's latest row of the looked-up columns, which the model server serves requests from.
pub const FEATURES: &str = "features.parquet";
