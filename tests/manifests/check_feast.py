"""Checks Feast definitions against a table Kiln's prepare wrote, without Feast.

Usage: python check_feast.py FEATURES_PY TRAIN_PARQUET

Reads the definitions as Python syntax (no import, so Feast need not be installed) and
checks, against the Parquet file's schema (read with pyarrow): every Field exists with
a compatible type, every entity join key exists, and each FileSource's timestamp_field
is a timestamp column. Prints one line per problem; exits 1 if there is any.
"""

import ast
import sys

import pyarrow as pa
import pyarrow.parquet as pq

FEAST_TYPES = {
    "Int32": lambda t: pa.types.is_int32(t),
    "Int64": lambda t: pa.types.is_integer(t),
    "Float32": lambda t: pa.types.is_floating(t),
    "Float64": lambda t: pa.types.is_floating(t),
    "String": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "Bool": lambda t: pa.types.is_boolean(t),
    "UnixTimestamp": lambda t: pa.types.is_timestamp(t),
}


def keyword(call, name):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def call_name(call):
    f = call.func
    return f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)


def main(features_py, parquet):
    tree = ast.parse(open(features_py, encoding="utf-8").read(), features_py)
    schema = pq.read_schema(parquet)
    types = {f.name: f.type for f in schema}
    problems = []
    fields = join_keys = timestamps = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kind = call_name(node)
        where = f"{features_py}:{node.lineno}"
        if kind == "Field":
            fields += 1
            name = keyword(node, "name")
            dtype = keyword(node, "dtype")
            if not isinstance(name, ast.Constant) or not isinstance(dtype, ast.Name):
                problems.append(f"{where}: Field needs a literal name and a feast.types dtype")
                continue
            column = name.value
            if column not in types:
                problems.append(f"{where}: field `{column}` is not a column of {parquet}")
            elif dtype.id not in FEAST_TYPES:
                problems.append(f"{where}: field `{column}`: unknown Feast type {dtype.id}")
            elif not FEAST_TYPES[dtype.id](types[column]):
                problems.append(
                    f"{where}: field `{column}` is {dtype.id} but the column is {types[column]}"
                )
        elif kind == "Entity":
            keys = keyword(node, "join_keys")
            for key in getattr(keys, "elts", []):
                join_keys += 1
                if key.value not in types:
                    problems.append(f"{where}: join key `{key.value}` is not a column of {parquet}")
        elif kind == "FileSource":
            ts = keyword(node, "timestamp_field")
            timestamps += 1
            if not isinstance(ts, ast.Constant):
                problems.append(f"{where}: FileSource needs a literal timestamp_field")
            elif ts.value not in types or not pa.types.is_timestamp(types[ts.value]):
                problems.append(f"{where}: timestamp_field `{ts.value}` is not a timestamp column")
    if fields == 0 or join_keys == 0 or timestamps == 0:
        problems.append(f"{features_py}: no Field, Entity join key or FileSource found")
    for p in problems:
        print(p)
    if not problems:
        print(f"feast: {fields} fields, {join_keys} join keys, {timestamps} sources match {parquet}")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
