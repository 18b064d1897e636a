"""Structural checks of GitHub workflow files that actionlint does not make.

Usage: python check_workflow.py FILE...

- every `uses:` of a third-party action is pinned to a full 40-hex commit SHA;
- top-level, job and step keys are ones GitHub Actions knows (a typo'd key is an error:
  GitHub ignores nothing silently, it rejects the workflow on push);
- every job has `runs-on` (or `uses` for a reusable workflow) and steps.
Prints one line per problem (FILE: where: what); exits 1 if there is any. Without node,
`lint.sh workflow` runs only this check.
"""

import re
import sys

import yaml

TOP = {"name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"}
JOB = {
    "name", "permissions", "needs", "if", "runs-on", "environment", "concurrency",
    "outputs", "env", "defaults", "steps", "timeout-minutes", "strategy",
    "continue-on-error", "container", "services", "uses", "with", "secrets",
}
STEP = {
    "id", "if", "name", "uses", "run", "working-directory", "shell", "with", "env",
    "continue-on-error", "timeout-minutes",
}
PINNED = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")


def check(path):
    problems = []
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        return [f"{path}: not a mapping"]
    # PyYAML reads the key `on` as the boolean True.
    keys = {"on" if k is True else k for k in doc}
    problems += [f"{path}: unknown top-level key `{k}`" for k in sorted(keys - TOP)]
    jobs = doc.get("jobs") or {}
    if not jobs:
        problems.append(f"{path}: no jobs")
    for name, job in jobs.items():
        where = f"{path}: jobs.{name}"
        if not isinstance(job, dict):
            problems.append(f"{where}: not a mapping")
            continue
        problems += [f"{where}: unknown key `{k}`" for k in sorted(set(job) - JOB)]
        if "uses" not in job and ("runs-on" not in job or not job.get("steps")):
            problems.append(f"{where}: needs runs-on and steps")
        for i, step in enumerate(job.get("steps") or []):
            at = f"{where}.steps[{i}]"
            problems += [f"{at}: unknown key `{k}`" for k in sorted(set(step) - STEP)]
            uses = step.get("uses")
            if uses and not uses.startswith(("./", "docker://")) and not PINNED.match(uses):
                problems.append(f"{at}: `{uses}` is not pinned to a commit SHA")
            if ("uses" in step) == ("run" in step):
                problems.append(f"{at}: needs exactly one of uses and run")
    return problems


def main(paths):
    problems = [p for path in paths for p in check(path)]
    for p in problems:
        print(p)
    if not problems:
        print(f"workflow structure: {len(paths)} file(s) clean, every action pinned by SHA")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: python check_workflow.py FILE...", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
