"""Validate one table with one suite in Great Expectations (pandas engine) and compare
with Kiln's validation result, expectation by expectation.

usage: ge_compare.py SUITE.json TABLE.parquet KILN_RESULT.json

Compared per expectation: `success`, `unexpected_count` and, for aggregate
expectations, `observed_value` (numbers to a relative 1e-9, timestamps as instants).
Exits 1 and lists the differences when any exist.
"""

import json
import math
import sys
import time
from datetime import datetime, timezone

import great_expectations as gx
import pandas as pd


def ge_validate(suite_path, table_path):
    suite_json = json.load(open(suite_path))
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("kiln")
    asset = source.add_dataframe_asset("table")
    batch_definition = asset.add_batch_definition_whole_dataframe("all")
    started = time.perf_counter()
    df = pd.read_parquet(table_path)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    suite = gx.ExpectationSuite(name=suite_json["name"])
    for index, config in enumerate(suite_json["expectations"]):
        cls = gx.expectations.core.__dict__.get(
            "".join(part.capitalize() for part in config["type"].split("_"))
        )
        if cls is None:
            raise SystemExit(f"GE has no expectation class for {config['type']}")
        kwargs = dict(config["kwargs"])
        # The index pairs GE's result with Kiln's (GE reports results grouped by column).
        meta = dict(config.get("meta") or {}, compare_index=index)
        suite.add_expectation(cls(**kwargs, meta=meta))
    result = batch.validate(suite, result_format="SUMMARY")
    return result.to_json_dict(), time.perf_counter() - started


def instant(value):
    """A timestamp string (naive = UTC) as a UTC datetime, else None."""
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    ia, ib = instant(a), instant(b)
    if ia is not None and ib is not None:
        return ia == ib
    return a == b


def main():
    suite_path, table_path, kiln_path = sys.argv[1:4]
    ge, ge_seconds = ge_validate(suite_path, table_path)
    kiln = json.load(open(kiln_path))
    if len(ge["results"]) != len(kiln["results"]):
        raise SystemExit(f"GE has {len(ge['results'])} results, Kiln {len(kiln['results'])}")
    differences, compared = [], 0
    # Kiln reports the suite's expectations in order; GE groups them by column.
    for r in ge["results"]:
        k = kiln["results"][r["expectation_config"]["meta"]["compare_index"]]
        config = r["expectation_config"]
        name = f"{config['type']}({config['kwargs'].get('column', config['kwargs'].get('column_list', config['kwargs'].get('column_A', '')))})"
        if k["expectation_config"]["type"] != config["type"]:
            differences.append(f"{name}: Kiln has {k['expectation_config']['type']} here")
            continue
        compared += 1
        if r["success"] != k["success"]:
            differences.append(f"{name}: success GE {r['success']} Kiln {k['success']}"
                               f" (GE exception: {r['exception_info'].get('exception_message')})")
        for field in ("unexpected_count", "missing_count", "observed_value"):
            if field in r["result"]:
                if not same(r["result"][field], k["result"].get(field)):
                    differences.append(f"{name}: {field} GE {r['result'][field]!r} Kiln {k['result'].get(field)!r}")
    print(f"compared {compared} expectations on {table_path}: "
          f"GE {ge['statistics']['successful_expectations']}/{ge['statistics']['evaluated_expectations']} passed "
          f"in {ge_seconds:.2f}s; Kiln {kiln['statistics']['successful_expectations']}/"
          f"{kiln['statistics']['evaluated_expectations']} in {kiln['meta']['seconds']:.3f}s")
    for d in differences:
        print("  DIFFERENT", d)
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
