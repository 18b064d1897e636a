"""Validates an ML-BOM against CycloneDX 1.6 with cyclonedx-python-lib's strict JSON
validator (the schema it ships). Exit 0 when valid; else 1, printing the error."""

import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(f.read())
    if error is not None:
        print(f"{path}: not valid CycloneDX 1.6: {error}")
        return 1
    print(f"{path}: valid CycloneDX 1.6")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
