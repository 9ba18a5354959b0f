"""Tests of `python export.py` (srgan_tf/cli/export.py), run as a user runs it."""

import dataclasses
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from srgan_tf import loading, serving
from srgan_tf.config import Recipe
from tests.conftest import REPO, write_images
from tests.test_serving import _tree_digest, keras_unit, lively_generator, run_quiet


def write_run_dir(run_dir, generator, recipe, step=2):
    """Writes RUN/init the way the trainer does (config.json + CheckpointManager checkpoint)."""
    stage_dir = run_dir / "init"
    stage_dir.mkdir(parents=True)
    (stage_dir / loading.CONFIG_FILE).write_text(
        json.dumps({"recipe": dataclasses.asdict(recipe)}), encoding="utf-8")
    checkpoint = tf.train.Checkpoint(generator=generator, step=tf.Variable(step, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(stage_dir), max_to_keep=1).save()


def export_cli(*args):
    return run_quiet([sys.executable, str(REPO / "export.py"), *args], cwd=REPO)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny run directory with an init checkpoint; returns (path, generator)."""
    generator = lively_generator(seed=5)
    path = tmp_path_factory.mktemp("run")
    write_run_dir(path, generator, Recipe(num_feat=8, num_block=1, upsample_feat=32))
    return path, generator


@pytest.mark.slow
def test_export_from_checkpoint_dir_then_from_keras_file(run_dir, tmp_path):
    run, generator = run_dir
    export_dir = tmp_path / "models" / "srgan"
    result = export_cli("--checkpoint_dir", str(run), "--export_dir", str(export_dir),
                        "--format", "savedmodel,keras,tflite", "--warmup", "--tile_size", "20")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "as TF Serving loads it: both signatures match" in result.stderr  # checked by default
    first = export_dir / "1"
    assert result.stdout.strip().splitlines()[-1] == str(first)
    assert {"saved_model.pb", "variables", serving.KERAS_FILE, serving.TFLITE_FILE} <= set(
        os.listdir(first))
    assert (first / serving.WARMUP_FILE).is_file()

    image_u8 = serving.sample_image(30, 26, seed=7)  # two tiles of 20 LR pixels each way
    sr = tf.saved_model.load(str(first)).signatures["serving_default"](
        images=tf.constant(image_u8[np.newaxis] / 255.0, tf.float32))["sr_images"].numpy()
    assert np.abs(sr[0] - keras_unit(generator, image_u8)).max() < 1e-4
    keras_copy = loading.load_generator(str(first / serving.KERAS_FILE))
    assert np.abs(keras_unit(keras_copy, image_u8) - keras_unit(generator, image_u8)).max() < 1e-6

    before = _tree_digest(first)
    result = export_cli("--model", str(first / serving.KERAS_FILE), "--export_dir",
                        str(export_dir), "--output_format", "jpeg", "--jpeg_quality", "80")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(export_dir / "2")
    assert _tree_digest(first) == before
    assert sorted(os.listdir(export_dir)) == ["1", "2"]

    result = export_cli("--model", str(first / serving.KERAS_FILE), "--export_dir",
                        str(export_dir), "--version", "1")
    assert result.returncode == 2
    assert f"error: {first} already exists: versions are never overwritten" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--export_dir", "out"], "error: give exactly one of --checkpoint_dir or --model"),
    (["--model", "g.keras"], "error: flag --export_dir=None: Flag --export_dir must have a value"),
    (["--model", "g.keras", "--export_dir", "out", "--format", "onnx"],
     "--format must be a comma-separated list of savedmodel, keras, tflite, got 'onnx'"),
    (["--model", "missing.keras", "--export_dir", "out"],
     "error: missing.keras is neither a .keras file nor a run directory"),
])
def test_usage_errors_exit_2_with_one_line(args, message, tmp_path):
    result = export_cli(*[str(tmp_path / a) if a in ("out", "g.keras") else a for a in args])
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_nocheck_max_input_pixels_model_name_and_evaluate_on_the_export(run_dir, tmp_path):
    run, generator = run_dir
    export_dir = tmp_path / "srgan"
    result = export_cli("--checkpoint_dir", str(run), "--export_dir", str(export_dir),
                        "--nocheck", "--max_input_pixels", "900", "--model_name", "upscaler",
                        "--warmup", "--tile_size", "20")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "as TF Serving loads it" not in result.stderr  # --nocheck: the check did not run
    version = export_dir / "1"
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    image_u8 = serving.sample_image(30, 30, seed=3)  # exactly 900 pixels: accepted
    sr = signature(images=tf.constant(image_u8[np.newaxis] / 255.0, tf.float32))["sr_images"]
    assert np.abs(sr.numpy()[0] - keras_unit(generator, image_u8)).max() < 1e-4
    with pytest.raises(tf.errors.InvalidArgumentError, match="--max_input_pixels"):
        signature(images=tf.zeros([1, 30, 31, 3]))
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(version / serving.WARMUP_FILE))]
    assert len(records) == 2 and all(b"\n\x08upscaler" in r for r in records)  # ModelSpec.name

    # evaluate reads the export like a .keras model and scores it the same.
    hr_dir = tmp_path / "Tiny"
    write_images(hr_dir, [(48, 40), (36, 52)])
    scores = {}
    for name, model in (("export", version), ("keras", run)):
        out = tmp_path / f"{name}.json"
        flag = "--model" if name == "export" else "--checkpoint_dir"
        result = run_quiet([sys.executable, "-m", "srgan_tf.evaluate", flag, str(model),
                            "--hr_dir", str(hr_dir), "--output_json", str(out)], cwd=REPO)
        assert result.returncode == 0, result.stderr[-3000:]
        scores[name] = json.loads(out.read_text())["Tiny"]
    assert scores["export"]["num_images"] == 2
    for key in ("psnr_y", "ssim_y", "psnr_rgb"):
        assert scores["export"][key] == pytest.approx(scores["keras"][key], abs=0.02), key
