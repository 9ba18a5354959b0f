"""What a benchmark run measures (BenchConfig, sections, presets), and the targets it checks."""

import dataclasses
import os
from typing import Optional, Tuple

from absl import logging

from srgan_tf import precision as precision_lib
from srgan_tf.config import GAN_UPDATES, PRESETS, SCALE, Recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ("ceilings", "init", "gan", "pipeline", "inference", "upscale")
# Keras policy -> the dtype its convolutions compute in (whose ceiling the step is compared to).
COMPUTE_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
# Targets, as ratios measured within one run.
STEP_TARGET = 0.75  # train step GFLOP/s over the conv ceiling of its compute dtype
BF16_SPEEDUP_TARGET = 2.5  # bf16 init step over the float32 one, where bf16 is native
STORE_TARGET = 0.8  # store patches/s over the batched bicubic's (crop 384, batch 16)
FILES_CROPS_TARGET = 3.0  # files patches/s with the default --crops_per_image over 1 crop
REALISTIC_TARGET = 5.0  # --degradation realistic patches/s over the fastest init step's (issue #18)
GPU_TFLOPS = (100, 300)  # sustained TFLOP/s of current datacenter GPUs (gpu_demand)
DIV2K_HR_SIZE = (1356, 2040)  # height, width of DIV2K's HR images
RSS_TARGET_MB = 3000.0  # peak RSS of the tiled upscale, MB of 10^6 bytes
INFER_TARGET = 0.75  # inference GFLOP/s on the largest input over the conv ceiling
# --quick: fewer calls; a train step or inference stops its timed calls after 10 s (the
# tensorlayer gan step takes ~35 s per call on an AVX2-only 2-core CPU), so the run stays < 5 min.
# The gan steps are its longest part: --quick times the default update of the default preset only
# (unless --gan_updates / --presets are given), inference up to a 256x256 input and a 2048 matmul.
QUICK = dict(warmup=1, repeats=3, pipeline_batches=5, upscale_timeout=20.0, time_budget=10.0,
             gan_updates=GAN_UPDATES[:1], gan_presets=PRESETS[:1], infer_sizes=(128, 256),
             matmul_size=2048)
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
    gan_presets: Optional[Tuple[str, ...]] = None  # presets of the gan steps (None: `presets`)
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
        if overrides.get("presets") is not None:  # given presets are timed in both stages
            values.pop("gan_presets", None)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(quick=quick, **values)

    @property
    def resolved_gan_presets(self):
        """The presets whose gan steps are timed."""
        return self.gan_presets if self.gan_presets is not None else self.presets

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
                                     ("gan_updates", self.gan_updates, GAN_UPDATES),
                                     ("gan_presets", self.resolved_gan_presets, PRESETS)):
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
