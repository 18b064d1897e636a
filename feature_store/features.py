"""Feast definitions for the Adult example, read from Kiln's prepare output.

prepare writes `<run>/prepare/train.parquet` with the cleaned, typed, human-named
columns plus `row_id` (the entity) and `event_timestamp` (UTC), the same columns the
expectation suite checks and train reads through transform.json. Feast serves these
raw columns; the model's one-hot/standardised features come from transform.json, so
there is one transform, applied by Kiln, not a second one here.

The source is `make run`'s output by default; set KILN_TRAIN_PARQUET to another run
(for example s3://<bucket>/runs/<workflow>/prepare/train.parquet on EKS).
"""

import os
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Int64, String
from feast.value_type import ValueType

TRAIN_PARQUET = os.environ.get(
    "KILN_TRAIN_PARQUET", "../kiln-runs/adult/prepare/train.parquet"
)

person = Entity(
    name="person",
    join_keys=["row_id"],
    value_type=ValueType.INT64,
    description="One row of the Adult census extract (Kiln's row_id).",
)

adult_train = FileSource(
    name="kiln_adult_train",
    path=TRAIN_PARQUET,
    timestamp_field="event_timestamp",
    description="Kiln prepare: the training split of Adult.",
)

adult_demographics = FeatureView(
    name="adult_demographics",
    entities=[person],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="age", dtype=Int64),
        Field(name="workclass", dtype=String),
        Field(name="education", dtype=String),
        Field(name="education-num", dtype=Int64),
        Field(name="marital-status", dtype=String),
        Field(name="occupation", dtype=String),
        Field(name="relationship", dtype=String),
        Field(name="race", dtype=String),
        Field(name="sex", dtype=String),
        Field(name="native-country", dtype=String),
    ],
    source=adult_train,
    online=True,
    tags={"kiln.step": "prepare", "sensitive": "race,sex"},
)

adult_finances = FeatureView(
    name="adult_finances",
    entities=[person],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="fnlwgt", dtype=Int64),
        Field(name="capital-gain", dtype=Int64),
        Field(name="capital-loss", dtype=Int64),
        Field(name="hours-per-week", dtype=Int64),
    ],
    source=adult_train,
    online=True,
    tags={"kiln.step": "prepare"},
)

income_model_v1 = FeatureService(
    name="income_model_v1",
    features=[adult_demographics, adult_finances],
    description="Every raw input of the adult-income model (transform.json maps them to its features).",
)
