"""``make schemas``: the event schemas from their one source, ``calendly_sync.downstream.contract``.

Writes ``schemas/<detail-type>.json`` (one whole-event JSON Schema, draft 4, per detail-type) and
the template's schema registry and ``AWS::EventSchemas::Schema`` resources, between the marker
lines of its own block in ``template.yaml`` (the rest of the template is left as it is, re-read
right before writing). ``--check`` writes nothing and fails when anything is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "calendly_sync"
if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))

from calendly_sync.downstream import contract  # noqa: E402 - importable once the layer is on the path

SCHEMAS = ROOT / "schemas"
TEMPLATE = ROOT / "template.yaml"
BEGIN = "  # BEGIN GENERATED event schemas (make schemas, from calendly_sync/downstream/contract.py)"
END = "  # END GENERATED event schemas"
REGISTRY_ID = "CalendlyEventSchemaRegistry"
#: CloudFormation's limit on a schema's Description.
MAX_DESCRIPTION = 256


def schema_files() -> dict[str, str]:
    """``schemas/`` as it should be: each file name with its text."""
    return {
        f"{detail_type}.json": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for detail_type, schema in contract.event_schemas().items()
    }


def schema_logical_id(detail_type: str) -> str:
    return f"{contract.title_of(detail_type)}EventSchema"


def schema_name(detail_type: str) -> str:
    """``calendly-sync@InviteeCreated``: the registry's own ``<source>@<DetailType>`` naming."""
    return f"{contract.SOURCE}@{contract.title_of(detail_type)}"


def _quoted(value: str) -> str:
    """A YAML single-quoted scalar (no escapes but a doubled quote): JSON text stays as it is."""
    return "'" + value.replace("'", "''") + "'"


_TAGS = """      Tags:
        - Key: application
          Value: calendly-sync
        - Key: stage
          Value: !Ref Stage"""


def template_block() -> str:
    """The lines between (and including) the markers: the registry, then one schema per detail-type."""
    lines = [
        BEGIN,
        f"  {REGISTRY_ID}:",
        "    Type: AWS::EventSchemas::Registry",
        "    Properties:",
        '      RegistryName: !Sub "${AWS::StackName}-calendly-sync"',
        "      Description: The events calendly-sync puts on its bus (source calendly-sync), one schema"
        " per detail-type, for code bindings.",
        _TAGS,
    ]
    for detail_type, schema in contract.event_schemas().items():
        description = schema["description"]
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 3] + "..."
        lines += [
            "",
            f"  {schema_logical_id(detail_type)}:",
            "    Type: AWS::EventSchemas::Schema",
            "    Properties:",
            f"      RegistryName: !GetAtt {REGISTRY_ID}.RegistryName",
            f"      SchemaName: {schema_name(detail_type)}",
            "      Type: JSONSchemaDraft4",
            f"      Description: {_quoted(description)}",
            f"      Content: {_quoted(json.dumps(schema, separators=(',', ':')))}",
            _TAGS,
        ]
    lines.append(END)
    return "\n".join(lines)


def with_block(template: str) -> str:
    """``template`` with its generated block replaced (the markers must be there, once each)."""
    lines = template.split("\n")
    if lines.count(BEGIN) != 1 or lines.count(END) != 1:
        raise SystemExit(f"template.yaml needs exactly one of each marker line:\n{BEGIN}\n{END}")
    start, end = lines.index(BEGIN), lines.index(END)
    if end < start:
        raise SystemExit("template.yaml: the END marker comes before the BEGIN marker")
    return "\n".join([*lines[:start], template_block(), *lines[end + 1 :]])


def stale() -> list[str]:
    """What ``make schemas`` would change (paths relative to the repository)."""
    wanted = schema_files()
    found = {path.name: path.read_text(encoding="utf-8") for path in SCHEMAS.glob("*.json")}
    changed = [
        f"schemas/{name}"
        for name in sorted(wanted.keys() | found.keys())
        if wanted.get(name) != found.get(name)
    ]
    template = TEMPLATE.read_text(encoding="utf-8")
    if with_block(template) != template:
        changed.append("template.yaml")
    return changed


def write() -> list[str]:
    """Bring ``schemas/`` and the template's block up to date; returns what was written."""
    written: list[str] = []
    wanted = schema_files()
    for path in SCHEMAS.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
            written.append(f"schemas/{path.name} (removed)")
    for name, text in wanted.items():
        path = SCHEMAS / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(f"schemas/{name}")
    template = TEMPLATE.read_text(encoding="utf-8")  # others may have just edited the rest of it
    updated = with_block(template)
    if updated != template:
        TEMPLATE.write_text(updated, encoding="utf-8")
        written.append("template.yaml")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.schemas", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail if anything is stale")
    args = parser.parse_args(argv)
    if args.check:
        changed = stale()
        for path in changed:
            print(f"stale: {path} (run make schemas)")
        return 1 if changed else 0
    written = write()
    print("\n".join(f"wrote {path}" for path in written) or "schemas/ and template.yaml are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
