"""The Trainer: builds or restores a stage, runs the training loop, logs, evaluates and saves.

Train steps are in `steps`, the early-stop errors, checkpoint saves and signals in `stopping`.
"""

import json
import math
import os
import shutil
import time

import keras
import tensorflow as tf
from absl import logging

from srgan_tf import data as data_lib
from srgan_tf import distribute, imaging
from srgan_tf import files as files_lib
from srgan_tf import loading
from srgan_tf.features import VGGFeatures
from srgan_tf.loading import CONFIG_FILE, build_generator
from srgan_tf.models import Discriminator
from srgan_tf.trainer.steps import GRADS_BAD, TrainSteps
from srgan_tf.trainer.stopping import _save, _SignalCatcher, Interrupted, NonFiniteLossError

GENERATOR_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"  # stage gan: for fine-tuning (--init_discriminator)
LOG_FILE = "log.jsonl"
SAMPLE_FILE = "sample_x4.png"
INPUT_WAIT = "input_wait"  # share of wall time spent waiting for the next batch (log key)
INPUT_WAIT_WARNING = 0.2  # input_wait above which training warns that it is input-bound
SCAN_CACHE_FILE = "scan_cache.json"  # per-file results of data.scan_images, in the run directory


def prepare_data(config, scan_cache=True):
    """Finds the usable training images of `config` and builds the stream.

    Args:
      config: a config.TrainConfig.
      scan_cache: keep the scan results in RUN/scan_cache.json; False on the workers of a cluster
        that are not the chief, so that one process only writes the run directory.
    Returns:
      data.TrainingData.
    Raises:
      ValueError / FileNotFoundError: when no image is usable, or `--store` can't serve the run.
    """
    recipe = config.recipe
    options = dict(seed=config.seed, augment=config.augment, cache=config.cache,
                   crops_per_image=config.crops_per_image, degradation=config.degradation)
    if config.store is not None:
        files, manifest = data_lib.store_files(config.store, recipe.crop_size)
        logging.info("training on the %d images of the store %s (made from %s; %d files skipped "
                     "then, listed in its manifest)", len(files), config.store,
                     manifest.get("source"), len(manifest.get("skipped", [])))
        return data_lib.TrainingData(files, recipe.crop_size, recipe.batch_size, **options)
    hr_dir = config.hr_dir
    if config.tfds is not None:
        hr_dir = data_lib.materialize_tfds(config.tfds, config.tfds_data_dir)
    paths = data_lib.list_images(hr_dir)
    cache_file = os.path.join(config.checkpoint_dir, SCAN_CACHE_FILE) if scan_cache else None
    files, skipped = data_lib.scan_images(paths, config.recipe.crop_size, cache_file)
    if not files:
        raise ValueError(f"no usable training images in {hr_dir} ({len(paths)} image files found, "
                         f"{len(skipped)} unreadable or smaller than --crop_size "
                         f"{config.recipe.crop_size})")
    logging.info("training on %d images from %s", len(files), hr_dir)
    return data_lib.TrainingData(files, recipe.crop_size, recipe.batch_size, **options)


def build_discriminator(recipe):
    """Returns an unbuilt Discriminator with the architecture of `recipe`."""
    return Discriminator(preset=recipe.preset, disc_feat=recipe.disc_feat,
                         init_stddev=recipe.init_stddev, bn_momentum=recipe.bn_momentum,
                         bn_epsilon=recipe.bn_epsilon, leaky_slope=recipe.leaky_slope)


def _adam(recipe, schedule):
    """Adam of the recipe; under the mixed_float16 policy, with dynamic loss scaling."""
    optimizer = keras.optimizers.Adam(learning_rate=schedule, beta_1=recipe.beta_1)
    if keras.mixed_precision.dtype_policy().compute_dtype == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


class Trainer(TrainSteps):
    """Trains one stage of SRGAN as described by a config.TrainConfig.

    Args:
      config: a validated config.TrainConfig.
      data: a data.TrainingData (default: built from the config's --hr_dir / --tfds).
      strategy: a tf.distribute.Strategy (default: built from `config.strategy`; "default" is
        the current strategy, i.e. one device).
      vgg: a prebuilt VGG19 keras model for the gan stage (default: loaded from config.vgg_weights).
      evaluator: optional function generator -> dict of float metrics (e.g. validation PSNR),
        called every `config.eval_every` steps and at the end; results go to TensorBoard
        ("val/<name>") and to RUN/<stage>/log.jsonl.
    """

    def __init__(self, config, data=None, strategy=None, vgg=None, evaluator=None):
        self.config, self.recipe = config, config.recipe
        self.evaluator = evaluator
        self.strategy = strategy or distribute.make_strategy(config)
        self.is_chief = distribute.is_chief(self.strategy)
        self.workers = distribute.worker_count(self.strategy)
        self._gather = distribute.replica_gatherer(self.strategy)  # used with several workers
        replicas = self.strategy.num_replicas_in_sync
        if config.jit_compile:
            distribute.check_jit_compile(self.strategy)
        if config.recipe.batch_size % replicas:
            raise ValueError(f"--batch_size {config.recipe.batch_size} must be a multiple of the "
                             f"{replicas} replicas of --strategy {config.strategy}")
        self.is_gan = config.stage == "gan"
        init_checkpoint = None
        if self.is_gan:  # checked before anything is written (the scan cache)
            init_checkpoint = tf.train.latest_checkpoint(os.path.join(config.checkpoint_dir, "init"))
            if init_checkpoint is None and not config.from_scratch and config.init_from is None \
                    and tf.train.latest_checkpoint(config.stage_dir) is None:
                raise FileNotFoundError(
                    f"--stage gan needs init weights, but {config.checkpoint_dir}/init has no "
                    "checkpoint: run --stage init first, or pass --init_from or --from_scratch")
        self.data = data or prepare_data(config, scan_cache=self.is_chief)
        self.steps_per_epoch = self.data.steps_per_epoch
        self.total_steps = config.total_steps(self.steps_per_epoch)
        recipe = self.recipe
        lr_side = recipe.crop_size // 4

        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            # Wall-clock seconds spent training this stage, over all runs (for --max_minutes).
            self.train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                             name="train_seconds")
            self.generator = build_generator(recipe)
            self.generator(tf.zeros([1, lr_side, lr_side, 3]))
            decay_steps = recipe.decay_step(self.steps_per_epoch)
            self.g_optimizer = _adam(recipe, self._schedule(decay_steps))
            self.g_optimizer.build(self.generator.trainable_variables)
            items = dict(step=self.step, train_seconds=self.train_seconds,
                         generator=self.generator, g_optimizer=self.g_optimizer)
            if self.is_gan:
                self.discriminator = build_discriminator(recipe)
                self.discriminator(tf.zeros([1, recipe.crop_size, recipe.crop_size, 3]))
                self.d_optimizer = _adam(recipe, self._schedule(decay_steps))
                self.d_optimizer.build(self.discriminator.trainable_variables)
                self.vgg = VGGFeatures(recipe.vgg_layer, recipe.vgg_input_size,
                                       weights=config.vgg_weights, vgg=vgg)
                items.update(discriminator=self.discriminator, d_optimizer=self.d_optimizer)
        if replicas > 1:
            models = [self.generator, self.discriminator] if self.is_gan else [self.generator]
            synced = sum(distribute.synchronize_batch_norm(model) for model in models)
            logging.info("%d BatchNormalization layers use global-batch statistics over %d "
                         "replicas", synced, replicas)
        self.checkpoint = tf.train.Checkpoint(**items)
        # Only the chief manages RUN/<stage>; other workers get a scratch manager in train().
        self.manager = None
        if self.is_chief:
            self.manager = tf.train.CheckpointManager(self.checkpoint, config.stage_dir,
                                                      max_to_keep=config.max_to_keep)
        self._restore(init_checkpoint)
        self._step_fn = None

    def _schedule(self, decay_steps):
        """Learning rate: constant in stage init; x decay_rate every `decay_steps` updates in gan.

        The gan schedule is a function of the optimizer's checkpointed iteration count, so a
        resumed run continues on it.
        """
        recipe = self.recipe
        if not self.is_gan:
            return recipe.learning_rate
        return keras.optimizers.schedules.ExponentialDecay(
            recipe.learning_rate, decay_steps, recipe.decay_rate, staircase=True)

    def _restore(self, init_checkpoint):
        config = self.config
        latest = tf.train.latest_checkpoint(config.stage_dir)  # the chief's, on every worker
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("resumed %s stage at step %d from %s", config.stage,
                         int(self.step.numpy()), latest)
            if config.init_from or config.init_discriminator:
                logging.info("--init_from / --init_discriminator ignored: the stage resumes")
            self._keep_configured_learning_rate()
            return
        if config.init_from:
            path = loading.initial_weights(self.generator, config.init_from, "--init_from")
            logging.info("%s stage starts from the generator %s", config.stage, path)
        elif init_checkpoint:
            tf.train.Checkpoint(generator=self.generator).restore(init_checkpoint).expect_partial()
            logging.info("gan stage starts from the init generator %s", init_checkpoint)
        elif self.is_gan:
            logging.warning("gan stage starts from a randomly initialised generator (--from_scratch)")
        if self.is_gan and config.init_discriminator:
            path = loading.initial_weights(self.discriminator, config.init_discriminator,
                                           "--init_discriminator")
            logging.info("gan stage starts from the discriminator %s", path)

    def _keep_configured_learning_rate(self):
        """Stage init's constant learning rate is a checkpointed variable: the current flag wins.

        (Stage gan's schedule is recomputed from the restored iteration count.)
        """
        if self.is_gan:
            return
        optimizer = getattr(self.g_optimizer, "inner_optimizer", self.g_optimizer)
        restored = float(optimizer.learning_rate.numpy())
        if restored != self.recipe.learning_rate:
            optimizer.learning_rate.assign(self.recipe.learning_rate)
            logging.info("learning rate %g (the checkpoint had %g)", self.recipe.learning_rate,
                         restored)


    def learning_rate(self):
        """Returns the generator's current learning rate as a float."""
        optimizer = getattr(self.g_optimizer, "inner_optimizer", self.g_optimizer)
        lr = optimizer.learning_rate
        return float(lr.numpy() if hasattr(lr, "numpy") else lr)

    def schedule(self):
        """Returns the stage's resolved schedule and update mode as a JSON-ready dict.

        Keys: total_steps, steps_per_epoch, learning_rate; in stage gan also decay_steps (updates
        between learning-rate decays), decay_rate and gan_update.
        """
        recipe = self.recipe
        schedule = {"total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
                    "learning_rate": recipe.learning_rate}
        if self.is_gan:
            schedule.update(decay_steps=recipe.decay_step(self.steps_per_epoch),
                            decay_rate=recipe.decay_rate, gan_update=recipe.gan_update)
        return schedule

    def _write_config(self):
        """Writes RUN/<stage>/config.json: the config, with the resolved schedule beside it
        ("schedule") and, in stage gan, the update mode as a top-level "gan_update"."""
        record = json.loads(self.config.to_json())
        record["schedule"] = self.schedule()
        if self.is_gan:
            record["gan_update"] = self.recipe.gan_update
        files_lib.write_text(os.path.join(self.config.stage_dir, CONFIG_FILE),
                             json.dumps(record, indent=2, sort_keys=True))

    def _budget_spent(self):
        minutes = self.config.max_minutes
        if minutes is None:
            return False
        seconds = float(self.train_seconds.numpy())
        if self.workers > 1:  # each worker has its own clock: all stop when the first is out
            seconds = float(self._gather([seconds]).max())
        return seconds >= 60.0 * minutes

    def _check_workers_agree(self, start):
        """Raises ValueError unless every worker restored the same weights and step and sees the
        same data (a worker that could not read the chief's checkpoint would silently diverge)."""
        models = [self.generator] + ([self.discriminator] if self.is_gan else [])
        weight_sums = [float(tf.add_n([tf.reduce_sum(tf.cast(v, tf.float64)) for v in m.weights]))
                       for m in models]
        seen = self._gather([start, self.total_steps, len(self.data.files), *weight_sums])
        if (seen != seen[0]).any():
            rows = sorted({tuple(row) for row in seen.tolist()})
            raise ValueError(
                f"the workers disagree on (step, total steps, images, weight sums): {rows}; every "
                f"worker must read the chief's {self.config.checkpoint_dir} (shared storage) and "
                "run the same flags on the same images")

    def _log_line(self, record):
        """Appends one JSON record to RUN/<stage>/log.jsonl (losses, metrics, time)."""
        with open(os.path.join(self.config.stage_dir, LOG_FILE), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _evaluate(self, step, writer):
        metrics = {k: float(v) for k, v in self.evaluator(self.generator).items()}
        with writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(f"val/{name}", value)
        self._log_line({"step": step, "train_seconds": float(self.train_seconds.numpy()),
                        **{f"val_{k}": v for k, v in metrics.items()}})
        logging.info("step %d validation: %s", step,
                     ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        return metrics

    def train(self):
        """Runs the stage to `total_steps` (or the time budget), with checkpoints and summaries.

        Returns:
          dict of the last step's losses as floats (empty when the stage was already complete).
        """
        config = self.config
        start = int(self.step.numpy())
        logging.info("stage %s: step %d of %d (%d steps per epoch, batch %d, crop %d, %s)",
                     config.stage, start, self.total_steps, self.steps_per_epoch,
                     self.recipe.batch_size, self.recipe.crop_size,
                     keras.mixed_precision.dtype_policy().name)
        schedule = self.schedule()
        if self.is_gan:
            logging.info("stage gan: %s updates, augment %s; learning rate %g x%g every %d "
                         "steps, %d steps in all", schedule["gan_update"], config.augment,
                         schedule["learning_rate"], schedule["decay_rate"],
                         schedule["decay_steps"], schedule["total_steps"])
        else:
            logging.info("stage init: augment %s; learning rate %g, %d steps in all",
                         config.augment, schedule["learning_rate"], schedule["total_steps"])
        if self.workers > 1:
            self._check_workers_agree(start)
        if self.is_chief:
            self._write_config()
        if start >= self.total_steps or self._budget_spent():
            logging.info("stage %s is complete (step %d of %d, %.1f of %s minutes): nothing to do",
                         config.stage, start, self.total_steps,
                         float(self.train_seconds.numpy()) / 60, config.max_minutes)
            self._export_final()
            logs = {}
        elif self.is_chief:
            logs = self._train_from(start, self.manager)
        else:
            # Save alongside the chief (a save may be collective), into a scratch folder.
            scratch = distribute.scratch_dir(self.strategy, config.stage)
            try:
                logs = self._train_from(start, tf.train.CheckpointManager(
                    self.checkpoint, scratch, max_to_keep=1))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        if self.workers > 1:
            # Barrier: no worker goes on (e.g. to restore stage gan from the chief's init
            # checkpoint) before the chief has finished writing.
            self._gather([0.0])
        return logs

    def _train_from(self, start, manager):
        """The training loop from step `start`; checkpoints go through `manager`."""
        config = self.config
        step_fn = self.step_function()
        dataset = self.data.distributed_dataset(self.strategy, start)
        chief = self.is_chief
        if chief:
            fixed_lr, fixed_hr = self.data.fixed_batch()
            writer = tf.summary.create_file_writer(config.resolved_log_dir)
        else:
            writer = tf.summary.create_noop_writer()
        # A time-budgeted stage has no meaningful step target: show a counter without ETA.
        target = None if config.max_minutes is not None else self.total_steps
        progbar = keras.utils.Progbar(target, verbose=1 if chief else 0,
                                      stateful_metrics=["learning_rate", INPUT_WAIT])
        progbar.update(start)
        if start == 0 and self.evaluator is not None and chief:
            self._evaluate(0, writer)
        logs, last_time = {}, time.perf_counter()
        summary_clock, summary_step = last_time, start
        # Seconds spent waiting for the next batch: in this summary window, and in this run.
        window_wait, run_wait, run_clock, slow_windows, warned = 0.0, 0.0, last_time, 0, False
        signals = _SignalCatcher()
        batches = iter(dataset)
        while True:
            asked = time.perf_counter()
            lr, hr = next(batches)  # the stream is infinite
            waited = time.perf_counter() - asked
            window_wait += waited
            run_wait += waited
            if config.debug_nan_step == int(self.step.numpy()) + 1:  # test hook: corrupt one batch
                hr = hr * float("nan")
            out = step_fn(lr, hr)
            logs = {k: float(v) for k, v in out.items()}  # waits for the step
            self._check_finite(logs, manager)
            now = time.perf_counter()
            self.train_seconds.assign_add(now - last_time)
            last_time = now
            step = int(self.step.assign_add(1).numpy())
            done = step >= self.total_steps or self._budget_spent()
            progbar.update(step, [*logs.items(), ("learning_rate", self.learning_rate()),
                                  (INPUT_WAIT, run_wait / max(now - run_clock, 1e-9))])
            if chief and (step % config.summary_every == 0 or done):
                rate = (step - summary_step) / max(now - summary_clock, 1e-9)  # wall clock
                input_wait = min(1.0, window_wait / max(now - summary_clock, 1e-9))
                slow_windows = slow_windows + 1 if input_wait > INPUT_WAIT_WARNING else 0
                if slow_windows >= 2 and not warned:  # two windows in a row: not a warm-up
                    warned = True
                    logging.warning(
                        "training waited %.0f%% of the time for input over steps %d-%d: the "
                        "input pipeline is the bottleneck; train from a decode-once store "
                        "(python -m srgan_tf.prepare, then --store), keep decoded images in RAM "
                        "(--cache) or draw more crops per decoded image (--crops_per_image)",
                        100 * input_wait, summary_step + 1, step)
                with writer.as_default(step=step):
                    for name, value in logs.items():
                        tf.summary.scalar(f"loss/{name}", value)
                    tf.summary.scalar("learning_rate", self.learning_rate())
                    tf.summary.scalar("steps_per_sec", rate)
                    tf.summary.scalar(INPUT_WAIT, input_wait)
                self._log_line({"step": step, "train_seconds": float(self.train_seconds.numpy()),
                                "learning_rate": self.learning_rate(), "steps_per_sec": rate,
                                INPUT_WAIT: input_wait, **logs})
                summary_clock, summary_step, window_wait = now, step, 0.0
            if chief and (step % config.image_every == 0 or done):
                with writer.as_default(step=step):
                    tf.summary.image("samples/bicubic_sr_hr", self._comparison(fixed_lr, fixed_hr),
                                     max_outputs=4)
            if chief and self.evaluator is not None and (step % config.eval_every == 0 or done):
                self._evaluate(step, writer)
            if step % config.save_every == 0 or done:
                path = _save(manager, step)
                logging.info("saved checkpoint %s", path)
            last_time = time.perf_counter()  # summaries and saves don't count as training time
            if signals.received and not done:
                if step % config.save_every:
                    path = _save(manager, step)
                    logging.info("saved checkpoint %s", path)
                writer.flush()
                signals.restore()
                raise Interrupted(f"stopped by {signals.name} at step {step}; rerun the same "
                                  "command to resume", signals.received)
            if done:
                break
        signals.restore()
        writer.flush()
        self._export_final()
        return logs

    def _check_finite(self, logs, manager):
        """Stops the run (before anything is saved from this state) on a NaN or infinite value."""
        bad = [name for name, value in logs.items() if name != GRADS_BAD and not math.isfinite(value)]
        if logs.pop(GRADS_BAD, 0.0) > 0:
            bad.append("gradients")
        if bad:
            raise NonFiniteLossError(
                f"step {int(self.step.numpy()) + 1}: non-finite {', '.join(bad)} "
                f"({', '.join(f'{k}={v:.4g}' for k, v in logs.items())}); nothing was saved from "
                f"this state, the latest checkpoint is still {manager.latest_checkpoint}")

    def _comparison(self, lr, hr):
        """Returns float32 [B, H, 3W, 3] in [0, 1]: bicubic upsampling | SR | HR, side by side."""
        sr = self.generator(lr, training=False)
        bicubic = imaging.bicubic_upsample(lr)
        rows = tf.concat([bicubic, tf.cast(sr, tf.float32), hr], axis=2)
        return tf.clip_by_value(imaging.signed_to_unit(rows), 0.0, 1.0)

    def _export_final(self):
        """Writes the stage's generator (and in stage gan its discriminator) as .keras files, and a
        comparison PNG of the fixed batch.

        Only the chief writes them; other workers do nothing.
        """
        if not self.is_chief:
            return
        models = {GENERATOR_FILE: self.generator}
        if self.is_gan:
            models[DISCRIMINATOR_FILE] = self.discriminator
        for name, model in models.items():
            files_lib.write_atomically(os.path.join(self.config.stage_dir, name), model.save,
                                       suffix=".keras")
        lr, hr = self.data.fixed_batch(count=1)
        row = imaging.signed_to_uint8(imaging.unit_to_signed(self._comparison(lr, hr)))[0]
        sample = os.path.join(self.config.stage_dir, SAMPLE_FILE)
        png = tf.io.encode_png(row)
        files_lib.write_atomically(sample, lambda temp: tf.io.write_file(temp, png))
        logging.info("wrote %s and %s", ", ".join(models), sample)


def train(config, **kwargs):
    """Validates `config`, then trains its stage. Returns the last step's losses."""
    config.validate()
    logging.info("config:\n%s", config.to_json())
    return Trainer(config, **kwargs).train()


def read_stage_config(stage_dir):
    """Returns the JSON config a stage was trained with, as a dict."""
    with open(os.path.join(stage_dir, CONFIG_FILE), encoding="utf-8") as f:
        return json.load(f)
