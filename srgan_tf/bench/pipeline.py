"""The tf.data pipeline alone at crop 384 from DIV2K-size images: files, crops, cache, store."""

import concurrent.futures
import os
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from srgan_tf import trainer as trainer_lib
from srgan_tf.bench.ceilings import _wait
from srgan_tf.bench.flops import train_step_flops
from srgan_tf.bench.inference import synthetic_image
from srgan_tf.bench.settings import GPU_TFLOPS
from srgan_tf.config import FILE_CROPS_PER_IMAGE, PRESETS, SCALE, Recipe, TrainConfig


def _div2k_size_pngs(source_dir, folder, count, size):
    """Writes `count` PNGs of `size` (height, width) made from the photos of `source_dir` with
    Lanczos, as DIV2K's HR images are 2040x1356 PNGs. Returns `folder`."""
    from srgan_tf import data as data_lib  # pylint: disable=import-outside-toplevel
    photos = data_lib.list_images(source_dir)
    if not photos:
        raise FileNotFoundError(f"--hr_dir {source_dir!r} holds no image")
    os.makedirs(folder, exist_ok=True)

    def make(i):
        with Image.open(photos[i % len(photos)]) as photo:
            image = photo.convert("RGB").resize((size[1], size[0]), Image.LANCZOS)
            image.save(os.path.join(folder, f"{i:04d}.png"))

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(make, range(count)))
    return folder


def _interleaved_rates(datasets, config):
    """Patches/s of each tf.data dataset of batches of `batch_size`.

    The datasets are timed in turn within each repeat, so that a change of the machine's load
    hits them alike: a fresh iterator, `warmup` untimed batches (at least 1), `pipeline_batches`
    timed ones, then the iterator is deleted (its threads stop: only one pipeline runs at a
    time). Each rate is the median over `repeats`.

    Args:
      datasets: dict name -> tf.data.Dataset.
    Returns:
      dict name -> patches/s.
    """
    count = config.pipeline_batches
    times = {name: [] for name in datasets}
    for _ in range(config.repeats):
        for name, dataset in datasets.items():
            iterator = iter(dataset)
            for _ in range(max(1, config.warmup)):
                next(iterator)
            clock = time.perf_counter()
            for _ in range(count):
                batch = next(iterator)
            _wait(batch)
            times[name].append(time.perf_counter() - clock)
            del iterator, batch
    return {name: count * config.batch_size / statistics.median(t) for name, t in times.items()}


def _bicubic_ceiling_dataset(config):
    """The batched bicubic x4 alone (uint8 HR batch -> (lr, hr)), through tf.data."""
    from srgan_tf import data as data_lib  # pylint: disable=import-outside-toplevel
    crop = config.pipeline_crop
    hr = tf.constant(np.stack([synthetic_image(crop, seed=i) for i in range(config.batch_size)]))
    return tf.data.Dataset.from_tensors(hr).repeat().map(
        data_lib.pairs_of_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _flops_per_patch(config, data, stage, checkpoint_dir):
    """FLOPs one train step of the TensorLayer recipe spends per patch at the pipeline's crop."""
    recipe = Recipe.from_preset(PRESETS[0], batch_size=1, crop_size=config.pipeline_crop,
                                **dict(config.recipe_overrides))
    train_config = TrainConfig(stage=stage, checkpoint_dir=checkpoint_dir,
                               hr_dir=config.resolved_hr_dir, recipe=recipe, vgg_weights="none",
                               from_scratch=True, steps=1)
    vgg = None
    if stage == "gan":
        vgg = keras.applications.VGG19(include_top=False, weights=None,
                                       input_shape=(None, None, 3))
    trainer = trainer_lib.Trainer(train_config, data=data, vgg=vgg)
    return train_step_flops(trainer, 1, config.pipeline_crop // SCALE)["total"]


def measure_pipeline(config):
    """Patches/s of the training tf.data pipeline at the recipe's crop, against what GPUs consume.

    Makes `pipeline_images` PNGs of `pipeline_image_size` (DIV2K's HR size) from the photos of
    --hr_dir, then streams crops of `pipeline_crop` in batches of `batch_size` from: the files
    with one crop per decode ("files") and with the default --crops_per_image ("files_crops"),
    --cache ("cache") and a decode-once store ("store"), all with the TensorLayer recipe's
    augmentation (none), and the store with flips and rotations ("store_flip_rot90", the paper
    preset's augmentation). "bicubic_ceiling" is the batched bicubic
    x4 alone, the part every path shares. "gpu_demand" is the patches/s that the init and gan
    steps of the TensorLayer recipe consume at 100 and 300 TFLOP/s, from `train_step_flops`.

    Returns:
      dict: files, files_crops, cache, store, store_flip_rot90, bicubic_ceiling, realistic
      (patches/s of --degradation realistic at the init step's crop `realistic_crop`), gpu_demand
      ({"init": {"100": p/s, "300": p/s}, "gan": {...}, "gflop_per_patch": {...}}), and the
      settings (images, image_size, crop, batch, crops_per_image, augment, prepare_seconds).
    """
    from srgan_tf import data as data_lib  # pylint: disable=import-outside-toplevel
    from srgan_tf import prepare  # pylint: disable=import-outside-toplevel
    crop, batch = config.pipeline_crop, config.batch_size
    result = {"images": config.pipeline_images, "image_size": list(config.pipeline_image_size),
              "crop": crop, "batch": batch, "crops_per_image": FILE_CROPS_PER_IMAGE}
    with tempfile.TemporaryDirectory() as tmp:
        folder = _div2k_size_pngs(config.resolved_hr_dir, os.path.join(tmp, "png"),
                                  config.pipeline_images, config.pipeline_image_size)
        files = data_lib.scan_images(data_lib.list_images(folder), crop)[0]
        clock = time.perf_counter()
        prepare.write_store(os.path.join(tmp, "store"), hr_dir=folder, min_size=crop)
        result["prepare_seconds"] = time.perf_counter() - clock
        stored = data_lib.store_files(os.path.join(tmp, "store"), crop)[0]
        # The TensorLayer recipe's crop 384 and batch 16 come with its augmentation (none);
        # "store_flip_rot90" adds the paper preset's flips and rotations, read from the store.
        augment = Recipe.from_preset("tensorlayer").augment
        streams = {"files": data_lib.TrainingData(files, crop, batch, augment=augment),
                   "files_crops": data_lib.TrainingData(files, crop, batch, augment=augment,
                                                        crops_per_image=FILE_CROPS_PER_IMAGE),
                   "cache": data_lib.TrainingData(files, crop, batch, augment=augment,
                                                  cache=True),
                   "store": data_lib.TrainingData(stored, crop, batch, augment=augment),
                   "store_flip_rot90": data_lib.TrainingData(stored, crop, batch,
                                                             augment="flip_rot90")}
        result["augment"] = augment
        # --degradation realistic (blur, random x4 kernel, noise, JPEG per patch) at the init
        # step's crop and batch, from the store: what the bench's init step consumes.
        streams["realistic"] = data_lib.TrainingData(stored, SCALE * config.lr_patch, batch,
                                                     augment=augment, degradation="realistic")
        result["realistic_crop"] = SCALE * config.lr_patch
        datasets = {name: stream.dataset() for name, stream in streams.items()}
        datasets["bicubic_ceiling"] = _bicubic_ceiling_dataset(config)
        result.update(_interleaved_rates(datasets, config))
        for name in datasets:
            logging.info("pipeline %s: %.0f patches/s", name, result[name])
        flops = {stage: _flops_per_patch(config, data_lib.TrainingData(files, crop, batch),
                                         stage, os.path.join(tmp, f"run_{stage}"))
                 for stage in ("init", "gan")}
    result["gpu_demand"] = {stage: {str(t): t * 1e12 / flops[stage] for t in GPU_TFLOPS}
                            for stage in flops}
    result["gpu_demand"]["gflop_per_patch"] = {stage: f / 1e9 for stage, f in flops.items()}
    return result
