"""keras_trainer.functional: explicit parameters, gradients and update steps on every backend."""

import keras
import numpy as np
import pytest

from keras_trainer import BackendNotSupportedError, ConfigError, ModelError, functional
from keras_trainer.config import ModelConfig, TrainingConfig
from keras_trainer.core.building.models import build_model
from keras_trainer.core.training.fit import fit
from tests.conftest import BACKEND

# The seed MLP of config/model_config.json: 12 features, 64 and 32 hidden units, 5 classes.
SEED_MLP = ModelConfig(input_dim=12, hidden_layers=[64, 32], output_dim=5)


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 12)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, 32)]
    return x, y


@pytest.fixture
def model():
    return build_model(SEED_MLP, (12,))


def _hand_loop(model, opt, x, y, epochs=2, batch_size=16):
    params = functional.parameters(model)
    step = functional.value_and_grad(model, "categorical_crossentropy", jit=True)
    state = functional.optimizer_state(opt, model)
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            batch = slice(start, start + batch_size)
            loss, grads, _, params = step(params, x[batch], y[batch])
            params, state = functional.apply_updates(opt, params, grads, state)
    return params, loss


def test_parameters_are_copies_of_every_variable(model):
    params = functional.parameters(model)
    assert [tuple(p.shape) for p in params.trainable] == [
        tuple(v.shape) for v in model.trainable_variables
    ]
    assert len(params.non_trainable) == len(model.non_trainable_variables)
    before = _numpy(model.trainable_variables[0])
    changed = functional.Parameters(
        [keras.ops.zeros_like(p) for p in params.trainable],
        params.non_trainable,
    )
    np.testing.assert_array_equal(_numpy(model.trainable_variables[0]), before)
    functional.set_parameters(model, changed)
    assert not _numpy(model.trainable_variables[0]).any()


def test_value_and_grad_returns_the_loss_gradients_and_outputs_of_fit(data):
    x, y = data
    # A small network: the function runs eagerly here, one operation at a time.
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(5, activation="softmax")])
    loss, grads, outputs, params = functional.value_and_grad(model, "categorical_crossentropy")(
        functional.parameters(model), x, y
    )
    expected = keras.losses.CategoricalCrossentropy()(y, model(x))
    assert float(_numpy(loss)) == pytest.approx(float(_numpy(expected)), rel=1e-5)
    np.testing.assert_allclose(_numpy(outputs), _numpy(model(x)), atol=1e-6)
    assert [tuple(g.shape) for g in grads] == [tuple(p.shape) for p in params.trainable]
    assert any(float(np.abs(_numpy(g)).max()) > 0 for g in grads)


def test_hand_written_sgd_loop_matches_fit(model, data):
    x, y = data
    start = functional.parameters(model)
    training = TrainingConfig.from_dict(
        {
            "epochs": 2,
            "batch_size": 16,
            "learning_rate": 0.1,
            "optimizer": {"name": "sgd"},
            "shuffle": False,
            "validation_split": 0.0,
            "early_stopping_patience": 0,
            "verbose": 0,
        },
        "training",
    )
    fit(model, x, y, config=training, loss="categorical_crossentropy")
    fitted = [_numpy(v) for v in model.trainable_variables]
    functional.set_parameters(model, start)
    params, _ = _hand_loop(model, functional.optimizer("sgd", learning_rate=0.1), x, y)
    for mine, theirs in zip(params.trainable, fitted):
        np.testing.assert_allclose(_numpy(mine), theirs, atol=1e-5)


def test_compile_gives_the_models_outputs(model, data):
    x, _ = data
    # torch.compile takes about a minute on a CPU: the torch test runs the plain call.
    forward = functional.compile(model, input_shapes=(16, 12), jit=BACKEND != "torch")
    outputs = forward(functional.parameters(model), x[:16])
    assert forward.backend == BACKEND
    np.testing.assert_allclose(_numpy(outputs), _numpy(model(x[:16])), atol=1e-5)


def test_compile_builds_an_unbuilt_model_from_input_shapes():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ModelError, match="not built"):
        functional.parameters(model)
    forward = functional.compile(model, input_shapes=(2, 4), jit=False)
    assert tuple(forward(functional.parameters(model), np.ones((2, 4), "float32")).shape) == (2, 3)


def test_compile_for_another_backend_names_kerass_backend(model):
    other = next(name for name in functional.BACKENDS if name != BACKEND)
    with pytest.raises(BackendNotSupportedError, match=f"KERAS_BACKEND={other}"):
        functional.compile(model, backend=other)


class _HandWrittenSGD:
    """An optax-style GradientTransformation (init/update), written out: optax itself is optional."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def init(self, params):
        return ()

    def update(self, grads, state, params=None):
        return [-self.learning_rate * g for g in grads], state


@pytest.mark.skipif(BACKEND != "jax", reason="optax transformations update JAX arrays")
def test_optax_style_transformation_steps_like_keras_sgd(data):
    x, y = data
    models = [build_model(SEED_MLP, (12,)) for _ in range(2)]
    functional.set_parameters(models[1], functional.parameters(models[0]))
    keras_params, _ = _hand_loop(models[0], functional.optimizer("sgd", 0.1), x, y, epochs=1)
    optax_params, _ = _hand_loop(models[1], _HandWrittenSGD(0.1), x, y, epochs=1)
    for mine, theirs in zip(optax_params.trainable, keras_params.trainable):
        np.testing.assert_allclose(_numpy(mine), _numpy(theirs), atol=1e-6)


@pytest.mark.skipif(BACKEND != "jax", reason="checks the missing-optax message on JAX")
def test_optax_library_without_optax_says_how_to_get_it():
    try:
        import optax  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install optax"):
            functional.optimizer("adam", library="optax")
    else:
        assert callable(functional.optimizer("adam", library="optax").update)


@pytest.mark.skipif(BACKEND != "torch", reason="torch.optim updates torch tensors")
def test_torch_optim_steps_like_keras_sgd(data):
    x, y = data
    models = [build_model(SEED_MLP, (12,)) for _ in range(2)]
    functional.set_parameters(models[1], functional.parameters(models[0]))
    keras_params, _ = _hand_loop(models[0], functional.optimizer("sgd", 0.1), x, y, epochs=1)
    params = functional.parameters(models[1])
    opt = functional.optimizer("sgd", 0.1, library="torch", params=params)
    step = functional.value_and_grad(models[1], "categorical_crossentropy", jit=True)
    for start in (0, 16):
        _, grads, _, params = step(params, x[start : start + 16], y[start : start + 16])
        params, _ = functional.apply_updates(opt, params, grads)
    for mine, theirs in zip(params.trainable, keras_params.trainable):
        np.testing.assert_allclose(_numpy(mine), _numpy(theirs), atol=1e-6)


@pytest.mark.skipif(BACKEND != "torch", reason="checks torch.optim over other tensors")
def test_torch_optim_over_other_tensors_is_refused(model, data):
    x, y = data
    params = functional.parameters(model)
    opt = functional.optimizer("sgd", 0.1, library="torch", params=functional.parameters(model))
    _, grads, _, params = functional.value_and_grad(model, "mse")(params, x, y)
    with pytest.raises(ConfigError, match="does not hold params.trainable"):
        functional.apply_updates(opt, params, grads)


@pytest.mark.skipif(BACKEND == "torch", reason="off torch, torch.optim is refused")
def test_torch_library_off_torch_names_the_backend_to_use(model):
    with pytest.raises(BackendNotSupportedError, match="KERAS_BACKEND=torch"):
        functional.optimizer("sgd", library="torch", params=functional.parameters(model))


@pytest.mark.skipif(BACKEND == "jax", reason="off JAX, optax is refused")
def test_optax_style_update_off_jax_names_the_backend_to_use(model, data):
    x, y = data
    _, grads, _, params = functional.value_and_grad(model, "mse")(
        functional.parameters(model), x, y
    )
    with pytest.raises(BackendNotSupportedError, match="KERAS_BACKEND=jax"):
        functional.apply_updates(_HandWrittenSGD(0.1), params, grads, state=())
