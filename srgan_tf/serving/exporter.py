"""`export`: one checked TF Serving version directory, assembled aside and renamed into place.

The check runs the SavedModel as TF Serving does (`run_like_tf_serving`) and compares both
signatures with the Keras generator.
"""

import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from srgan_tf.imaging import signed_to_unit, uint8_to_signed
from srgan_tf.serving.module import (BYTES_INPUT, BYTES_OUTPUT, FLOAT_INPUT, FLOAT_OUTPUT,
                                     SIGNATURE_BYTES, SIGNATURE_FLOAT, ServingConfig,
                                     SuperResolutionModule)
from srgan_tf.serving.tflite import TFLITE_FILE, _convert_tflite, check_tflite
from srgan_tf.serving.warmup import sample_image, write_warmup_requests

# --format values; the SavedModel is always written.
EXTRA_FORMATS = ("savedmodel", "keras", "tflite")
KERAS_FILE = "generator.keras"
CHECK_TOLERANCE = 1e-4  # max abs difference, in [0, 1], between an export and the Keras generator


def next_version(export_dir):
    """Returns 1 + the highest integer-named subdirectory of `export_dir` (1 if none)."""
    versions = [int(name) for name in _listdir(export_dir)
                if re.fullmatch(r"[0-9]+", name) and os.path.isdir(os.path.join(export_dir, name))]
    return max(versions, default=0) + 1


def _listdir(path):
    return os.listdir(path) if os.path.isdir(path) else []


def run_like_tf_serving(path, requests):
    """Runs signatures of a SavedModel as TF Serving does: TF1 session, restore op, tensor names.

    Args:
      path: a SavedModel directory.
      requests: {signature name: {input name: numpy array}}.
    Returns:
      {signature name: {output name: numpy array}}.
    """
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, [tf.saved_model.SERVING], path)
        results = {}
        for name, inputs in requests.items():
            signature = meta_graph.signature_def[name]
            feeds = {signature.inputs[key].name: value for key, value in inputs.items()}
            fetches = {key: info.name for key, info in signature.outputs.items()}
            results[name] = session.run(fetches, feeds)
        return results


def check_saved_model(path, generator, config):
    """Runs both signatures of the SavedModel at `path` as TF Serving would and compares with Keras.

    Raises:
      ValueError: when an output differs from the Keras generator's beyond CHECK_TOLERANCE (float)
        or one uint8 level (bytes), or has the wrong shape.
    """
    image_u8 = sample_image(24, 20)
    expected = signed_to_unit(generator(uint8_to_signed(image_u8[np.newaxis]), training=False))
    expected = np.clip(expected.numpy(), 0.0, 1.0)
    results = run_like_tf_serving(path, {
        SIGNATURE_FLOAT: {FLOAT_INPUT: image_u8[np.newaxis].astype(np.float32) / 255.0},
        SIGNATURE_BYTES: {BYTES_INPUT: np.array([tf.io.encode_png(image_u8).numpy()], object)},
    })
    diff = float(np.max(np.abs(results[SIGNATURE_FLOAT][FLOAT_OUTPUT] - expected)))
    if diff > CHECK_TOLERANCE:
        raise ValueError(f"{path}: {SIGNATURE_FLOAT} differs from the Keras generator by "
                         f"{diff:.2e}")
    encoded = results[SIGNATURE_BYTES][BYTES_OUTPUT][0]
    decoded = tf.io.decode_image(encoded, channels=3).numpy().astype(np.int32)
    if decoded.shape != expected.shape[1:]:
        raise ValueError(f"{path}: {SIGNATURE_BYTES} returned shape {decoded.shape}, "
                         f"expected {expected.shape[1:]}")
    if config.output_format == "png":
        levels = int(np.max(np.abs(decoded - np.round(expected[0] * 255.0))))
        if levels > 1:
            raise ValueError(f"{path}: {SIGNATURE_BYTES} differs from the Keras generator by "
                             f"{levels}/255")
    logging.info("checked %s as TF Serving loads it: both signatures match the Keras generator "
                 "(float diff %.1e)", path, diff)


def export(generator, export_dir, version=None, config=ServingConfig(), formats=("savedmodel",),
           warmup=False, model_name="srgan", tflite_input_size=None, check=True):
    """Exports `generator` as TF Serving version `export_dir`/<version>, never overwriting one.

    The version directory holds the SavedModel and, on request, `generator.keras`,
    `generator.tflite` and `assets.extra/tf_serving_warmup_requests`. It is assembled in a hidden
    temporary directory of `export_dir` and renamed into place once complete (and checked).

    Args:
      generator: keras.Model, float32 [B, H, W, 3] in [-1, 1] -> [B, 4H, 4W, 3] in [-1, 1].
      export_dir: the model base path TF Serving serves (created if missing).
      version: positive int, or None for 1 + the highest existing version.
      config: ServingConfig of the exported graph.
      formats: subset of EXTRA_FORMATS; the SavedModel is always written.
      warmup: write TF Serving warm-up requests.
      model_name: model name used in the warm-up requests.
      tflite_input_size: None for a TFLite model with dynamic H, W; an int for a fixed square input.
      check: load the SavedModel (and TFLite model) back and compare with `generator` first.
    Returns:
      str, the path of the new version directory.
    Raises:
      ValueError: bad arguments, an existing version, or a failed check.
    """
    config.validate()
    unknown = sorted(set(formats) - set(EXTRA_FORMATS))
    if unknown:
        raise ValueError(f"--format must be a list of {', '.join(EXTRA_FORMATS)}, got {unknown}")
    if tflite_input_size is not None and tflite_input_size <= 0:
        raise ValueError(f"--tflite_input_size must be positive, got {tflite_input_size}")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise ValueError(f"--export_dir {export_dir} exists and is not a directory")
    os.makedirs(export_dir, exist_ok=True)
    if version is None:
        version = next_version(export_dir)
    if version <= 0:
        raise ValueError(f"--version must be a positive integer, got {version}")
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise ValueError(f"{final} already exists: versions are never overwritten "
                         f"(omit --version to write version {next_version(export_dir)})")
    module = SuperResolutionModule(generator, config)
    logging.info("exporting version %d to %s: %s, tile margin %d", version, final, config,
                 module.margin)
    temp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        tf.saved_model.save(module, temp, signatures=module.signatures())
        if warmup:
            write_warmup_requests(temp, model_name)
        if check:
            check_saved_model(temp, generator, config)
        if "keras" in formats:
            keras_path = os.path.join(temp, KERAS_FILE)
            generator.save(keras_path)
            if check:
                _check_keras(keras_path, generator)
        if "tflite" in formats:
            content = _convert_tflite(generator, tflite_input_size)
            if check:
                diff = check_tflite(content, generator, tflite_input_size)
                logging.info("TFLite model runs in the interpreter, max diff %.1e", diff)
            with open(os.path.join(temp, TFLITE_FILE), "wb") as f:
                f.write(content)
        os.chmod(temp, 0o755)  # mkdtemp makes it private; the server may run as another user
        try:
            os.rename(temp, final)
        except OSError:
            if os.path.exists(final):
                raise ValueError(f"{final} was written by another export meanwhile; "
                                 "run again to write the next version") from None
            raise
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    logging.info("exported %s", final)
    return final


def _check_keras(path, generator):
    """Reloads the .keras file at `path` and compares it with `generator` on a sample image."""
    reloaded = keras.models.load_model(path, compile=False)
    x = uint8_to_signed(sample_image(20, 20)[np.newaxis])
    diff = float(np.max(np.abs(reloaded(x, training=False) - generator(x, training=False))))
    if diff > 1e-6:
        raise ValueError(f"{path}: reloaded generator differs by {diff:.2e}")
