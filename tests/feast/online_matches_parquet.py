"""Runs Feast itself over a table Kiln's prepare wrote, and checks what it serves.

Usage: python online_matches_parquet.py FEATURE_REPO TRAIN_PARQUET WORK_DIR

Copies the Feast repository (features.py, feature_store.yaml) into WORK_DIR, points it
at TRAIN_PARQUET (KILN_TRAIN_PARQUET), then, as a user would:

1. `feast apply` registers the entity, the source, the views and the service;
2. `feast materialize` loads the Parquet's rows into the SQLite online store;
3. `get_online_features` through the `income_model_v1` service, for a sample of
   row ids (the first and last rows, rows with missing values, and a seeded random
   sample) and for one row id that is not in the table.

Every value served must equal the Parquet's (nulls included), and the unknown row id
must get no values. So that the comparison cannot pass by accident, the same values are
also compared with the Parquet's values of the next row id, which must differ somewhere.
Prints one line per problem and exits 1 if there is any; prints one summary line if not.
"""

import os
import random
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq

SERVICE = "income_model_v1"
ENTITY = "row_id"
SAMPLE = 400


def feast(repo, *args):
    """Runs the `feast` command of this interpreter's environment in the repository."""
    command = [str(Path(sys.executable).with_name("feast")), "--chdir", str(repo), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"`feast {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def sample_ids(table, features):
    """Row ids to ask for: both ends, every null pattern seen, and a seeded sample."""
    ids = table.column(ENTITY).to_pylist()
    chosen = {ids[0], ids[-1]}
    for name in features:
        column = table.column(name)
        if column.null_count:
            nulls = [i for i, v in zip(ids, column.to_pylist()) if v is None]
            chosen.update(nulls[:5])
    chosen.update(random.Random(7).sample(ids, min(SAMPLE, len(ids))))
    return sorted(chosen)


def main(repo_source, parquet, work):
    repo = Path(work) / "feature_repo"
    repo.mkdir(parents=True)
    for name in ("features.py", "feature_store.yaml"):
        shutil.copy(Path(repo_source) / name, repo / name)
    os.environ["KILN_TRAIN_PARQUET"] = str(Path(parquet).resolve())

    feast(repo, "apply")
    table = pq.read_table(parquet)
    stamps = table.column("event_timestamp").to_pylist()
    start, end = min(stamps), max(stamps)
    # materialize reads rows with start <= event time < end: widen by a second each way.
    second = timedelta(seconds=1)
    feast(repo, "materialize", (start - second).isoformat(), (end + second).isoformat())

    from feast import FeatureStore  # after apply: the registry exists

    store = FeatureStore(repo_path=str(repo))
    service = store.get_feature_service(SERVICE)
    features = [f.name for view in service.feature_view_projections for f in view.features]
    missing = [f for f in features if f not in table.column_names]
    if missing:
        sys.exit(f"{SERVICE}: features {missing} are not columns of {parquet}")

    ids = sample_ids(table, features)
    unknown = max(table.column(ENTITY).to_pylist()) + 1_000_000
    served = store.get_online_features(
        features=service, entity_rows=[{ENTITY: i} for i in ids + [unknown]]
    ).to_dict()

    by_id = {}
    for row in table.select([ENTITY] + features).to_pylist():
        by_id[row[ENTITY]] = row
    problems = []
    for k, row_id in enumerate(ids):
        expected = by_id[row_id]
        for name in features:
            got = served[name][k]
            if got != expected[name]:
                problems.append(
                    f"row_id {row_id}: feature `{name}`: Feast served {got!r}, "
                    f"the Parquet holds {expected[name]!r}"
                )
    for name in features:
        if served[name][-1] is not None:
            problems.append(f"row_id {unknown} (not in the table): `{name}` = {served[name][-1]!r}")

    # Not blind: the next row's values must differ from what was served somewhere.
    shifted = sum(
        1
        for k, row_id in enumerate(ids)
        if row_id + 1 in by_id
        for name in features
        if served[name][k] != by_id[row_id + 1][name]
    )
    if shifted == 0:
        problems.append("the comparison cannot tell rows apart: every value equals the next row's")

    for line in problems[:50]:
        print(line)
    if problems:
        print(f"{len(problems)} problems", file=sys.stderr)
        return 1
    nulls = sum(1 for name in features for v in served[name][:-1] if v is None)
    print(
        f"feast: {len(ids)} rows x {len(features)} features served online equal {parquet} "
        f"({nulls} nulls; {len(table)} rows materialized)"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
