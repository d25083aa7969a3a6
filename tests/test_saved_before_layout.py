"""Models saved by the code before the layout refactor (issue 10) still load and predict the same.

The fixtures in tests/fixtures/saved_before_layout/ were written by the previous
layout (`keras_trainer.trainer.ModelTrainer`, `keras_trainer.tabular.save_tabular_model`)
on the JAX backend; `expected.json` holds their predictions on four inputs.
"""

import json
import pathlib

import numpy as np
import pytest

from keras_trainer.registry import TASKS

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "saved_before_layout"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_jit_strategy_model_saved_before_the_refactor_loads_and_predicts_the_same(suffix):
    from keras_trainer import ModelTrainer

    trainer = TASKS.get("jit_strategy")(FIXTURES / f"jit_strategy{suffix}")
    assert isinstance(trainer, ModelTrainer)
    assert len(trainer.class_names) == 5
    probabilities = trainer.predict(np.asarray(EXPECTED["jit_inputs"], dtype="float32"))
    np.testing.assert_allclose(probabilities, EXPECTED["jit_outputs"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_tabular_model_saved_before_the_refactor_loads_and_predicts_the_same(suffix):
    model, metadata = TASKS.get("tabular")(FIXTURES / f"tabular_feed_forward{suffix}")
    assert metadata["task"] == "tabular"
    outputs = np.asarray(
        model.predict(np.asarray(EXPECTED["tabular_inputs"], dtype="float32"), verbose=0)
    )
    np.testing.assert_allclose(outputs, EXPECTED["tabular_outputs"], rtol=1e-4, atol=1e-5)
