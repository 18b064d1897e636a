"""Run schemathesis against a live kiln-serve with KServe's Open Inference Protocol
OpenAPI description.

The reference file writes its path parameters as `${MODEL_NAME}` and
`${MODEL_VERSION}`; this copy puts the served model's name and version in their place
(a server answers 404 for any other model, which the description does not list), and
leaves everything else as published.

usage: schemathesis_run.py SPEC BASE_URL MODEL VERSION
"""
import subprocess
import sys
import tempfile

import yaml

spec, base_url, model, version = sys.argv[1:5]
with open(spec) as f:
    doc = yaml.safe_load(f)
paths = {}
for path, item in doc["paths"].items():
    path = path.replace("${MODEL_NAME}", model).replace("${MODEL_VERSION}", version)
    item.pop("parameters", None)
    paths[path] = item
doc["paths"] = paths
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
    yaml.safe_dump(doc, out)
    fixed = out.name

# Every check, except "positive data acceptance": the description accepts any tensor,
# while a model accepts only its own inputs (a 400 naming the input is right there).
command = [
    sys.executable, "-m", "schemathesis.cli", "run", fixed,
    "--url", base_url,
    "--checks", "all",
    "--exclude-checks", "positive_data_acceptance",
    "--max-examples", "60",
    "--generation-deterministic",
    "--no-color",
]
# Its example cache goes to a scratch folder, not the checkout.
sys.exit(subprocess.call(command, cwd=tempfile.mkdtemp()))
