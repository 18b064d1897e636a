"""Validate Argo Workflows manifests offline, as the API server would.

usage: check_argo.py SCHEMA.json MANIFEST.yaml...

Each document is validated against the definition of its kind (Workflow,
WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow) in Argo's JSON schema, not
only the top-level oneOf. The upstream schema allows unknown fields; this checker
closes every object definition that lists its properties (`additionalProperties:
false`), so a typo'd field fails. As the API server does, numbers are accepted where
the schema says Quantity or IntOrString. Prints one line per error; exits 1 on any.
"""

import copy
import json
import sys

import jsonschema
import yaml

KINDS = {
    "Workflow": "io.argoproj.workflow.v1alpha1.Workflow",
    "WorkflowTemplate": "io.argoproj.workflow.v1alpha1.WorkflowTemplate",
    "ClusterWorkflowTemplate": "io.argoproj.workflow.v1alpha1.ClusterWorkflowTemplate",
    "CronWorkflow": "io.argoproj.workflow.v1alpha1.CronWorkflow",
}
LOOSE = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": ["string", "number"],
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": ["string", "integer"],
}


def closed(schema):
    schema = copy.deepcopy(schema)
    for name, definition in schema["definitions"].items():
        if name in LOOSE:
            definition.pop("oneOf", None)
            definition["type"] = LOOSE[name]
        elif definition.get("type") == "object" and "properties" in definition \
                and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return schema


def main():
    schema = closed(json.load(open(sys.argv[1])))
    errors = 0
    for path in sys.argv[2:]:
        for number, document in enumerate(yaml.safe_load_all(open(path))):
            if document is None:
                continue
            kind = document.get("kind")
            if kind not in KINDS:
                print(f"{path}: document {number}: kind {kind!r} is not an Argo workflow kind")
                errors += 1
                continue
            root = dict(schema)
            root.pop("oneOf", None)
            root["$ref"] = f"#/definitions/{KINDS[kind]}"
            validator = jsonschema.Draft202012Validator(root)
            for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                print(f"{path}: {kind} {where}: {error.message}")
                errors += 1
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
