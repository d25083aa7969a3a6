"""Markdown reference of every config option, generated from the schema.

`docs/config.md` is this module's output (`python -m keras_trainer.config.docs`); a
test checks that the committed file is current, so the schema stays the one
place where options, defaults and descriptions live.
"""

from __future__ import annotations

import json
import sys

from keras_trainer.config import json_schema


def _type(prop: dict) -> str:
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_type(prop.get('items', {}))}"
    bounds = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in prop:
            bounds.append(f"{sign} {prop[key]}")
    kind = prop.get("type", "any")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _rows(schema: dict, prefix: str, sections: list) -> list[str]:
    rows = []
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        if prop.get("type") == "object" and "properties" in prop:
            sections.append((path, prop))
            continue
        values = prop.get("additionalProperties")
        if isinstance(values, dict) and "properties" in values:  # a map name -> section
            sections.append((f"{path}.<name>", values))
        description = prop.get("description", "")
        default = f"`{json.dumps(prop['default'])}`" if "default" in prop else "`required`"
        if "x-alias-of" in prop:  # another name for a key (keras_trainer.config.aliases)
            target = f"{prefix}.{prop['x-alias-of']}" if prefix else prop["x-alias-of"]
            description = description.replace(f"`{prop['x-alias-of']}`", f"`{target}`", 1)
            default = "-"
        rows.append(f"| `{path}` | {_type(prop)} | {default} | {description} |")
    return rows


def _sections(lines: list, schema: dict, skip: set) -> None:
    top = dict(schema)
    top["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k not in skip}
    pending = [("", top)]
    while pending:
        path, schema = pending.pop(0)
        nested: list = []
        rows = _rows(schema, path, nested)
        if rows:
            lines += ["", f"### `{path or 'top level'}`", "", schema.get("description", ""), ""]
            lines += [
                "| option | type | default | description |",
                "| --- | --- | --- | --- |",
                *rows,
            ]
        pending = nested + pending


def config_reference() -> str:
    """Returns the Markdown reference of all options of every config file kind."""
    from keras_trainer.registry import CONFIG_FILES

    lines = [
        "# Config reference",
        "",
        "Generated from the config sections (`keras_trainer/config/schema.py` and each",
        "family's `config` module) by `python -m keras_trainer.config.docs`; do not edit",
        "by hand. `keras-trainer schema --kind KIND` prints the same as JSON Schema.",
        "",
        "## Shared sections (`--kind trainer`)",
    ]
    shared = json_schema("trainer")
    _sections(lines, shared, set())
    for kind in CONFIG_FILES.names():
        if kind == "trainer":
            continue
        schema = json_schema(kind)
        extends = set(shared["properties"]) <= set(schema.get("properties", {}))
        lines += ["", f"## `{kind}` config file (`--kind {kind}`)", ""]
        if extends:
            lines.append("The shared sections above, plus:")
        _sections(lines, schema, set(shared["properties"]) if extends else set())
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(config_reference())
