"""docs/design-names.md: every design-document name in its tables is accepted as ours."""

import importlib
import inspect
import json
import os
import re

import pytest

from keras_trainer.assistant.config import AssistantConfig
from keras_trainer.config.aliases import apply_aliases
from keras_trainer.config.schema import ModelConfig, TrainingConfig
from tests.conftest import ROOT

pytestmark = pytest.mark.one_backend  # names and signatures only; no Keras code runs

with open(os.path.join(ROOT, "docs", "design-names.md"), encoding="utf-8") as _handle:
    _ROWS = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in _handle
        if line.startswith("| ") and not line.startswith("| document") and "---" not in line
    ]
SECTIONS = {"training": TrainingConfig, "model": ModelConfig}
CONFIG_ROWS = [row for row in _ROWS if len(row) == 4 and row[1] in (*SECTIONS, "assistant")]
NAME_ROWS = [row for row in _ROWS if len(row) == 4 and row[3] in ("args", "keywords", "exists")]
_ASSIGNMENT = re.compile(r"^`([\w.]+) = (.+)`$")


def _assignment(cell):
    key, value = _ASSIGNMENT.match(cell).groups()
    return key, json.loads(value)


def _lookup(data, dotted):
    for key in dotted.split("."):
        data = data[key]
    return data


def test_the_tables_are_read():
    assert len(CONFIG_ROWS) >= 20 and len(NAME_ROWS) >= 30


@pytest.mark.parametrize("row", CONFIG_ROWS, ids=lambda row: row[2].strip("`"))
def test_config_alias_maps_to_our_key_and_value(row):
    _, section, theirs, ours = row
    key, value = _assignment(theirs)
    our_key, our_value = _assignment(ours)
    if section in SECTIONS:
        data = apply_aliases(SECTIONS[section], {key: value}, section)
    else:
        data = AssistantConfig.upgrade({key: value})
    assert _lookup(data, our_key) == our_value


def _resolve(dotted):
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("row", NAME_ROWS, ids=lambda row: row[1].strip("`")[:50])
def test_python_name_exists_and_takes_the_documents_arguments(row):
    _, call, ours, check = row
    obj = _resolve(ours.strip("`"))
    if check == "exists":
        return
    parameters = inspect.signature(obj).parameters
    inside = call.strip("`").split("(", 1)[1].rsplit(")", 1)[0]
    names = set(re.findall(r"(\w+)=", inside))
    if check == "args":
        names |= {a.strip() for a in inside.split(",") if re.fullmatch(r"\s*\w+\s*", a)}
    assert names, call
    assert names <= set(parameters), sorted(names - set(parameters))
