"""Grafana dashboards against Grafana's JSON schemas (grafana-foundation-sdk): the
dashboard model, each panel's options and field config for its plugin (timeseries,
stat), and each target as a Prometheus query. Unknown properties fail (the schemas
close every object). Usage: check_dashboards.py SCHEMA_DIR DASHBOARD.json...
"""
import json
import sys

import jsonschema


def load(schema_dir, name):
    with open(f"{schema_dir}/{name}.jsonschema.json") as f:
        return json.load(f)


def sub(schema, definition):
    """One definition of a schema file, keeping its siblings for $ref."""
    return {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}


def main(schema_dir, files):
    dashboard_schema = load(schema_dir, "dashboard")
    plugins = {name: load(schema_dir, name) for name in ("timeseries", "stat")}
    query = load(schema_dir, "prometheus")
    failures = []

    def check(schema, value, where):
        for error in jsonschema.Draft7Validator(schema).iter_errors(value):
            # A panel is a oneOf (panel, row): report the error of the branch its type picks.
            if error.context and isinstance(error.instance, dict):
                branch = 1 if error.instance.get("type") == "row" else 0
                mine = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == branch]
                if mine:
                    error = jsonschema.exceptions.best_match(mine)
            path = "/".join(str(p) for p in error.absolute_path)
            failures.append(f"{where}{'/' + path if path else ''}: {error.message}")

    for file in files:
        with open(file) as f:
            dashboard = json.load(f)
        check(dashboard_schema, dashboard, file)
        for panel in dashboard.get("panels", []):
            where = f"{file}: panel {panel.get('id')} ({panel.get('title')})"
            kind = panel.get("type")
            if kind not in plugins:
                failures.append(f"{where}: panel type {kind!r} has no schema here (use timeseries or stat)")
                continue
            check(sub(plugins[kind], "Options"), panel.get("options", {}), f"{where} options")
            custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
            if kind == "timeseries" and custom is not None:
                check(sub(plugins[kind], "FieldConfig"), custom, f"{where} fieldConfig.custom")
            if not panel.get("targets"):
                failures.append(f"{where}: no targets")
            for target in panel.get("targets", []):
                check(query, target, f"{where} target {target.get('refId')}")
    for failure in failures:
        print(failure, file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"{len(files)} dashboards valid")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
