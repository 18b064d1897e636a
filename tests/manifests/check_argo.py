"""Validate Argo Workflows manifests offline, as the API server would.

usage: check_argo.py SCHEMA.json MANIFEST.yaml...

Each document is validated against the definition of its kind (Workflow,
WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow) in Argo's JSON schema, not
only the top-level oneOf. The upstream schema allows unknown fields; this checker
closes every object definition that lists its properties (`additionalProperties:
false`), so a typo'd field fails. As the API server does, numbers are accepted where
the schema says Quantity or IntOrString.

Then the references the schema cannot see, as `argo lint` checks them: every template a
step or task calls exists; `{{inputs.parameters.X}}` is declared by its template,
`{{workflow.parameters.X}}` by the spec; `{{steps.S.outputs.parameters.P}}` and
`{{tasks.T.outputs.parameters.P}}` name an earlier step (or a task of the same DAG)
whose template declares output P; `{{item}}` appears only in a loop (withParam,
withItems, withSequence); a DAG's `depends` names its own tasks; and a template that
calls itself does so under a `when` (else it never ends).
Prints one line per error; exits 1 on any.
"""

import copy
import json
import re
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


REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
LOOPS = ("withParam", "withItems", "withSequence")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def references(value):
    for text in strings(value):
        yield from REFERENCE.findall(text)


def check_references(spec):
    """The problems with references in a Workflow(Template) spec, as lines."""
    problems = []
    templates = {t.get("name"): t for t in spec.get("templates", [])}
    workflow_params = {p.get("name") for p in spec.get("arguments", {}).get("parameters", [])}

    def outputs_of(template_name):
        t = templates.get(template_name, {})
        return {p.get("name") for p in t.get("outputs", {}).get("parameters", [])}

    for name, template in templates.items():
        where = f"templates.{name}"
        declared = {p.get("name") for p in template.get("inputs", {}).get("parameters", [])}
        calls = []  # (call, the names it may reference, kind)
        if "steps" in template:
            earlier = {}
            for group in template["steps"]:
                for step in group:
                    calls.append((step, dict(earlier), "steps"))
                for step in group:
                    earlier[step.get("name")] = step.get("template")
        if "dag" in template:
            tasks = {t.get("name"): t.get("template") for t in template["dag"].get("tasks", [])}
            for task in template["dag"].get("tasks", []):
                calls.append((task, tasks, "tasks"))
                for dep in re.findall(r"[A-Za-z0-9_\-]+", task.get("depends", "")):
                    if dep not in tasks and dep not in ("Succeeded", "Failed", "Errored",
                                                        "Skipped", "Omitted", "Daemoned"):
                        problems.append(f"{where}: task {task.get('name')} depends on unknown task {dep}")
        for call, visible, kind in calls:
            at = f"{where}.{call.get('name')}"
            target = call.get("template")
            if target is not None and target not in templates:
                problems.append(f"{at}: calls unknown template {target}")
            if target == name and "when" not in call:
                problems.append(f"{at}: calls its own template without a `when` (it never ends)")
            for ref in references(call):
                parts = ref.split(".")
                if parts[0] == "item" and not any(k in call for k in LOOPS):
                    problems.append(f"{at}: uses {{{{{ref}}}}} outside a loop")
                if parts[0] == kind and len(parts) >= 5 and parts[2:4] == ["outputs", "parameters"]:
                    if parts[1] not in visible:
                        problems.append(f"{at}: {{{{{ref}}}}} names no earlier {kind[:-1]} {parts[1]}")
                    elif parts[4] not in outputs_of(visible[parts[1]]):
                        problems.append(f"{at}: {{{{{ref}}}}}: template {visible[parts[1]]} has no output {parts[4]}")
        body = {k: v for k, v in template.items() if k not in ("steps", "dag")}
        for ref in references(body):
            parts = ref.split(".")
            if parts[:2] == ["inputs", "parameters"] and parts[2] not in declared:
                problems.append(f"{where}: {{{{{ref}}}}} is not an input of the template")
    for ref in references(spec.get("templates", [])):
        parts = ref.split(".")
        if parts[:2] == ["workflow", "parameters"] and parts[2] not in workflow_params:
            problems.append(f"templates: {{{{{ref}}}}} is not a workflow parameter")
    return problems


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
            if "templates" in document.get("spec", {}):
                for problem in check_references(document["spec"]):
                    print(f"{path}: {kind} {problem}")
                    errors += 1
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
