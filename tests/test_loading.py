"""Loading generators: run directories, .keras files and the shipped models by name."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from srgan_tf import evaluate, loading, upscale
from tests.conftest import lively_generator, shared_dir


def test_shipped_names_resolve_to_the_weights_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "WEIGHTS_DIR", str(tmp_path))
    generator = lively_generator()
    generator.save(str(tmp_path / "srresnet_x4.keras"))
    assert loading.resolve_model("srresnet") == str(tmp_path / "srresnet_x4.keras")
    assert loading.resolve_model("my.keras") == "my.keras"
    x = tf.random.uniform([1, 6, 5, 3], -1, 1)
    np.testing.assert_array_equal(loading.load_generator("srresnet")(x).numpy(),
                                  generator(x).numpy())
    resolver, radius = upscale.load_resolver(model="srresnet")
    assert radius > 0 and resolver(np.zeros((4, 4, 3), np.uint8)).shape == (16, 16, 3)


def test_missing_shipped_weights_is_an_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="shipped model 'srgan' expects .*srgan_x4.keras"):
        loading.load_generator("srgan")


def test_shipped_models_are_in_the_repository():
    for name, filename in loading.SHIPPED_MODELS.items():
        path = loading.resolve_model(name)
        assert path.endswith(filename)
        generator = loading.load_generator(name)
        y = generator(tf.zeros([1, 8, 8, 3]))
        assert y.shape == (1, 32, 32, 3)


@pytest.mark.parametrize("name", sorted(loading.SHIPPED_MODELS))
def test_shipped_models_reproduce_their_published_scores(name):
    # weights/scores.json holds the float32 rows of docs/results.md ("The shipped files"), measured
    # with `python -m srgan_tf.evaluate --model NAME --artifacts`. Set5 is re-measured here.
    set5 = shared_dir("Set5")
    with open(os.path.join(loading.WEIGHTS_DIR, "scores.json"), encoding="utf-8") as f:
        published = json.load(f)[name]["Set5"]
    measured = evaluate.evaluate(upscale.keras_resolver(loading.load_generator(name)),
                                 [str(set5)], artifacts=True)["Set5"]
    for key, tolerance in (("psnr_y", 0.01), ("ssim_y", 1e-4), ("checkerboard", 0.01),
                           ("hf_ratio", 1e-3), ("color_shift", 0.01)):
        assert measured[key] == pytest.approx(published[key], abs=tolerance), key


@pytest.mark.slow
def test_srresnet_real_beats_srresnet_on_jpeg_compressed_input():
    # weights/scores.json "jpeg:50": the protocol's bicubic LR, then JPEG quality 50
    # (`python -m srgan_tf.evaluate --degradation jpeg:50`). Set5 is re-measured for both.
    set5 = shared_dir("Set5")
    with open(os.path.join(loading.WEIGHTS_DIR, "scores.json"), encoding="utf-8") as f:
        published = json.load(f)
    measured = {}
    for name in ("srresnet", "srresnet-real"):
        row = evaluate.evaluate(upscale.keras_resolver(loading.load_generator(name)), [str(set5)],
                                degradation=("jpeg", 50))["Set5"]
        for key, tolerance in (("psnr_y", 0.01), ("ssim_y", 1e-4)):
            assert row[key] == pytest.approx(published[name]["jpeg:50"]["Set5"][key],
                                             abs=tolerance), (name, key)
        measured[name] = row["psnr_y"]
    assert measured["srresnet-real"] > measured["srresnet"] + 0.5
