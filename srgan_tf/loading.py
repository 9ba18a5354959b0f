"""Loading a trained generator from a training run directory or a `.keras` file."""

import json
import os

import keras
import tensorflow as tf
from absl import logging

from srgan_tf.config import SHIPPED_MODELS, STAGES, Recipe
from srgan_tf.models import Generator

CONFIG_FILE = "config.json"
# Generators trained by the reference run (docs/results.md), shipped in the repository's weights/.
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
DEFAULT_MODEL = "srresnet"


def resolve_model(model):
    """Maps a shipped model name (SHIPPED_MODELS) to its file; other values pass through.

    Raises:
      FileNotFoundError: when a shipped model's file is missing (e.g. a package installed
        without the repository's weights/ folder).
    """
    if model not in SHIPPED_MODELS:
        return model
    path = os.path.join(WEIGHTS_DIR, SHIPPED_MODELS[model])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"shipped model {model!r} expects {path}, which is missing: use a "
                                "checkout of the repository (pip install -e .) or pass a .keras file")
    return path


# Constructor arguments that fix a network's variables; the rest (init, momentum) only matter while
# training or are the same for every file.
_ARCHITECTURE_KEYS = ("preset", "num_feat", "num_block", "upsample_feat", "disc_feat")


def initial_weights(model, source, flag):
    """Copies the weights of a saved network into `model`, a built network of the same architecture.

    Args:
      model: a built Generator or Discriminator.
      source: a `.keras` file of the same class, or a shipped model name ("srresnet", "srgan").
      flag: the flag that named `source`, for error messages (e.g. "--init_from").
    Returns:
      the path the weights came from.
    Raises:
      FileNotFoundError / ValueError: naming the flag and the file, when it is missing, not a
        .keras file, or of another architecture than `model`.
    """
    path = resolve_model(source)
    if not os.path.isfile(path) or not path.endswith(".keras"):
        raise FileNotFoundError(f"{flag} {source!r} is neither a shipped model "
                                f"({', '.join(SHIPPED_MODELS)}) nor a .keras file")
    saved = keras.models.load_model(path, compile=False)
    want, have = model.get_config(), saved.get_config()
    differs = [k for k in _ARCHITECTURE_KEYS if k in want and want[k] != have.get(k)]
    if type(saved) is not type(model) or differs:
        def describe(config):
            return ", ".join(f"{k} {config.get(k)}" for k in differs)
        raise ValueError(f"{flag} {path} is a {type(saved).__name__} ({describe(have)}) but this "
                         f"run trains a {type(model).__name__} ({describe(want)}): pick a file of "
                         "the run's --preset and sizes")
    for mine, theirs in zip(model.weights, saved.weights):
        if tuple(mine.shape) != tuple(theirs.shape):  # a discriminator's dense layer: the crop
            raise ValueError(f"{flag} {path}: {theirs.path} has shape {tuple(theirs.shape)}, this "
                             f"run's {tuple(mine.shape)}: train with the --crop_size it was "
                             "trained with")
    model.set_weights(saved.get_weights())
    return path


def build_generator(recipe):
    """Returns an unbuilt Generator with the architecture of `recipe` (a config.Recipe)."""
    return Generator(preset=recipe.preset, num_feat=recipe.num_feat, num_block=recipe.num_block,
                     upsample_feat=recipe.upsample_feat, init_stddev=recipe.init_stddev,
                     bn_momentum=recipe.bn_momentum, bn_epsilon=recipe.bn_epsilon,
                     icnr=recipe.icnr)


def read_recipe(stage_dir):
    """Returns the config.Recipe saved in `stage_dir`/config.json by the trainer."""
    path = os.path.join(stage_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: is {stage_dir} a srgan_tf training stage?")
    with open(path, encoding="utf-8") as f:
        return Recipe(**json.load(f)["recipe"])


def latest_stage(run_dir):
    """Returns (stage, stage_dir) of the most advanced stage with a checkpoint in `run_dir`."""
    for stage in reversed(STAGES):
        stage_dir = os.path.join(run_dir, stage)
        if tf.train.latest_checkpoint(stage_dir):
            return stage, stage_dir
    raise FileNotFoundError(f"no checkpoint under {run_dir}/init or {run_dir}/gan")


def restore_generator(stage_dir):
    """Builds the generator of a training stage and restores its latest checkpoint.

    Returns:
      (Generator, step) with weights of the latest checkpoint in `stage_dir`.
    """
    path = tf.train.latest_checkpoint(stage_dir)
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {stage_dir}")
    generator = build_generator(read_recipe(stage_dir))
    generator(tf.zeros([1, 8, 8, 3]))
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(generator=generator, step=step).restore(path).expect_partial()
    logging.info("restored generator of step %d from %s", int(step.numpy()), path)
    return generator, int(step.numpy())


def load_generator(source):
    """Loads a generator from a `.keras` file or from a training run directory (latest stage).

    Args:
      source: path of a `generator.keras` file, a run directory (`--checkpoint_dir`), or the name
        of a shipped model ("srresnet", "srgan").
    Returns:
      a keras.Model mapping float32 [B, H, W, 3] in [-1, 1] to [B, 4H, 4W, 3] in [-1, 1].
    """
    source = resolve_model(source)
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise ValueError(f"{source} is not a .keras file")
        return keras.models.load_model(source, compile=False)
    if not os.path.isdir(source):
        raise FileNotFoundError(f"{source} is neither a .keras file nor a run directory")
    _, stage_dir = latest_stage(source)
    return restore_generator(stage_dir)[0]
