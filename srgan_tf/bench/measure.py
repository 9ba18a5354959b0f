"""Throughput benchmark of training and inference, measured in one process and printed as one table.

0. the device: the CPU's vector features (or the GPU), cores and threads;
1. the machine's ceilings: a large matmul, and the train step's dominant op alone, a 3x3
   64->64 convolution forward + backward, in float32 and bfloat16;
2. the init-stage train step (generator, MSE) of each preset, in float32 and mixed bfloat16;
3. the gan-stage train step (generator + discriminator + VGG19 features), with each update
   mode (alternating D then G updates, or both from one shared forward pass);
4. the tf.data pipeline alone at crop 384 from DIV2K-size images (files, --crops_per_image,
   --cache, --store, the batched bicubic alone), and the patch rates GPU train steps consume;
5. inference (whole image) and the peak RSS of a tiled upscale run in a subprocess.

Every time is the median of `repeats` calls after `warmup` calls. Train steps are the Trainer's
own compiled step (`Trainer.step_function()`) on a fixed random batch; nothing is written.

FLOPs are counted, not measured: 2 per multiply-add of every convolution and dense layer, taken
from the shapes of the Conv2D / MatMul ops of the network's traced forward pass
(`forward_flops`; a FoldedConv2D counts as the k x k conv it computes). Batch norm,
activations, pixel shuffle, resizing, losses and Adam are left out. A trained network costs 3x its forward pass (forward, then input and weight gradients); in
stage gan VGG19 costs 3x its forward up to the tapped layer (forward on HR, forward and input
gradient on SR) and the discriminator 6x (forward and backward on the HR and on the SR batch).

`python -m srgan_tf.bench` runs the CLI (srgan_tf/cli/bench.py); docs/benchmarks.md has the figures.
"""

import concurrent.futures
import dataclasses
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from srgan_tf import precision as precision_lib
from srgan_tf import trainer as trainer_lib
from srgan_tf.config import (FILE_CROPS_PER_IMAGE, GAN_UPDATES, PRESETS, SCALE, Recipe,
                             TrainConfig)
from srgan_tf.loading import build_generator
from srgan_tf.models.blocks import folded_op_name
from srgan_tf.upscale.tiling import DEFAULT_TILE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ("ceilings", "init", "gan", "pipeline", "inference", "upscale")
# Keras policy -> the dtype its convolutions compute in (whose ceiling the step is compared to).
COMPUTE_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
# Targets, as ratios measured within one run.
STEP_TARGET = 0.75  # train step GFLOP/s over the conv ceiling of its compute dtype
BF16_SPEEDUP_TARGET = 2.5  # bf16 init step over the float32 one, where bf16 is native
STORE_TARGET = 0.8  # store patches/s over the batched bicubic's (crop 384, batch 16)
FILES_CROPS_TARGET = 3.0  # files patches/s with the default --crops_per_image over 1 crop
GPU_TFLOPS = (100, 300)  # sustained TFLOP/s of current datacenter GPUs (gpu_demand)
DIV2K_HR_SIZE = (1356, 2040)  # height, width of DIV2K's HR images
RSS_TARGET_MB = 3000.0  # peak RSS of the tiled upscale, MB of 10^6 bytes
INFER_TARGET = 0.75  # inference GFLOP/s on the largest input over the conv ceiling
# --quick: fewer calls; a train step or inference stops its timed calls after 10 s (the
# tensorlayer gan step takes ~35 s per call on an AVX2-only 2-core CPU), so the run stays < 5 min.
QUICK = dict(warmup=1, repeats=3, pipeline_batches=10, upscale_timeout=30.0, time_budget=10.0)
DEFAULT_PRECISIONS = ("float32", "mixed_bfloat16")
CEILING_REPEATS = 10  # the ceilings' minimum repeats, also with --quick
XLA_SUFFIX = "_xla"  # keys of the train steps timed with --jit_compile: init_step_xla_ms, ...


def default_hr_dir():
    """Returns ../shared/data/SunHays80 beside the repository if present, else data/sample."""
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data", "SunHays80")
    return shared if os.path.isdir(shared) else os.path.join(ROOT, "data", "sample")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What `run_benchmark` measures, and how often.

    `recipe_overrides` changes the architecture (e.g. (("num_block", 1),) for tests); the
    figures of docs/benchmarks.md use the presets as they are.
    """

    sections: Tuple[str, ...] = SECTIONS
    presets: Tuple[str, ...] = PRESETS
    precisions: Tuple[str, ...] = DEFAULT_PRECISIONS
    skipped_precisions: Tuple[str, ...] = ()  # default ones --quick left out: not native here
    gan_updates: Tuple[str, ...] = GAN_UPDATES  # gan step modes timed; the first is gan_step_ms
    batch_size: int = 16  # train batch, and batch of the conv ceiling
    lr_patch: int = 24  # LR side of the train patches; HR side is 4x
    matmul_size: int = 4096  # square matmul of the matmul ceiling
    conv_size: int = 96  # spatial side of the conv ceiling
    conv_feat: int = 64  # channels in and out of the conv ceiling
    hr_dir: Optional[str] = None  # images for the Trainer and the pipeline (default_hr_dir())
    infer_preset: str = "tensorlayer"  # generator of the inference and upscale figures
    infer_sizes: Tuple[int, ...] = (128, 512)  # LR input sides of the inference figures
    upscale_size: int = 2048  # LR side of the tiled upscale
    upscale_tile: Optional[int] = None  # --tile of the upscale CLI (default: the CLI's own)
    upscale_timeout: Optional[float] = None  # stop the upscale after this many seconds
    warmup: int = 2
    repeats: int = 10
    pipeline_batches: int = 25  # batches per timed pipeline repeat
    pipeline_crop: int = 384  # HR crop of the pipeline section (the TensorLayer recipe's)
    pipeline_images: int = 16  # PNGs the pipeline section makes from the photos of hr_dir
    pipeline_image_size: Tuple[int, int] = DIV2K_HR_SIZE
    jit_compile: Tuple[bool, ...] = (False,)  # train steps without (False) / with XLA (True)
    time_budget: Optional[float] = None  # s: a step / inference stops its timed calls after it
    recipe_overrides: Tuple[Tuple[str, object], ...] = ()
    quick: bool = False  # recorded only; `create(quick=True)` sets the fewer repeats

    @classmethod
    def create(cls, quick=False, native=None, **overrides):
        """Returns a config with QUICK's fewer repeats when `quick`; None overrides are ignored.

        With `quick` and no `precisions` given, only the default precisions this machine runs
        natively are timed (an emulated bf16 step takes minutes on an AVX2 CPU), and the others
        are logged in one line and kept in `skipped_precisions`; given `precisions` are timed as
        they are. `native`: the natively computed policies (default
        `precision.native_precisions()`).
        """
        values = dict(QUICK) if quick else {}
        if quick and overrides.get("precisions") is None:
            native = precision_lib.native_precisions() if native is None else native
            values["precisions"] = tuple(p for p in DEFAULT_PRECISIONS if p in native)
            values["skipped_precisions"] = tuple(p for p in DEFAULT_PRECISIONS if p not in native)
            if values["skipped_precisions"]:
                logging.warning("--quick times %s only: %s is emulated on this machine (--precisions "
                                "forces it)", ",".join(values["precisions"]),
                                ",".join(values["skipped_precisions"]))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(quick=quick, **values)

    @property
    def resolved_hr_dir(self):
        return self.hr_dir or default_hr_dir()

    def recipe(self, preset, gan_update=None):
        """Returns the recipe of `preset` at the benchmark's batch and patch size (and with
        `gan_update`, if given)."""
        return Recipe.from_preset(preset, batch_size=self.batch_size,
                                  crop_size=SCALE * self.lr_patch, gan_update=gan_update,
                                  **dict(self.recipe_overrides))

    def validate(self):
        """Raises ValueError / FileNotFoundError naming the bad flag; returns self."""
        for name, given, allowed in (("sections", self.sections, SECTIONS),
                                     ("presets", self.presets, PRESETS),
                                     ("precisions", self.precisions, tuple(COMPUTE_DTYPES)),
                                     ("gan_updates", self.gan_updates, GAN_UPDATES)):
            bad = [g for g in given if g not in allowed]
            if bad or not given:
                raise ValueError(f"--{name} must be a comma list of {', '.join(allowed)}, got "
                                 f"{','.join(given)!r}")
        if self.infer_preset not in PRESETS:
            raise ValueError(f"--infer_preset must be one of {', '.join(PRESETS)}, got "
                             f"{self.infer_preset!r}")
        for name in ("batch_size", "lr_patch", "matmul_size", "conv_size", "conv_feat",
                     "upscale_size", "repeats", "pipeline_batches", "pipeline_crop",
                     "pipeline_images"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"--warmup must be >= 0, got {self.warmup}")
        if not self.infer_sizes or min(self.infer_sizes) <= 0:
            raise ValueError(f"--infer_sizes must be positive sides, got {self.infer_sizes}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ValueError(f"time_budget must be positive, got {self.time_budget}")
        if not self.jit_compile or len(set(self.jit_compile)) != len(self.jit_compile):
            raise ValueError(f"--jit_compile must be off, on or off,on, got {self.jit_compile}")
        if self.upscale_timeout is not None and self.upscale_timeout <= 0:
            raise ValueError(f"--upscale_timeout must be positive, got {self.upscale_timeout}")
        if {"init", "gan", "pipeline"} & set(self.sections) \
                and not os.path.isdir(self.resolved_hr_dir):
            raise FileNotFoundError(f"--hr_dir {self.resolved_hr_dir!r} is not a directory")
        return self


# ---------------------------------------------------------------------------------------------
# FLOPs.

_FOLDED_OP = re.compile(folded_op_name(r"(\d+)", r"(\d+)"))


def _op_flops(op):
    """FLOPs (2 per multiply-add) of one Conv2D / MatMul graph op; 0 for any other op.

    The Conv2D of a `FoldedConv2D` counts as the k x k conv it computes (over whole fold blocks).
    """
    if op.type in ("PartitionedCall", "StatefulPartitionedCall"):
        raise ValueError(f"forward_flops cannot look inside the nested function {op.name}")
    if op.type not in ("Conv2D", "MatMul"):
        return 0
    out = op.outputs[0].shape
    if not out.is_fully_defined():
        raise ValueError(f"{op.name} has an undefined output shape {out}: give a full input shape")
    if op.type == "Conv2D":
        kernel_h, kernel_w, channels_in, _ = op.inputs[1].shape
        folded = _FOLDED_OP.search(op.name)
        if folded:  # a FoldedConv2D: count the k x k conv it computes, not its zero weights
            kernel, fold = int(folded.group(1)), int(folded.group(2))
            return 2 * out.num_elements() * kernel * kernel * channels_in // fold ** 2
        return 2 * out.num_elements() * kernel_h * kernel_w * channels_in
    a = op.inputs[0].shape
    inner = a[0] if op.get_attr("transpose_a") else a[1]
    return 2 * out.num_elements() * inner


def forward_flops(model, input_shape):
    """Counts the FLOPs of a forward pass: 2 per multiply-add of its convolutions and dense layers.

    The model is traced once on a float32 input of `input_shape`; each Conv2D op costs
    2 x output elements x kernel height x kernel width x input channels, each MatMul
    2 x output elements x inner dimension. Nothing else is counted.

    Args:
      model: a built keras model (or layer) taking one float32 [B, H, W, C] tensor.
      input_shape: full input shape, e.g. [16, 24, 24, 3].
    Returns:
      int.
    """
    traced = tf.function(lambda x: model(x, training=False))
    graph = traced.get_concrete_function(tf.TensorSpec(input_shape, tf.float32)).graph
    return int(sum(_op_flops(op) for op in graph.get_operations()))


def train_step_flops(trainer, batch_size, lr_patch):
    """FLOPs of one train step of a Trainer, by network (see the module docstring).

    Returns:
      dict: "generator" (3x forward), and in stage gan "discriminator" (6x forward: HR and SR
      batches) and "vgg" (3x forward up to the tapped layer); "total" their sum. The
      alternating gan update (trainer.recipe.gan_update) runs the generator forward once more
      (4x) and the discriminator on SR once more, forward and input gradient (8x).
    """
    lr_shape = [batch_size, lr_patch, lr_patch, 3]
    hr_shape = [batch_size, SCALE * lr_patch, SCALE * lr_patch, 3]
    alternating = trainer.is_gan and trainer.recipe.gan_update == "alternating"
    flops = {"generator": (4 if alternating else 3) * forward_flops(trainer.generator, lr_shape)}
    if trainer.is_gan:
        flops["discriminator"] = ((8 if alternating else 6)
                                  * forward_flops(trainer.discriminator, hr_shape))
        flops["vgg"] = 3 * forward_flops(trainer.vgg, hr_shape)
    flops["total"] = sum(flops.values())
    return flops


# ---------------------------------------------------------------------------------------------
# Timing.

def _wait(outputs):
    """Blocks until every output tensor is computed (reads one element of each)."""
    for tensor in tf.nest.flatten(outputs):
        tf.reshape(tensor, [-1])[:1].numpy()


def time_calls(fn, warmup, repeats, budget=None):
    """Calls `fn()` `warmup` times, then returns the wall times (seconds) of `repeats` calls.

    With `budget` (seconds), the timed calls stop early once they have taken that long together
    (at least one call is timed).
    """
    for _ in range(warmup):
        _wait(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _wait(fn())
        times.append(time.perf_counter() - start)
        if budget is not None and sum(times) >= budget:
            break
    return times


def median_seconds(fn, warmup, repeats):
    """Calls `fn()` `warmup` times, then returns the median wall time of `repeats` calls."""
    return statistics.median(time_calls(fn, warmup, repeats))


def _random(shape, dtype=tf.float32, seed=0):
    """float [shape] uniform in [-1, 1), seeded."""
    return tf.cast(tf.random.stateless_uniform(shape, [seed, 1], -1.0, 1.0), dtype)


def matmul_gflops(size, dtype, warmup, repeats):
    """GFLOP/s of a [size, size] x [size, size] tf.matmul in `dtype` (2 size^3 FLOPs)."""
    a, b = _random([size, size], dtype, 1), _random([size, size], dtype, 2)
    product = tf.function(lambda: tf.matmul(a, b))
    return 2 * size ** 3 / median_seconds(product, warmup, repeats) / 1e9


def conv_gflops(batch, size, feat, dtype, warmup, repeats):
    """GFLOP/s of a 3x3 `feat`->`feat` "same" convolution, forward + backward, in `dtype`.

    Forward, input gradient and kernel gradient each cost 2 x batch x size^2 x 9 x feat^2.
    """
    x = _random([batch, size, size, feat], dtype, 1)
    kernel = _random([3, 3, feat, feat], dtype, 2) * 0.05
    grad_y = _random([batch, size, size, feat], dtype, 3)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.nn.conv2d(x, kernel, 1, "SAME")
        grad_x, grad_kernel = tape.gradient(y, [x, kernel], output_gradients=grad_y)
        return y, grad_x, grad_kernel  # y too, or the forward would be pruned

    flops = 3 * 2 * batch * size * size * 9 * feat * feat
    return flops / median_seconds(forward_backward, warmup, repeats) / 1e9


# ---------------------------------------------------------------------------------------------
# Measurements.

class _Policy:
    """Context: Keras's global dtype policy set to `name`, then float32 and a cleared session."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        keras.mixed_precision.set_global_policy(self.name)

    def __exit__(self, *exc):
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()
        gc.collect()


def device_info():
    """Returns the device the benchmark runs on, the CPU's features, cores and threads."""
    gpus = tf.config.list_physical_devices("GPU")
    features = precision_lib.cpu_features()
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability")
        device = f"GPU: {details.get('device_name', gpus[0].name)}" + (
            f" (compute capability {capability[0]}.{capability[1]})" if capability else "") + (
            f" x{len(gpus)}" if len(gpus) > 1 else "")
    else:
        device = f"CPU: {precision_lib.cpu_name()}"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    native = precision_lib.resolve_precision(
        "auto", features, precision_lib.gpu_compute_capabilities()) == "mixed_bfloat16"
    return {"device": device, "cpu": precision_lib.cpu_name(), "cpu_features": features,
            "cores": os.cpu_count(), "usable_cores": usable,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or None,
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or None,
            "bf16_native": bool(native),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            "tensorflow": tf.__version__, "keras": keras.__version__}


def _time_step(config, stage, preset, checkpoint_dir, jit_compile=False, gan_update=None):
    """Builds a Trainer under the current policy.

    Returns:
      (seconds of the first call: tracing and compilation included, step times in s after
      `config.warmup` calls in all, FLOPs by network).
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
    step = trainer.step_function()
    lr = _random([batch, patch, patch, 3], seed=4)
    hr = _random([batch, SCALE * patch, SCALE * patch, 3], seed=5)
    first = time_calls(lambda: step(lr, hr), 0, 1)[0]  # the first of the warm-up calls
    times = time_calls(lambda: step(lr, hr), max(config.warmup - 1, 0), config.repeats,
                       config.time_budget)
    return first, times, train_step_flops(trainer, batch, patch)


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
    --cache ("cache") and a decode-once store ("store"). "bicubic_ceiling" is the batched bicubic
    x4 alone, the part every path shares. "gpu_demand" is the patches/s that the init and gan
    steps of the TensorLayer recipe consume at 100 and 300 TFLOP/s, from `train_step_flops`.

    Returns:
      dict: files, files_crops, cache, store, bicubic_ceiling (patches/s), gpu_demand
      ({"init": {"100": p/s, "300": p/s}, "gan": {...}, "gflop_per_patch": {...}}), and the
      settings (images, image_size, crop, batch, crops_per_image, prepare_seconds).
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
        streams = {"files": data_lib.TrainingData(files, crop, batch),
                   "files_crops": data_lib.TrainingData(files, crop, batch,
                                                        crops_per_image=FILE_CROPS_PER_IMAGE),
                   "cache": data_lib.TrainingData(files, crop, batch, cache=True),
                   "store": data_lib.TrainingData(stored, crop, batch)}
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


def _time_inference(config):
    """Builds the generator under the current policy; returns {size: (times in s, FLOPs)}."""
    generator = build_generator(config.recipe(config.infer_preset))
    generator(tf.zeros([1, 8, 8, 3]))
    run = tf.function(lambda x: generator(x, training=False))
    figures = {}
    for size in config.infer_sizes:
        x = _random([1, size, size, 3], seed=6)
        figures[size] = (time_calls(lambda: run(x), config.warmup, config.repeats,
                                    config.time_budget),
                         forward_flops(generator, [1, size, size, 3]))
    return figures


def measure_inference(config, policy):
    """Times the generator (tf.function, batch 1, whole image) on each of `infer_sizes`.

    Returns:
      dict: str(size) -> {ms (median), min_ms, mpix_per_s (output megapixels/s), gflops}.
    """
    with _Policy(policy):
        figures = _time_inference(config)  # the generator is freed on return
    results = {}
    for size, (times, flops) in figures.items():
        seconds = statistics.median(times)
        results[str(size)] = {"ms": 1e3 * seconds, "min_ms": 1e3 * min(times),
                              "mpix_per_s": (SCALE * size) ** 2 / 1e6 / seconds,
                              "gflops": flops / seconds / 1e9}
        logging.info("inference %dx%d %s: %.1f ms", size, size, policy, 1e3 * seconds)
    return results


def synthetic_image(size, seed=0):
    """Returns uint8 [size, size, 3]: smooth colour blobs plus noise, compressible like a photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, [size // 32 + 2, size // 32 + 2, 3])
    smooth = np.kron(coarse, np.ones([32, 32, 1]))[:size, :size]
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


@dataclasses.dataclass
class ProcessRun:
    """What `run_upscale` observed of its subprocess."""

    peak_rss_bytes: int  # ru_maxrss of the upscale process alone (see _RSS_PROBE)
    seconds: float
    exit_code: int
    timed_out: bool
    stdout: str
    stderr: str


def upscale_env():
    """Environment for `python -m srgan_tf.upscale` run from this checkout, with quiet TF logs."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2")


# Runs `python ARGS` as the child of this small process and writes "<child's ru_maxrss in KiB>
# <exit code>" to a file. The kernel carries a process's peak RSS over fork and exec, so a child
# started straight from the (large) benchmark process would report the benchmark's own peak.
# SIGTERM kills the child, and its peak so far is still written.
_RSS_PROBE = """
import os, signal, sys
child = {"pid": 0, "stop": False}
def stop(*_):
    child["stop"] = True
    if child["pid"]:
        os.kill(child["pid"], signal.SIGKILL)
signal.signal(signal.SIGTERM, stop)
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable] + sys.argv[2:])
child["pid"] = pid
if child["stop"]:
    os.kill(pid, signal.SIGKILL)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_upscale(args, env=None, timeout=None):
    """Runs `python -m srgan_tf.upscale ARGS` in a fresh process and records its peak RSS.

    Args:
      args: the CLI's arguments.
      env: its environment (default: `upscale_env()`).
      timeout: seconds after which the process is killed (its peak so far is still reported).
    Returns:
      ProcessRun.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out, err = (open(os.path.join(tmp, name), "w+b") for name in ("out", "err"))
        report = os.path.join(tmp, "rss")
        start = time.perf_counter()
        with out, err:
            probe = subprocess.Popen(
                [sys.executable, "-c", _RSS_PROBE, report, "-m", "srgan_tf.upscale", *args],
                env=env or upscale_env(), stdout=out, stderr=err)
            try:
                probe.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                probe.terminate()  # the probe kills the upscale, then reports
                probe.wait()
                timed_out = True
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            stdout, stderr = (f.read().decode(errors="replace") for f in (out, err))
        if not os.path.exists(report):
            raise RuntimeError(f"the peak-RSS probe failed (exit {probe.returncode}): "
                               f"{stderr[-1000:]}")
        with open(report, encoding="utf-8") as f:
            max_rss_kib, exit_code = (int(v) for v in f.read().split())
    return ProcessRun(max_rss_kib * 1024, seconds, exit_code, timed_out, stdout, stderr)


def measure_upscale(config):
    """Peak RSS and time of the upscale CLI on a synthetic `upscale_size` square image (tiled).

    The generator of `infer_preset` with random weights (memory and time don't depend on the
    weights) is saved as a .keras file; the CLI runs in float32 in a fresh process.

    Returns:
      dict: peak_rss_mb (10^6 bytes), seconds, complete (False when stopped by
      `upscale_timeout` or failed), tiles_done, tiles, exit_code.
    """
    size = config.upscale_size
    with _Policy("float32"), tempfile.TemporaryDirectory() as tmp:
        generator = build_generator(config.recipe(config.infer_preset))
        generator(tf.zeros([1, 8, 8, 3]))
        model = os.path.join(tmp, "generator.keras")
        generator.save(model)
        del generator
        image = os.path.join(tmp, f"in{size}.png")
        Image.fromarray(synthetic_image(size)).save(image)
        args = [image, "--output_dir", os.path.join(tmp, "out"), "--model", model]
        if config.upscale_tile is not None:
            args += ["--tile", str(config.upscale_tile)]
        run = run_upscale(args, timeout=config.upscale_timeout)
    if run.exit_code and not run.timed_out:
        logging.error("the upscale CLI failed (exit %d):\n%s", run.exit_code, run.stderr[-2000:])
    progress = re.findall(r"(\d+)/(\d+)", run.stdout)  # the CLI's progress bar: "tile/tiles"
    done, total = (int(v) for v in progress[-1]) if progress else (None, None)
    result = {"peak_rss_mb": run.peak_rss_bytes / 1e6, "seconds": run.seconds,
              "complete": run.exit_code == 0 and not run.timed_out, "exit_code": run.exit_code,
              "tiles_done": done, "tiles": total, "tile": config.upscale_tile, "size": size}
    logging.info("upscale %dx%d: peak RSS %.0f MB, %.0f s%s", size, size, result["peak_rss_mb"],
                 run.seconds, "" if result["complete"] else " (incomplete)")
    return result


# ---------------------------------------------------------------------------------------------
# The run.

def run_benchmark(config):
    """Runs the sections of `config` in order and returns every figure.

    The keys of the `--output_json` file: device, cpu_features, matmul_gflops, conv_gflops
    ({compute dtype: GFLOP/s}), init_step_ms and gan_step_ms ({preset: {policy: ms}}; the gan
    step in the first of `gan_updates`, every mode in details["gan_step_by_update"]),
    init_step_xla_ms and gan_step_xla_ms (the same with `--jit_compile`), init_xla_speedup and
    gan_xla_speedup ({preset: {policy: ms without XLA / ms with XLA}}, when both were timed),
    pipeline (see `measure_pipeline`), pipeline_patches_per_s (its store rate), infer_ms
    ({size: {policy: ms}}), upscale_2048_peak_rss_mb (named
    after the default size; see `upscale` for the size used); null where a section was not run.
    `details` holds every measurement in full, and `targets` the ratios against their targets.
    """
    config.validate()
    info = device_info()
    logging.info("benchmark on %s (%s)", info["device"], ", ".join(info["cpu_features"]) or "-")
    dtypes = sorted({COMPUTE_DTYPES[p] for p in config.precisions},
                    key=list(COMPUTE_DTYPES.values()).index)
    results = {"device": info["device"], "cpu_features": info["cpu_features"],
               "matmul_gflops": None, "conv_gflops": None, "init_step_ms": None,
               "gan_step_ms": None, "init_step_xla_ms": None, "gan_step_xla_ms": None,
               "init_xla_speedup": None, "gan_xla_speedup": None, "pipeline": None,
               "pipeline_patches_per_s": None, "infer_ms": None,
               "upscale_2048_peak_rss_mb": None,
               "system": info, "settings": _settings(config), "details": {}}
    details = results["details"]
    sections = config.sections
    if "ceilings" in sections:
        # They are the denominators of every ratio and cheap: never fewer than CEILING_REPEATS.
        warmup, repeats = max(1, config.warmup), max(CEILING_REPEATS, config.repeats)
        results["matmul_gflops"] = {d: matmul_gflops(config.matmul_size, tf.as_dtype(d),
                                                     warmup, repeats)
                                    for d in dtypes}
        results["conv_gflops"], details["conv_lr_gflops"] = {}, {}
        for d in dtypes:
            for key, size in (("conv_gflops", config.conv_size),
                              ("conv_lr_gflops", config.lr_patch)):
                figures = results if key == "conv_gflops" else details
                figures[key][d] = conv_gflops(config.batch_size, size, config.conv_feat,
                                              tf.as_dtype(d), warmup, repeats)
            logging.info("ceilings %s: matmul %.0f, conv %.0f GFLOP/s", d,
                         results["matmul_gflops"][d], results["conv_gflops"][d])
    for stage in ("init", "gan"):
        if stage not in sections:
            continue
        modes = config.gan_updates if stage == "gan" else (None,)
        for jit in config.jit_compile:
            key = f"{stage}_step{XLA_SUFFIX if jit else ''}"
            by_mode = {mode: {preset: {policy: measure_step(config, stage, preset, policy, jit,
                                                            mode)
                                       for policy in config.precisions}
                              for preset in config.presets} for mode in modes}
            steps = by_mode[modes[0]]
            details[key] = steps
            if stage == "gan":
                details[f"{key}_by_update"] = by_mode
            results[f"{key}_ms"] = {preset: {policy: m["ms"] for policy, m in row.items()}
                                    for preset, row in steps.items()}
        if len(config.jit_compile) == 2:
            plain, xla = results[f"{stage}_step_ms"], results[f"{stage}_step{XLA_SUFFIX}_ms"]
            results[f"{stage}_xla_speedup"] = {
                preset: {policy: plain[preset][policy] / ms for policy, ms in row.items()}
                for preset, row in xla.items()}
    if "pipeline" in sections:
        results["pipeline"] = measure_pipeline(config)
        results["pipeline_patches_per_s"] = results["pipeline"]["store"]
    if "inference" in sections:
        inference = {policy: measure_inference(config, policy) for policy in config.precisions}
        details["inference"] = inference
        results["infer_ms"] = {str(size): {policy: inference[policy][str(size)]["ms"]
                                           for policy in config.precisions}
                               for size in config.infer_sizes}
    if "upscale" in sections:
        details["upscale"] = measure_upscale(config)
        results["upscale_2048_peak_rss_mb"] = details["upscale"]["peak_rss_mb"]
    results["targets"] = target_checks(results)
    return results


def _settings(config):
    settings = dataclasses.asdict(config)
    settings["hr_dir"] = config.resolved_hr_dir
    settings["recipe_overrides"] = dict(config.recipe_overrides)
    return settings


def _conv_ceiling(results, policy):
    conv = results.get("conv_gflops") or {}
    return conv.get(COMPUTE_DTYPES[policy])


def target_checks(results):
    """Compares the measured ratios with the benchmark's targets.

    Returns:
      list of dicts: name, value, target (text), met (bool); only for figures measured.
    """
    checks = []
    details = results["details"]

    def add(name, value, target, met):
        checks.append({"name": name, "value": value, "target": target, "met": bool(met)})

    for stage in ("init", "gan"):
        for preset, row in (details.get(f"{stage}_step") or {}).items():
            for policy, m in row.items():
                ceiling = _conv_ceiling(results, policy)
                if ceiling:
                    add(f"{stage} step {preset} {policy} / conv ceiling", m["gflops"] / ceiling,
                        f">= {STEP_TARGET:.0%}", m["gflops"] / ceiling >= STEP_TARGET)
    if results["system"]["bf16_native"]:
        for preset, row in (details.get("init_step") or {}).items():
            if "float32" in row and "mixed_bfloat16" in row:
                speedup = row["float32"]["ms"] / row["mixed_bfloat16"]["ms"]
                add(f"init step {preset} mixed_bfloat16 speed-up over float32", speedup,
                    f">= {BF16_SPEEDUP_TARGET}x", speedup >= BF16_SPEEDUP_TARGET)
    pipeline = results.get("pipeline")
    if pipeline:
        ratio = pipeline["store"] / pipeline["bicubic_ceiling"]
        add("store / bicubic ceiling patch rate", ratio, f">= {STORE_TARGET:g}x",
            ratio >= STORE_TARGET)
        ratio = pipeline["files_crops"] / pipeline["files"]
        add(f"files with {pipeline['crops_per_image']} crops per image / 1 crop", ratio,
            f">= {FILES_CROPS_TARGET:g}x", ratio >= FILES_CROPS_TARGET)
    upscale = details.get("upscale")
    if upscale:
        add(f"tiled upscale {upscale['size']}x{upscale['size']} peak RSS (MB)",
            upscale["peak_rss_mb"], f"< {RSS_TARGET_MB:.0f} MB",
            upscale["peak_rss_mb"] < RSS_TARGET_MB and upscale["exit_code"] in (0, -9))
    inference = details.get("inference") or {}
    for policy, sizes in inference.items():
        largest = max(sizes, key=int)
        ceiling = _conv_ceiling(results, policy)
        if ceiling:
            ratio = sizes[largest]["gflops"] / ceiling
            add(f"inference {largest}x{largest} {policy} / conv ceiling", ratio,
                f">= {INFER_TARGET:.0%}", ratio >= INFER_TARGET)
    return checks


# ---------------------------------------------------------------------------------------------
# Output.

def _row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _num(value):
    """A figure with three significant digits, without exponent for the usual magnitudes."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _percent(value, ceiling):
    return f"{value / ceiling:.0%}" if ceiling else ""


def _target_cell(results, name):
    for check in results["targets"]:
        if check["name"] == name:
            return f"{check['target']}: {'yes' if check['met'] else 'NO'}"
    return ""


def format_table(results):
    """Returns the benchmark's figures as one Markdown table (and a line on the settings)."""
    info, settings, details = results["system"], results["settings"], results["details"]
    batch, patch = settings["batch_size"], settings["lr_patch"]
    threads = info["intra_op_threads"] or f"TF default ({info['usable_cores']})"
    lines = [f"srgan_tf benchmark: batch {batch}, LR patch {patch} (HR {SCALE * patch}); "
             f"median of {settings['repeats']} after {settings['warmup']} warm-up"
             + (" (--quick)" if settings["quick"] else "")
             + (", train steps also with --jit_compile (XLA)"
                if True in settings["jit_compile"] else "")
             + (f"; not timed: {','.join(settings['skipped_precisions'])} (emulated here; "
                "--precisions forces it)" if settings.get("skipped_precisions") else ""), "",
             _row("#", "measurement", "precision", "time", "throughput", "GFLOP/s",
                  "of ceiling", "target"),
             _row(*["---"] * 8)]
    features = ", ".join(info["cpu_features"]) or "none of AVX2/AVX-512/AVX512-BF16/AMX"
    lines.append(_row(0, f"{info['device']}; CPU features {features}; "
                         f"{info['usable_cores']} of {info['cores']} cores, intra-op threads "
                         f"{threads}, oneDNN {info['onednn_opts']}; TF {info['tensorflow']}",
                      "", "", "", "", "", ""))
    if results["matmul_gflops"]:
        size, conv, feat = settings["matmul_size"], settings["conv_size"], settings["conv_feat"]
        for dtype, value in results["matmul_gflops"].items():
            lines.append(_row(1, f"matmul {size}x{size} @ {size}x{size}", dtype, "", "",
                              _num(value), "", ""))
        for dtype, value in results["conv_gflops"].items():
            lines.append(_row(1, f"conv 3x3 {feat}->{feat} fwd+bwd, {batch}x{conv}x{conv}",
                              dtype, "", "", _num(value), "ceiling", ""))
        for dtype, value in details["conv_lr_gflops"].items():
            lines.append(_row(1, f"conv 3x3 {feat}->{feat} fwd+bwd, {batch}x{patch}x{patch} "
                                 "(the generator trunk's shape)", dtype, "", "",
                              _num(value), _percent(value, results["conv_gflops"][dtype]),
                              ""))
    for suffix in ("", XLA_SUFFIX):
        by_update = details.get(f"gan_step{suffix}_by_update") or {}
        modes = list(by_update) or [settings["gan_updates"][0]]
        rows = [(2, "init", None, details.get(f"init_step{suffix}"))]
        rows += [(3, "gan", mode, by_update.get(mode, details.get(f"gan_step{suffix}")))
                 for mode in modes]
        for number, stage, mode, steps in rows:
            plain_steps = details.get(f"{stage}_step") or {}
            for preset, row in (steps or {}).items():
                for policy, m in row.items():
                    parts = " + ".join(f"{k[0].upper() if k != 'vgg' else 'VGG'} "
                                       f"{_num(v / 1e9)}"
                                       for k, v in m["flops"].items() if k != "total")
                    name = f"{stage} step {preset} {policy} / conv ceiling"
                    target = _target_cell(results, name) if not suffix else ""
                    if policy != "float32" and "float32" in row:
                        speedup = "" if suffix else _target_cell(
                            results, f"{stage} step {preset} {policy} speed-up over float32")
                        target += (f"; {row['float32']['ms'] / m['ms']:.2f}x float32"
                                   + (f" ({speedup})" if speedup else ""))
                    if mode is not None and mode != "shared" and "shared" in by_update:
                        shared = by_update["shared"][preset][policy]["ms"]
                        target += f"; {m['ms'] / shared:.2f}x the shared step's time"
                    plain = plain_steps.get(preset, {}).get(policy)
                    if suffix and plain and mode in (None, modes[0]):
                        target += (f"; {plain['ms'] / m['ms']:.2f}x without XLA; first call "
                                   f"{m['first_s']:.0f} s (without: {plain['first_s']:.0f} s)")
                    label = (f"{stage} step {preset}" + (f" {mode}" if len(modes) > 1 and mode
                                                         else "")
                             + (" XLA" if suffix else ""))
                    lines.append(_row(number, f"{label} ({_num(m['gflop'])} GFLOP: {parts})",
                                      policy, f"{_num(m['ms'])} ms",
                                      f"{_num(m['patches_per_s'])} patches/s", _num(m["gflops"]),
                                      _percent(m["gflops"], _conv_ceiling(results, policy)),
                                      target.lstrip("; ")))
    pipeline = results.get("pipeline")
    if pipeline:
        size = "x".join(map(str, pipeline["image_size"][::-1]))
        crops = pipeline["crops_per_image"]
        for key, label in (("files", "image files, 1 crop per decode"),
                           ("files_crops", f"image files, --crops_per_image {crops}"),
                           ("cache", "--cache"), ("store", "--store"),
                           ("bicubic_ceiling", "batched bicubic x4 alone (ceiling)")):
            rate = pipeline[key]
            ratio = f"{rate / pipeline['bicubic_ceiling']:.2f}x ceiling"
            target = {"store": _target_cell(results, "store / bicubic ceiling patch rate"),
                      "files_crops": _target_cell(
                          results, f"files with {crops} crops per image / 1 crop")}.get(key, "")
            lines.append(_row(4, f"tf.data {label}: {pipeline['images']} PNGs {size}, crop "
                                 f"{pipeline['crop']}", "uint8",
                              f"{_num(1e3 * pipeline['batch'] / rate)} ms/batch",
                              f"{_num(rate)} patches/s", "", ratio, target))
        for stage in ("init", "gan"):
            demand = pipeline["gpu_demand"][stage]
            gflop = pipeline["gpu_demand"]["gflop_per_patch"][stage]
            lines.append(_row(4, f"GPU demand, {stage} step ({_num(gflop)} GFLOP/patch) at "
                                 + " / ".join(f"{t} TFLOP/s" for t in demand), "", "",
                              " / ".join(f"{_num(v)}" for v in demand.values()) + " patches/s",
                              "", "", ""))
    for policy, sizes in (details.get("inference") or {}).items():
        largest = max(sizes, key=int)
        for size, m in sizes.items():
            name = f"inference {size}x{size} {policy} / conv ceiling"
            lines.append(_row(5, f"inference {size}x{size} -> {SCALE * int(size)}x"
                                 f"{SCALE * int(size)} ({settings['infer_preset']}, whole image)",
                              policy, f"{_num(m['ms'])} ms", f"{_num(m['mpix_per_s'])} MP/s",
                              _num(m["gflops"]),
                              _percent(m["gflops"], _conv_ceiling(results, policy)),
                              _target_cell(results, name) if size == largest else ""))
    upscale = details.get("upscale")
    if upscale:
        size = upscale["size"]
        state = "" if upscale["complete"] else (
            f", stopped after {upscale['seconds']:.0f} s at tile {upscale['tiles_done']} of "
            f"{upscale['tiles']}" if upscale["exit_code"] == -9 else
            f", FAILED with exit code {upscale['exit_code']}")
        tile = upscale["tile"] if upscale["tile"] is not None else f"{DEFAULT_TILE} (CLI default)"
        lines.append(_row(5, f"tiled upscale CLI {size}x{size} -> {SCALE * size}x{SCALE * size}"
                             f" (tile {tile}, own process{state})", "float32",
                          f"{upscale['seconds']:.0f} s",
                          f"peak RSS {upscale['peak_rss_mb']:.0f} MB", "", "",
                          _target_cell(results, f"tiled upscale {size}x{size} peak RSS (MB)")))
    return "\n".join(lines)
