"""ONNX metadata encoding and read_onnx_metadata."""

import pytest

from keras_trainer.errors import ExportError
from keras_trainer.export import read_onnx_metadata
from keras_trainer.export.metadata import decode_metadata_props, encode_metadata_props

pytestmark = pytest.mark.one_backend  # no Keras code runs here


def test_metadata_round_trips_through_props():
    metadata = {"class_names": ["a", "b"], "normalization": {"mean": [0.5]}, "opset": 17}
    assert decode_metadata_props(encode_metadata_props(metadata)) == metadata


def test_props_that_are_not_json_stay_strings():
    assert decode_metadata_props({"author": "plain text"}) == {"author": "plain text"}


def test_nan_in_metadata_is_an_export_error():
    with pytest.raises(ExportError, match="stats"):
        encode_metadata_props({"stats": float("nan")})


def test_reading_metadata_of_missing_file_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        read_onnx_metadata(tmp_path / "absent.onnx")


def test_reading_metadata_of_corrupt_file_is_an_export_error(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"this is not a protobuf \xff\xfe")
    with pytest.raises(ExportError, match="not a valid ONNX model"):
        read_onnx_metadata(path)
