"""Validates OpenLineage events (one JSON object per line) against the OpenLineage
2-0-2 schema and every facet schema they name, with a JSON Schema 2020-12 validator
whose registry holds all the files by their $id. Prints one line per invalid event
and exits 1 if there is one.

    python validate_events.py OPENLINEAGE_SCHEMA_DIR EVENTS_FILE
"""

import json
import pathlib
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def main(schema_dir: str, events_file: str) -> int:
    root = pathlib.Path(schema_dir)
    documents = [json.loads((root / "OpenLineage.json").read_text())]
    documents += [json.loads(p.read_text()) for p in sorted((root / "facets").glob("*.json"))]
    registry = Registry().with_resources(
        (d["$id"], Resource.from_contents(d)) for d in documents
    )
    run_event = {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
    formats = Draft202012Validator.FORMAT_CHECKER
    validator = Draft202012Validator(run_event, registry=registry, format_checker=formats)
    facet_schemas = {d["$id"]: d for d in documents}
    bad = 0
    lines = [l for l in pathlib.Path(events_file).read_text().splitlines() if l.strip()]
    for i, line in enumerate(lines, 1):
        event = json.loads(line)
        errors = list(validator.iter_errors(event))
        # Each facet also against the schema its _schemaURL names.
        for facet in iter_facets(event):
            url = facet.get("_schemaURL", "")
            base, _, pointer = url.partition("#")
            if base not in facet_schemas:
                errors.append(f"facet schema {base} is not an OpenLineage facet")
                continue
            sub = {"$ref": url}
            errors += list(
                Draft202012Validator(sub, registry=registry, format_checker=formats).iter_errors(facet)
            )
        for e in errors:
            bad += 1
            print(f"event {i} ({event.get('eventType')} {event.get('job', {}).get('name')}): {getattr(e, 'message', e)}")
    print(f"{len(lines)} events, {bad} problems")
    return 1 if bad else 0


def iter_facets(event):
    yield from event.get("run", {}).get("facets", {}).values()
    yield from event.get("job", {}).get("facets", {}).values()
    for d in event.get("inputs", []) + event.get("outputs", []):
        yield from d.get("facets", {}).values()
        yield from d.get("inputFacets", {}).values()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
