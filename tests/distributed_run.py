"""Training runs for tests/test_distribute.py, each in a fresh process (TensorFlow's logical devices
and MultiWorkerMirroredStrategy must be set up before TensorFlow initialises its devices).

  python -m tests.distributed_run mirrored HR_DIR OUT STEPS
      Splits the CPU into 2 logical devices, then trains stage init and stage gan for STEPS steps
      each, once with the default strategy into OUT/default and once with MirroredStrategy over
      both devices into OUT/mirrored, with the same global batch, seed and data. Saves the HR
      batches of the first 2 distributed steps, replica after replica, to OUT/batches.npy.
  python -m tests.distributed_run worker HR_DIR RUN STEPS [BATCHES]
      One worker of the cluster in TF_CONFIG: trains stage init, then stage gan, to STEPS steps
      each under MultiWorkerMirroredStrategy, and prints one line "steps <init> <gan>". With
      BATCHES, first saves there the HR batches of this worker's first 2 distributed steps.
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from srgan_tf import distribute, trainer
from srgan_tf.config import Recipe, TrainConfig

GLOBAL_BATCH = 4  # 2 per replica with 2 replicas


def tiny_config(hr_dir, run_dir, stage, steps, **kwargs):
    """The tiny recipe of tests/conftest.py, with a global batch of 4."""
    recipe = Recipe(num_feat=8, num_block=1, upsample_feat=32, disc_feat=4, crop_size=32,
                    batch_size=GLOBAL_BATCH, vgg_input_size=32)
    kwargs = {"crops_per_image": 1, "augment": "flip_rot90", **kwargs}  # the stream tolerances fit
    return TrainConfig(stage=stage, checkpoint_dir=run_dir, hr_dir=hr_dir, recipe=recipe,
                       steps=steps, vgg_weights="none", save_every=2, summary_every=1,
                       image_every=2, from_scratch=True, **kwargs).validate()


def train_both_stages(hr_dir, run_dir, steps, distribution, **kwargs):
    """Trains stage init then stage gan to `steps` steps under the tf.distribute.Strategy
    `distribution`; returns the two final steps."""
    done = []
    for stage in ("init", "gan"):
        keras.utils.set_random_seed(0)
        t = trainer.Trainer(tiny_config(hr_dir, run_dir, stage, steps, **kwargs),
                            strategy=distribution)
        t.train()
        done.append(int(t.step.numpy()))
    return done


def save_local_batches(hr_dir, distribution, path, count=2):
    """Saves the HR batches this process's replicas get in the first `count` steps:
    float32 [count, local replicas x per-replica batch, crop, crop, 3]."""
    stream = trainer.prepare_data(tiny_config(hr_dir, "unused", "init", 1), scan_cache=False)
    iterator = iter(stream.distributed_dataset(distribution))
    steps = []
    for _ in range(count):
        _, hr = next(iterator)
        steps.append(np.concatenate([t.numpy() for t in
                                     distribution.experimental_local_results(hr)]))
    np.save(path, np.stack(steps))


def main(mode, hr_dir, out, steps, batches=None):
    steps = int(steps)
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        os.makedirs(out, exist_ok=True)
        save_local_batches(hr_dir, mirrored, f"{out}/batches.npy")
        train_both_stages(hr_dir, f"{out}/default", steps, tf.distribute.get_strategy())
        train_both_stages(hr_dir, f"{out}/mirrored", steps, mirrored, strategy="mirrored",
                          devices=("/cpu:0", "/cpu:1"))
    elif mode == "worker":
        strategy = distribute.make_strategy(tiny_config(hr_dir, out, "init", steps,
                                                        strategy="multi_worker"))
        if batches:
            save_local_batches(hr_dir, strategy, batches)
        done = train_both_stages(hr_dir, out, steps, strategy, strategy="multi_worker")
        print("steps", *done, flush=True)
    else:
        raise ValueError(f"mode must be mirrored or worker, got {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
