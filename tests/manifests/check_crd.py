"""Validate custom resources offline against their CRDs' OpenAPI schemas, as the API
server would, with unknown fields rejected.

usage: check_crd.py CRD.yaml[,CRD.yaml...] MANIFEST.yaml...

Every document whose apiVersion and kind one of the CRDs defines is checked against
that version's `openAPIV3Schema`. Structural schemas leave objects open unless they say
otherwise; this checker closes every object that lists `properties` and neither sets
`additionalProperties` nor `x-kubernetes-preserve-unknown-fields`, so a misspelled field
fails. `x-kubernetes-int-or-string` accepts an integer or a string. A document of a
kind no CRD defines is an error (a typo in `kind` must not pass unchecked). Prints one
line per error; exits 1 on any.
"""

import copy
import sys

import jsonschema
import yaml


def close(schema):
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-int-or-string"):
            schema.pop("anyOf", None)
            schema["type"] = ["integer", "string"]
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for key, value in list(schema.items()):
            if key == "properties":
                for sub in value.values():
                    close(sub)
            elif key in ("items", "additionalProperties", "not"):
                close(value)
            elif key in ("allOf", "anyOf", "oneOf"):
                for sub in value:
                    close(sub)
    return schema


def schemas(crd_paths):
    found = {}
    for path in crd_paths:
        for crd in yaml.safe_load_all(open(path)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    schema = close(copy.deepcopy(schema))
                    # metadata is the API server's own: names and labels, not open fields.
                    props = schema.setdefault("properties", {})
                    props["metadata"] = {"type": "object"}
                    # Some CRDs (Istio's) list only spec and status at the root.
                    props.setdefault("apiVersion", {"type": "string"})
                    props.setdefault("kind", {"type": "string"})
                    found[(f"{group}/{version['name']}", kind)] = schema
    return found


def main():
    known = schemas(sys.argv[1].split(","))
    errors = 0
    for path in sys.argv[2:]:
        for number, document in enumerate(yaml.safe_load_all(open(path))):
            if document is None:
                continue
            key = (document.get("apiVersion"), document.get("kind"))
            name = (document.get("metadata") or {}).get("name", "?")
            if key not in known:
                print(f"{path}: document {number} ({name}): no CRD defines {key[1]} in {key[0]}")
                errors += 1
                continue
            validator = jsonschema.Draft7Validator(known[key])
            for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
                where = ".".join(str(p) for p in error.absolute_path) or "(root)"
                print(f"{path}: {key[1]} {name}: {where}: {error.message}")
                errors += 1
    if errors:
        sys.exit(1)
    print(f"{len(sys.argv) - 2} file(s) valid against {len(known)} CRD version(s)")


main()
