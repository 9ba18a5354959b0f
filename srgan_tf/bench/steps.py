"""The Trainer's own compiled init and gan steps, timed on a fixed random batch."""

import statistics
import tempfile

import keras
from absl import logging

from srgan_tf import trainer as trainer_lib
from srgan_tf.bench.ceilings import _Policy, _random, time_calls
from srgan_tf.bench.flops import train_step_flops
from srgan_tf.config import SCALE, TrainConfig


def build_step(config, stage, preset, checkpoint_dir, jit_compile=False, gan_update=None):
    """Builds a Trainer under the current policy, as `measure_step` times it.

    Returns:
      (trainer, its compiled train step, the fixed random (lr, hr) batch of `config`'s size).
    """
    batch, patch = config.batch_size, config.lr_patch
    train_config = TrainConfig(stage=stage, checkpoint_dir=checkpoint_dir,
                               hr_dir=config.resolved_hr_dir,
                               recipe=config.recipe(preset, gan_update),
                               vgg_weights="none", from_scratch=True, steps=1,
                               jit_compile=jit_compile)
    vgg = None
    if stage == "gan":  # random weights: no download, the same FLOPs as ImageNet's
        vgg = keras.applications.VGG19(include_top=False, weights=None,
                                       input_shape=(None, None, 3))
    trainer = trainer_lib.Trainer(train_config, vgg=vgg)
    lr = _random([batch, patch, patch, 3], seed=4)
    hr = _random([batch, SCALE * patch, SCALE * patch, 3], seed=5)
    return trainer, trainer.step_function(), (lr, hr)


def _time_step(config, stage, preset, checkpoint_dir, jit_compile=False, gan_update=None):
    """Builds the step (`build_step`) and times it.

    Returns:
      (seconds of the first call: tracing and compilation included, step times in s after
      `config.warmup` calls in all, FLOPs by network).
    """
    trainer, step, (lr, hr) = build_step(config, stage, preset, checkpoint_dir, jit_compile,
                                         gan_update)
    first = time_calls(lambda: step(lr, hr), 0, 1)[0]  # the first of the warm-up calls
    times = time_calls(lambda: step(lr, hr), max(config.warmup - 1, 0), config.repeats,
                       config.time_budget)
    return first, times, train_step_flops(trainer, config.batch_size, config.lr_patch)


def measure_step(config, stage, preset, policy, jit_compile=False, gan_update=None):
    """Times the Trainer's compiled train step of `stage` on a fixed random batch.

    Args:
      config: BenchConfig.
      stage: "init" or "gan".
      preset: a config.PRESETS name.
      policy: Keras dtype policy the models are built and run in.
      jit_compile: the Trainer's `--jit_compile` (XLA).
      gan_update: stage gan's update mode (config.GAN_UPDATES; default: the recipe's).
    Returns:
      dict: ms (median), min_ms, first_s (the first call, with tracing and compilation),
      patches_per_s, gflop (per step), gflops (achieved), flops (by network).
    """
    with _Policy(policy), tempfile.TemporaryDirectory() as tmp:
        # The models are freed on return.
        first, times, flops = _time_step(config, stage, preset, tmp, jit_compile, gan_update)
    seconds = statistics.median(times)
    result = {"ms": 1e3 * seconds, "min_ms": 1e3 * min(times), "first_s": first,
              "patches_per_s": config.batch_size / seconds, "gflop": flops["total"] / 1e9,
              "gflops": flops["total"] / seconds / 1e9, "flops": flops}
    logging.info("%s step %s %s%s%s: %.1f ms, %.1f GFLOP/s (first call %.1f s)", stage, preset,
                 policy, f" {gan_update}" if gan_update else "", " XLA" if jit_compile else "",
                 result["ms"], result["gflops"], first)
    return result
