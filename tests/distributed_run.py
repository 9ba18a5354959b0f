"""Training runs for tests/test_distribute.py, each in a fresh process (TensorFlow's logical devices
and MultiWorkerMirroredStrategy must be set up before TensorFlow initialises its devices).

  python -m tests.distributed_run mirrored HR_DIR OUT STEPS
      Splits the CPU into 2 logical devices, then trains stage init and stage gan for STEPS steps
      each, once with the default strategy into OUT/default and once with MirroredStrategy over
      both devices into OUT/mirrored, with the same global batch, seed and data. Saves the HR
      batches of the first 2 distributed steps, replica after replica, to OUT/batches.npy.
  python -m tests.distributed_run alternating HR_DIR OUT STEPS
      Splits the CPU into 2 logical devices and runs STEPS alternating gan steps of a mirrored
      Trainer and of `reference_gan_step` (one device, the same global batches and initial
      weights); saves both runs' weights and losses to OUT/alternating.npz.
  python -m tests.distributed_run worker HR_DIR RUN STEPS [BATCHES]
      One worker of the cluster in TF_CONFIG: trains stage init, then stage gan, to STEPS steps
      each under MultiWorkerMirroredStrategy, and prints one line "steps <init> <gan>". With
      BATCHES, first saves there the HR batches of this worker's first 2 distributed steps.
  python -m tests.distributed_run xla HR_DIR OUT STEPS
      Splits the CPU into 2 logical devices and tries --jit_compile under MirroredStrategy over
      both (prints the error), then trains stage init for STEPS steps with --jit_compile under
      MirroredStrategy over /cpu:0 alone into OUT.
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from srgan_tf import distribute, trainer
from srgan_tf.config import Recipe, TrainConfig

GLOBAL_BATCH = 4  # 2 per replica with 2 replicas


# The 2-worker cluster test checks sharding, chief-only writes and resume across workers with the
# shared update; the alternating update's multi-replica equality is checked on 2 mirrored CPUs
# (test_mirrored_alternating_step_equals_two_plain_tape_steps, test_distribute.py).
CLUSTER_GAN_UPDATE = "shared"


def tiny_config(hr_dir, run_dir, stage, steps, gan_update="alternating", **kwargs):
    """The tiny recipe of tests/conftest.py, with a global batch of 4."""
    recipe = Recipe(num_feat=8, num_block=1, upsample_feat=32, disc_feat=4, crop_size=32,
                    batch_size=GLOBAL_BATCH, vgg_input_size=32, gan_update=gan_update)
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


def reference_gan_step(generator, discriminator, vgg, recipe, g_opt, d_opt, lr, hr):
    """One alternating stage-gan update written plainly: a GradientTape step of D, then one of G.

    Every network runs in training mode, as in TensorLayer's main.py. Returns the losses as
    a dict of floats (d_loss, g_loss).
    """
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    sr = generator(lr, training=True)
    with tf.GradientTape() as tape:
        real, fake = discriminator(hr, training=True), discriminator(sr, training=True)
        d_loss = bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake)
    d_opt.apply(tape.gradient(d_loss, discriminator.trainable_variables),
                discriminator.trainable_variables)
    with tf.GradientTape() as tape:
        sr = generator(lr, training=True)
        fake = discriminator(sr, training=True)
        g_loss = (recipe.pixel_weight * tf.reduce_mean(tf.square(sr - hr))
                  + recipe.perceptual_weight * tf.reduce_mean(tf.square(vgg(sr) - vgg(hr)))
                  + recipe.adversarial_weight * bce(tf.ones_like(fake), fake))
    g_opt.apply(tape.gradient(g_loss, generator.trainable_variables),
                generator.trainable_variables)
    return {"d_loss": float(d_loss), "g_loss": float(g_loss)}


def alternating_against_reference(t, batches):
    """Runs `t`'s compiled gan step and `reference_gan_step` (on one device, from copies of t's
    initial weights) on the same global `batches` of (lr, hr).

    Returns:
      dict of arrays: "trainer/<i>" and "reference/<i>" weights (G then D, trainable and BN
      statistics), "trainer_losses" and "reference_losses" [steps, 2] (d_loss, g_loss).
    """
    recipe, crop = t.recipe, t.recipe.crop_size
    generator, discriminator = trainer.build_generator(recipe), trainer.build_discriminator(recipe)
    generator(tf.zeros([1, crop // 4, crop // 4, 3]))
    discriminator(tf.zeros([1, crop, crop, 3]))
    generator.set_weights(t.generator.get_weights())
    discriminator.set_weights(t.discriminator.get_weights())
    g_opt, d_opt = (keras.optimizers.Adam(recipe.learning_rate, beta_1=recipe.beta_1)
                    for _ in range(2))
    step = t.step_function()
    lrs, hrs = batches
    flat = tf.data.Dataset.from_tensor_slices((np.concatenate(lrs), np.concatenate(hrs)))
    dataset = t.strategy.experimental_distribute_dataset(flat.batch(len(lrs[0])))
    out = {"trainer_losses": [], "reference_losses": []}
    for lr, hr, distributed in zip(lrs, hrs, dataset):
        logs = step(*distributed)
        out["trainer_losses"].append([float(logs["d_loss"]), float(logs["g_loss"])])
        ref = reference_gan_step(generator, discriminator, t.vgg, recipe, g_opt, d_opt, lr, hr)
        out["reference_losses"].append([ref["d_loss"], ref["g_loss"]])
    for name, models in (("trainer", (t.generator, t.discriminator)),
                         ("reference", (generator, discriminator))):
        weights = [w for m in models for w in m.get_weights()]
        out.update({f"{name}/{i}": w for i, w in enumerate(weights)})
    return {k: np.asarray(v) for k, v in out.items()}


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


def reference_differences(result):
    """Returns (largest relative loss difference, largest and mean absolute weight difference)
    between the trainer and the reference of an `alternating_against_reference` result."""
    losses = np.abs(result["trainer_losses"] - result["reference_losses"])
    count = len([k for k in result if k.startswith("trainer/")])
    diffs = np.concatenate([np.abs(result[f"trainer/{i}"] - result[f"reference/{i}"]).ravel()
                            for i in range(count)])
    return float((losses / np.abs(result["reference_losses"])).max()), float(diffs.max()), \
        float(diffs.mean())


def _two_cpu_mirrored():
    """Splits the CPU into 2 logical devices; returns a MirroredStrategy over both."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def main(mode, hr_dir, out, steps, batches=None):
    steps = int(steps)
    if mode == "mirrored":
        mirrored = _two_cpu_mirrored()
        os.makedirs(out, exist_ok=True)
        save_local_batches(hr_dir, mirrored, f"{out}/batches.npy")
        train_both_stages(hr_dir, f"{out}/default", steps, tf.distribute.get_strategy())
        train_both_stages(hr_dir, f"{out}/mirrored", steps, mirrored, strategy="mirrored",
                          devices=("/cpu:0", "/cpu:1"))
    elif mode == "alternating":
        mirrored = _two_cpu_mirrored()
        keras.utils.set_random_seed(0)
        t = trainer.Trainer(tiny_config(hr_dir, f"{out}/run", "gan", steps, strategy="mirrored",
                                        devices=("/cpu:0", "/cpu:1")), strategy=mirrored)
        pairs = list(t.data.dataset().take(steps))
        batches = ([lr.numpy() for lr, _ in pairs], [hr.numpy() for _, hr in pairs])
        np.savez(f"{out}/alternating.npz", **alternating_against_reference(t, batches))
    elif mode == "xla":
        config = tiny_config(hr_dir, out, "init", steps, strategy="mirrored", jit_compile=True)
        try:
            trainer.Trainer(config, strategy=_two_cpu_mirrored())
        except ValueError as e:
            print("error:", e, flush=True)
        trainer.Trainer(config, strategy=tf.distribute.MirroredStrategy(["/cpu:0"])).train()
    elif mode == "worker":
        strategy = distribute.make_strategy(tiny_config(hr_dir, out, "init", steps,
                                                        strategy="multi_worker"))
        if batches:
            save_local_batches(hr_dir, strategy, batches)
        done = train_both_stages(hr_dir, out, steps, strategy, strategy="multi_worker",
                                 gan_update=CLUSTER_GAN_UPDATE)
        print("steps", *done, flush=True)
    else:
        raise ValueError(f"mode must be mirrored, alternating or worker, got {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
