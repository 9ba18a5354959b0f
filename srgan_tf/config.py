"""Every number of the SRGAN recipe, and the resolved configuration of a training run.

Two presets exist:

* ``tensorlayer``: the recipe of tensorlayer/srgan (``config.py`` and ``train.py`` of that repository),
  which is what this project reproduces by default.
* ``paper``: Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
  Adversarial Network" (CVPR), sections 2.2-3.2 and Fig. 4.

Modules never write a number of the recipe themselves: they take it from a :class:`Recipe`.
"""

import dataclasses
import json
import os
from typing import Optional, Tuple

SCALE = 4  # the only upscaling factor of SRGAN (both presets)
PRESETS = ("tensorlayer", "paper")
STAGES = ("init", "gan")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")  # see distribute.py


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The numbers of one SRGAN recipe. Defaults are the TensorLayer recipe."""

    # Architecture (TensorLayer model.py get_G / get_D; paper Fig. 4).
    preset: str = "tensorlayer"
    num_feat: int = 64  # generator width
    num_block: int = 16  # generator residual blocks
    upsample_feat: int = 256  # conv width before each x2 pixel shuffle
    disc_feat: int = 64  # discriminator base width (df_dim)
    init_stddev: float = 0.02  # N(0, 0.02) conv/dense kernels; BN gamma ~ N(1, 0.02)
    bn_momentum: float = 0.9  # TensorLayer BatchNorm2d decay
    bn_epsilon: float = 1e-5  # TensorLayer BatchNorm2d epsilon
    leaky_slope: float = 0.2  # LeakyReLU slope of the discriminator
    icnr: bool = False  # ICNR init of the sub-pixel convs (Aitken et al. 2017); not in either recipe

    # Data (TensorLayer config.py: 384x384 HR crops, batch 16).
    crop_size: int = 384  # HR patch side; LR patch side is crop_size // SCALE
    batch_size: int = 16

    # Optimisation (Adam lr 1e-4, beta1 0.9; init 100 epochs; gan 2000 epochs, lr x0.1 every 1000).
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    init_epochs: int = 100
    gan_epochs: int = 2000
    decay_every: int = 1000  # epochs between learning-rate decays (gan stage)
    decay_rate: float = 0.1

    # Losses. g = pixel_weight * MSE(sr, hr) + perceptual_weight * MSE(vgg(sr)*s, vgg(hr)*s)
    #             + adversarial_weight * BCE(D(sr), 1),  s = feature_scale.
    pixel_weight: float = 1.0
    perceptual_weight: float = 2e-6  # TensorLayer: 2e-6 on raw pool4 features
    feature_scale: float = 1.0  # paper: VGG feature maps rescaled by 1/12.75
    adversarial_weight: float = 1e-3
    # Stage gan normalises the generator with the BatchNorm statistics it ended stage init with
    # (inference mode: gamma and beta still train) instead of each batch's. Not in either recipe.
    gan_freeze_bn: bool = False
    vgg_layer: str = "block4_pool"  # TensorLayer: pool4 (14x14x512 at 224x224)
    vgg_input_size: Optional[int] = 224  # TensorLayer resizes to 224x224; None or 0 = HR patch

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Returns the recipe of `preset` ("tensorlayer" or "paper") with `overrides` applied."""
        if preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        values = dict(_PAPER if preset == "paper" else {})
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(preset=preset, **values)


# Ledig et al. 2017: SRResNet/SRGAN with 96x96 HR patches, VGG54 on the patch, features / 12.75,
# content loss = VGG only for SRGAN-VGG54, 1e-3 adversarial; 1e5 updates at 1e-4 then 1e5 at 1e-5.
_PAPER = dict(
    crop_size=96,
    bn_momentum=0.99,  # Keras default; the paper does not state one
    bn_epsilon=1e-3,
    pixel_weight=0.0,
    perceptual_weight=1.0,
    feature_scale=1.0 / 12.75,
    vgg_layer="block5_conv4",
    vgg_input_size=None,
)


@dataclasses.dataclass(frozen=True)
class Degradation:
    """Ranges of the randomised LR degradation of `--degradation realistic` (degradations.py).

    The stages and their ranges follow the degradation model of Real-ESRGAN (Wang et al. 2021,
    section 3.1; options/train_realesrnet_x4plus.yml of xinntao/Real-ESRGAN), made milder on
    purpose, because our shipped `srresnet-real` must keep the clean protocol within 1 dB of the
    bicubic-trained SRResNet (docs/training.md has the measurements behind these choices):
    one order instead of two; Gaussian kernels only (no generalised, plateau or sinc kernels); the
    x4 downsample is the only resize; each stage is skipped with some probability, so clean-ish LR
    keeps a share of the data; blur and noise use Real-ESRGAN's second-order (milder) ranges.
    """

    blur_prob: float = 0.25  # Real-ESRGAN always blurs (second order: 0.8)
    isotropic_prob: float = 0.65  # Real-ESRGAN: iso 0.45 and aniso 0.25 of its Gaussian kernels
    blur_sigma: Tuple[float, float] = (0.2, 1.5)  # HR pixels; Real-ESRGAN blur_sigma2
    kernel_size: int = 21  # Real-ESRGAN's largest kernel (blur_kernel_size)
    noise_prob: float = 0.25  # Real-ESRGAN always adds noise
    gaussian_noise_prob: float = 0.5  # else Poisson (Real-ESRGAN gaussian_noise_prob)
    noise_range: Tuple[float, float] = (1.0, 15.0)  # sigma in 8-bit levels (noise_range2: 1-25)
    poisson_scale_range: Tuple[float, float] = (0.05, 1.0)  # (poisson_scale_range2: 0.05-2.5)
    gray_noise_prob: float = 0.4  # (gray_noise_prob)
    jpeg_prob: float = 0.9  # Real-ESRGAN always compresses
    jpeg_range: Tuple[int, int] = (30, 95)  # quality (jpeg_range)


DEGRADATIONS = ("bicubic", "realistic")  # --degradation of train.py
EVAL_DEGRADATIONS = ("jpeg", "blur", "noise")  # --degradation KIND:VALUE of evaluate


def parse_degradation(spec):
    """Parses evaluate's `--degradation KIND:VALUE` (see degradations.degrade_lr).

    Args:
      spec: "jpeg:Q" (quality 1..100), "blur:S" (Gaussian sigma in LR pixels, > 0) or "noise:S"
        (Gaussian sigma in 8-bit levels, > 0).
    Returns:
      (kind, value): value is an int for jpeg, a float otherwise.
    Raises:
      ValueError: naming the flag and the bad value.
    """
    kind, _, value = spec.partition(":")
    bad = ValueError(f"--degradation must be jpeg:QUALITY (1-100), blur:SIGMA or noise:SIGMA "
                     f"(> 0), got {spec!r}")
    if kind not in EVAL_DEGRADATIONS or not value:
        raise bad
    try:
        number = int(value) if kind == "jpeg" else float(value)
    except ValueError:
        raise bad from None
    if not (1 <= number <= 100 if kind == "jpeg" else 0 < number < float("inf")):
        raise bad
    return kind, number


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one `train.py` run needs; built by the CLI from flags, validated before any work."""

    stage: str
    checkpoint_dir: str
    hr_dir: Optional[str] = None
    tfds: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    recipe: Recipe = Recipe()
    steps: Optional[int] = None  # total steps of the stage; overrides epochs
    epochs: Optional[int] = None  # total epochs of the stage; default from the recipe
    seed: int = 0
    augment: bool = True  # random horizontal flip and 90-degree rotation
    cache: bool = False  # keep decoded training images in RAM
    vgg_weights: str = "imagenet"  # "imagenet" | "none" | path to a .h5 file
    log_dir: Optional[str] = None  # default: <checkpoint_dir>/logs/<stage>
    save_every: int = 500  # steps between checkpoints (a final one is always written)
    summary_every: int = 50  # steps between TensorBoard scalar summaries
    image_every: int = 500  # steps between TensorBoard image summaries
    eval_every: int = 500  # steps between validations (when an evaluator is given)
    max_minutes: Optional[float] = None  # wall-clock training budget of the stage, over all runs
    max_to_keep: int = 3
    from_scratch: bool = False  # gan stage without init weights
    degradation: str = "bicubic"  # LR patches: bicubic (the recipe) | realistic (degradations.py)
    init_from: Optional[str] = None  # srresnet | srgan | a generator .keras file (fine-tuning)
    init_discriminator: Optional[str] = None  # gan stage: a discriminator .keras file
    deterministic: bool = False
    debug_nan_step: Optional[int] = None  # test hook: this step's batch is made NaN
    precision: str = "auto"  # auto | float32 | mixed_bfloat16 | mixed_float16 (see precision.py)
    strategy: str = "default"  # default | mirrored | multi_worker | tpu (see distribute.py)
    devices: Optional[Tuple[str, ...]] = None  # mirrored: e.g. ("/gpu:0", "/gpu:1"); default: all GPUs
    tpu: Optional[str] = None  # tpu: TPUClusterResolver's tpu (name, grpc:// address or "local")

    @property
    def stage_dir(self):
        return os.path.join(self.checkpoint_dir, self.stage)

    @property
    def resolved_log_dir(self):
        return self.log_dir or os.path.join(self.checkpoint_dir, "logs", self.stage)

    def validate(self):
        """Raises ValueError / FileNotFoundError naming the bad flag, before any work starts."""
        r = self.recipe
        if self.stage not in STAGES:
            raise ValueError(f"--stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if (self.hr_dir is None) == (self.tfds is None):
            raise ValueError("give exactly one of --hr_dir or --tfds")
        if self.hr_dir is not None and not os.path.isdir(self.hr_dir):
            raise FileNotFoundError(f"--hr_dir {self.hr_dir!r} is not a directory")
        if self.tfds is not None and not self.tfds.startswith("div2k/"):
            raise ValueError(f"--tfds must name a DIV2K config such as div2k/bicubic_x4, got {self.tfds!r}")
        if r.crop_size <= 0 or r.crop_size % SCALE:
            raise ValueError(f"--crop_size must be a positive multiple of {SCALE}, got {r.crop_size}")
        if r.batch_size <= 0:
            raise ValueError(f"--batch_size must be positive, got {r.batch_size}")
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"--steps must be >= 0, got {self.steps}")
        if self.epochs is not None and self.epochs < 0:
            raise ValueError(f"--epochs must be >= 0, got {self.epochs}")
        for name in ("save_every", "summary_every", "image_every", "eval_every", "max_to_keep"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"--max_minutes must be positive, got {self.max_minutes}")
        if r.learning_rate <= 0:
            raise ValueError(f"--learning_rate must be positive, got {r.learning_rate}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got "
                             f"{self.precision!r}")
        if self.degradation not in DEGRADATIONS:
            raise ValueError(f"--degradation must be one of {', '.join(DEGRADATIONS)}, got "
                             f"{self.degradation!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got "
                             f"{self.strategy!r}")
        if self.devices is not None and self.strategy != "mirrored":
            raise ValueError(f"--devices needs --strategy mirrored, got --strategy {self.strategy}")
        if self.devices is not None and not self.devices:
            raise ValueError("--devices must list at least one device, e.g. /gpu:0,/gpu:1")
        if self.tpu is not None and self.strategy != "tpu":
            raise ValueError(f"--tpu needs --strategy tpu, got --strategy {self.strategy}")
        for flag, value, names in (("--init_from", self.init_from, ("srresnet", "srgan")),
                                   ("--init_discriminator", self.init_discriminator, ())):
            if value is not None and value not in names \
                    and not (value.endswith(".keras") and os.path.isfile(value)):
                allowed = ", ".join(names + ("an existing .keras file",))
                raise FileNotFoundError(f"{flag} must be {allowed}, got {value!r}")
        if self.init_discriminator is not None and self.stage != "gan":
            raise ValueError("--init_discriminator needs --stage gan")
        weights = self.vgg_weights
        if weights not in ("imagenet", "none") and not os.path.isfile(weights):
            raise FileNotFoundError(
                f"--vgg_weights must be 'imagenet', 'none' or an existing .h5 file, got {weights!r}")
        return self

    def total_steps(self, steps_per_epoch):
        """Returns the stage's total number of steps: --steps, else epochs x steps_per_epoch."""
        if self.steps is not None:
            return self.steps
        epochs = self.epochs
        if epochs is None:
            epochs = self.recipe.init_epochs if self.stage == "init" else self.recipe.gan_epochs
        return epochs * steps_per_epoch

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
