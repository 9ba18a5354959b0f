"""Super-resolvers: uint8 in, uint8 x4 out, from a Keras generator, a SavedModel or bicubic.

A *super-resolver* is any callable `sr_fn(lr_u8) -> sr_u8` mapping uint8 [h, w, 3] to uint8
[4h, 4w, 3]. `load_resolver` also returns the LR context a tile needs (the receptive radius).
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from srgan_tf import errors
from srgan_tf.config import SCALE
from srgan_tf.imaging import (bicubic_upsample, signed_to_uint8, signed_to_unit, uint8_to_signed,
                              unit_to_signed)
from srgan_tf.serving.module import FLOAT_INPUT, FLOAT_OUTPUT, SIGNATURE_FLOAT, receptive_radius
from srgan_tf.upscale.tiling import DEFAULT_OVERLAP

RADIUS_LIMIT = 64  # largest receptive radius `measured_radius` looks for (LR pixels)
RADIUS_TOLERANCE = 1e-4  # output change in [-1, 1] units that counts as influence (1/80 of a level)


class SuperResolver:
    """A x4 model as a uint8 super-resolver: uint8 [h, w, 3] -> numpy uint8 [4h, 4w, 3].

    Args:
      signed_fn: float32 [1, h, w, 3] in [-1, 1] -> float [1, 4h, 4w, 3] nominally in [-1, 1];
        its output goes through `imaging.signed_to_uint8`, the one path to pixels.
      name: what the resolver is, for logs.
    """

    def __init__(self, signed_fn, name):
        self.signed_fn, self.name = signed_fn, name

    def __call__(self, lr_u8):
        sr = self.signed_fn(uint8_to_signed(np.asarray(lr_u8)[None]))
        return signed_to_uint8(sr)[0].numpy()


def keras_resolver(generator, name="generator"):
    """Wraps a Keras generator ([-1, 1] in and out) as a SuperResolver.

    BatchNorm runs in inference mode (training=False). Any H x W is accepted.

    Args:
      generator: keras.Model, float32 [B, H, W, 3] in [-1, 1] -> [B, 4H, 4W, 3] in [-1, 1].
    Returns:
      SuperResolver.
    """
    return SuperResolver(lambda x: generator(x, training=False), name)


def saved_model_resolver(path):
    """Loads a SavedModel written by export.py and wraps its `serving_default` signature.

    Args:
      path: SavedModel directory; `serving_default` takes `images` float32 [N, H, W, 3] in
        [0, 1] and returns `sr_images` float32 [N, 4H, 4W, 3] in [0, 1].
    Returns:
      SuperResolver (holding the loaded SavedModel).
    Raises:
      ValueError: naming the directory, when it is not such a SavedModel.
    """
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise ValueError(f"cannot load SavedModel {path}: {errors.first_line(e)}") from None
    serving = loaded.signatures.get(SIGNATURE_FLOAT)
    if serving is None or FLOAT_INPUT not in serving.structured_input_signature[1]:
        raise ValueError(f"SavedModel {path} has no {SIGNATURE_FLOAT} signature taking "
                         f"'{FLOAT_INPUT}'")
    logging.info("loaded SavedModel %s", path)

    def signed_fn(x):
        return unit_to_signed(serving(**{FLOAT_INPUT: signed_to_unit(x)})[FLOAT_OUTPUT])
    resolver = SuperResolver(signed_fn, path)
    resolver.saved_model = loaded  # keeps the variables alive as long as the resolver
    return resolver


def bicubic_resolver():
    """Returns the bicubic baseline as a SuperResolver (`imaging.bicubic_upsample`)."""
    return SuperResolver(bicubic_upsample, "bicubic")


def measured_radius(signed_fn, limit=RADIUS_LIMIT, seed=0):
    """Measures how far (LR pixels) a change of the input visibly moves a model's output.

    Runs the model on a random strip twice, changing every LR column from column `limit` + 1
    on, and finds the leftmost output column that moved by more than RADIUS_TOLERANCE. This is
    the effective radius of the model's weights; it never exceeds the architectural one, and
    is used for models whose architecture is unknown (SavedModels).

    Args:
      signed_fn: float32 [1, h, w, 3] in [-1, 1] -> float [1, 4h, 4w, 3] (SuperResolver.signed_fn).
      limit: the largest radius looked for.
      seed: seed of the random strip.
    Returns:
      int in [0, limit], in LR pixels.
    """
    rng = np.random.default_rng(seed)
    width = limit + 1 + 8
    strip = rng.uniform(-1, 1, [1, 12, width, 3]).astype(np.float32)
    changed = strip.copy()
    changed[:, :, limit + 1:] = rng.uniform(-1, 1, changed[:, :, limit + 1:].shape)
    diff = np.abs(np.asarray(signed_fn(tf.constant(changed)), np.float64)
                  - np.asarray(signed_fn(tf.constant(strip)), np.float64))
    moved = np.flatnonzero(diff.max(axis=(0, 1, 3)) > RADIUS_TOLERANCE)
    if moved.size == 0:
        return 0
    return min(limit, limit + 1 - int(moved[0]) // SCALE)


def load_resolver(checkpoint_dir=None, model=None, saved_model=None):
    """Loads a super-resolver from exactly one of a run directory, a model file or a SavedModel.

    Args:
      checkpoint_dir: training run directory (latest stage is used).
      model: path of a `.keras` file or of a SavedModel directory, or the name of a shipped
        model ("srresnet", "srgan": weights/srresnet_x4.keras, weights/srgan_x4.keras).
      saved_model: path of a SavedModel directory written by export.py.
    Returns:
      (resolver, radius): the SuperResolver and the LR context per side that makes its tiled
      output equal its whole-image output: the architectural radius of a srgan_tf Generator,
      else the larger of DEFAULT_OVERLAP and the measured radius.
    Raises:
      ValueError, FileNotFoundError: naming the flag and path.
    """
    from srgan_tf.loading import (  # pylint: disable=import-outside-toplevel
        load_generator, resolve_model)
    model = resolve_model(model) if model else model
    given = {k: v for k, v in (("checkpoint_dir", checkpoint_dir), ("model", model),
                               ("saved_model", saved_model)) if v}
    if len(given) != 1:
        raise ValueError("give exactly one of --checkpoint_dir, --model or --saved_model, got "
                         f"{', '.join('--' + k for k in given) or 'none'}")
    (flag, path), = given.items()
    if not os.path.exists(path):
        raise FileNotFoundError(f"--{flag} {path} does not exist")
    if flag == "saved_model" or (flag == "model" and os.path.isdir(path)):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ValueError(f"--{flag} {path} is not a SavedModel directory (no saved_model.pb)")
        resolver, radius = saved_model_resolver(path), None
    else:
        if flag == "checkpoint_dir" and not os.path.isdir(path):
            raise ValueError(f"--checkpoint_dir {path} is not a directory")
        try:
            generator = load_generator(path)
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f"--{flag}: {e}") from None
        resolver = keras_resolver(generator, path)
        try:
            radius = receptive_radius(generator)
        except ValueError:  # not a srgan_tf Generator: measure it
            radius = None
    if radius is None:
        radius = max(DEFAULT_OVERLAP, measured_radius(resolver.signed_fn))
        if radius >= RADIUS_LIMIT:
            logging.warning("%s: receptive radius >= %d LR pixels, tiles may not stitch exactly",
                            path, RADIUS_LIMIT)
    logging.info("loaded %s: tiles get %d LR pixels of context", path, radius)
    return resolver, radius
