"""Every number of the SRGAN recipe, and the resolved configuration of a training run.

Two presets exist:

* ``tensorlayer``: the recipe of github.com/tensorlayer/srgan in its TensorFlow 1 version (2018,
  TensorLayer 1.8: ``tf.placeholder`` inputs, ``Vgg19_simple_api``; last TF1 commit 34ebf0f), which
  is what this project reproduces by default. "TL <file> <name>" below cites that version.
* ``paper``: Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
  Adversarial Network" (CVPR); "paper 3.2" cites its section 3.2, "Fig. 4" its figure.

docs/training.md tabulates every field with its source and where this code differs on purpose.

Modules never write a number of the recipe themselves: they take it from a :class:`Recipe`.
"""

import dataclasses
import json
import math
import os
from typing import Optional, Tuple

SCALE = 4  # the only upscaling factor of SRGAN (both presets)
PRESETS = ("tensorlayer", "paper")
STAGES = ("init", "gan")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")  # see distribute.py
GAN_UPDATES = ("alternating", "shared")  # see Recipe.gan_update
AUGMENTS = ("none", "flip", "flip_rot90")  # see data.TrainingData
# Crops drawn per decoded image file (--crops_per_image default; docs/data.md has the measurement).
# A store or --cache reads only each crop's pixels, so there it is 1.
FILE_CROPS_PER_IMAGE = 4


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The numbers of one SRGAN recipe. Defaults are the TensorLayer recipe."""

    # Architecture (TL model.py SRGAN_g / SRGAN_d; paper Fig. 4).
    preset: str = "tensorlayer"
    num_feat: int = 64  # generator width (TL model.py SRGAN_g: n64s1 convs; paper Fig. 4 n64)
    num_block: int = 16  # residual blocks (TL model.py SRGAN_g: range(16); paper 3.2: B = 16)
    upsample_feat: int = 256  # conv width before each x2 pixel shuffle (TL SRGAN_g n256s1; Fig. 4)
    disc_feat: int = 64  # discriminator base width (TL model.py SRGAN_d: df_dim = 64; Fig. 4 n64)
    # TL model.py SRGAN_g / SRGAN_d: w_init = random_normal(stddev=0.02) on conv and dense
    # kernels, gamma_init = random_normal(1., 0.02) on BatchNorm gamma.
    init_stddev: float = 0.02
    # TL model.py SRGAN_g / SRGAN_d call BatchNormLayer without decay or epsilon: TensorLayer
    # 1.x's defaults apply (tensorlayer/layers/normalization.py: decay=0.9, epsilon=0.00001).
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    leaky_slope: float = 0.2  # TL model.py SRGAN_d: lrelu(x, 0.2); paper 2.1: alpha = 0.2
    icnr: bool = False  # ICNR init of the sub-pixel convs (Aitken et al. 2017); not in either recipe

    # Data (TL utils.py crop_sub_imgs_fn: 384x384 random crops; TL config.py: batch_size 16).
    crop_size: int = 384  # HR patch side; LR patch side is crop_size // SCALE
    batch_size: int = 16
    # Augmentation of each HR crop (see AUGMENTS). TensorLayer train.py takes random crops only
    # (its flip is commented out).
    augment: str = "none"

    # Optimisation (TL config.py: lr_init 1e-4, beta1 0.9, n_epoch_init 100, n_epoch 2000,
    # lr_decay 0.1, decay_every n_epoch / 2; TL main.py train: Adam of both networks on lr_v).
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    init_epochs: int = 100
    gan_epochs: int = 2000
    decay_every: int = 1000  # epochs between learning-rate decays (gan stage)
    decay_rate: float = 0.1
    # Step-based schedule (paper 3.2), used instead of the epochs above where set (the paper
    # preset): stage init's total updates, stage gan's total updates, and the gan update after
    # which the learning rate is multiplied by decay_rate (then again every decay_steps).
    init_steps: Optional[int] = None
    gan_steps: Optional[int] = None
    decay_steps: Optional[int] = None
    # Stage gan: "alternating" = a discriminator update, then a generator update computed
    # through the updated discriminator (TL main.py train: sess.run(d_optim) then
    # sess.run(g_optim) on every batch; paper 3.2: "We alternate updates ... k = 1").
    # "shared" = both updates from one forward pass (what the TensorLayer 2 rewrite does).
    gan_update: str = "alternating"

    # Losses. g = pixel_weight * MSE(sr, hr) + perceptual_weight * MSE(vgg(sr)*s, vgg(hr)*s)
    #             + adversarial_weight * BCE(D(sr), 1),  s = feature_scale.
    # TL main.py train: g_loss = mse_loss + vgg_loss + g_gan_loss, with mse_loss of weight 1,
    # vgg_loss = 2e-6 * MSE of the pool4 features, g_gan_loss = 1e-3 * sigmoid cross-entropy.
    pixel_weight: float = 1.0
    perceptual_weight: float = 2e-6
    feature_scale: float = 1.0  # paper 3.2: VGG feature maps rescaled by 1/12.75
    adversarial_weight: float = 1e-3  # also paper 2.2, eq. 3
    # Stage gan normalises the generator with the BatchNorm statistics it ended stage init with
    # (inference mode: gamma and beta still train) instead of each batch's. Not in either recipe.
    gan_freeze_bn: bool = False
    # The same for stage init: the generator normalises with its moving statistics and keeps
    # them. For fine-tuning a trained generator (`--init_from`) on small batches of a shifted
    # input distribution (`--degradation realistic`); meaningless from scratch. Not in a recipe.
    init_freeze_bn: bool = False
    # TL model.py Vgg19_simple_api returns `conv`, the pool4 output (14x14x512 at 224x224), and
    # TL main.py train resizes SR and HR to 224x224 (bilinear) before VGG19.
    vgg_layer: str = "block4_pool"
    vgg_input_size: Optional[int] = 224  # None or 0 = the HR patch itself

    @classmethod
    def from_preset(cls, preset, **overrides):
        """Returns the recipe of `preset` ("tensorlayer" or "paper") with `overrides` applied."""
        if preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        values = dict(_PAPER if preset == "paper" else {})
        given = {k: v for k, v in overrides.items() if v is not None}
        if "decay_every" in given and "decay_steps" not in given:
            values.pop("decay_steps", None)  # a decay given in epochs replaces the preset's steps
        values.update(given)
        return cls(preset=preset, **values)

    def stage_steps(self, stage):
        """Returns the recipe's total updates of `stage` ("init" or "gan"), or None (epochs)."""
        return self.init_steps if stage == "init" else self.gan_steps

    def stage_epochs(self, stage):
        """Returns the recipe's epochs of `stage` ("init" or "gan")."""
        return self.init_epochs if stage == "init" else self.gan_epochs

    def decay_step(self, steps_per_epoch):
        """Returns the gan update count between learning-rate decays (>= 1).

        Args:
          steps_per_epoch: int, updates per epoch of the training data.
        """
        if self.decay_steps is not None:
            return max(1, self.decay_steps)
        return max(1, self.decay_every * steps_per_epoch)


# Ledig et al. 2017. Values not given here are the TensorLayer recipe's (above), which the paper
# shares (Adam beta1 0.9 and lr 1e-4 in 3.2, batch 16 in 3.2, adversarial 1e-3 in 2.2).
_PAPER = dict(
    crop_size=96,  # paper 3.2: "16 random 96 x 96 HR sub images"
    # The paper names no flips or rotations (350k ImageNet photos need none); on a DIV2K-size set
    # the 8 orientations are what SRGAN reimplementations train with (BasicSR
    # train_MSRGAN_x4.yml: use_hflip and use_rot), so this preset takes them.
    augment="flip_rot90",
    bn_momentum=0.99,  # Keras default; the paper does not state one
    bn_epsilon=1e-3,  # Keras default; the paper does not state one
    init_steps=10 ** 6,  # paper 3.2: SRResNet "10^6 update iterations" at 10^-4
    gan_steps=2 * 10 ** 5,  # paper 3.2: SRGAN "10^5 update iterations at 10^-4 and another
    decay_steps=10 ** 5,  #   10^5 iterations at a lower rate of 10^-5"
    pixel_weight=0.0,  # paper 2.2.1 / 3.4: SRGAN-VGG54's content loss is the VGG loss alone
    perceptual_weight=1.0,
    feature_scale=1.0 / 12.75,  # paper 3.2: VGG feature maps rescaled by 1/12.75
    vgg_layer="block5_conv4",  # paper 2.2.1: phi_5,4, the 4th conv (after ReLU) before pool5
    vgg_input_size=None,  # the paper computes VGG on the 96x96 patch itself
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


# Generators shipped in the repository's weights/ (docs/results.md): name -> file. srresnet-real
# is the srresnet fine-tuned with --degradation realistic (docs/training.md).
SHIPPED_MODELS = {"srresnet": "srresnet_x4.keras", "srgan": "srgan_x4.keras",
                  "srresnet-real": "srresnet_real_x4.keras"}
DEGRADATIONS = ("bicubic", "realistic")  # --degradation of train.py (or a KIND:VALUE below)
EVAL_DEGRADATIONS = ("jpeg", "blur", "noise")  # --degradation KIND:VALUE of evaluate and train.py


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


def blur_radius(sigma):
    """Radius in pixels of the Gaussian kernel of a fixed `blur:SIGMA` (3 sigma, rounded up)."""
    return math.ceil(3 * sigma)


def parse_train_degradation(spec, crop_size):
    """Parses train.py's `--degradation`: bicubic, realistic, or one fixed KIND:VALUE.

    Args:
      spec: the flag's value.
      crop_size: the HR crop side; a blur must reach less than the LR crop's side.
    Returns:
      "bicubic" or "realistic" as given, else (kind, value) as `parse_degradation` gives it: the
      protocol's bicubic LR, rounded to 8 bits, then that one degradation (as evaluate scores).
    Raises:
      ValueError: naming the flag and the bad value.
    """
    if spec in DEGRADATIONS:
        return spec
    try:
        kind, value = parse_degradation(spec)
    except ValueError:
        raise ValueError(f"--degradation must be {', '.join(DEGRADATIONS)}, jpeg:QUALITY "
                         f"(1-100), blur:SIGMA or noise:SIGMA (> 0), got {spec!r}") from None
    reach = blur_radius(value)  # LR pixels
    if kind == "blur" and reach >= crop_size // SCALE:
        raise ValueError(f"--degradation {spec} reaches {reach} LR pixels: --crop_size must be "
                         f"above {SCALE * reach}, got {crop_size}")
    return kind, value


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one `train.py` run needs; built by the CLI from flags, validated before any work."""

    stage: str
    checkpoint_dir: str
    hr_dir: Optional[str] = None
    tfds: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    store: Optional[str] = None  # a decode-once store (python -m srgan_tf.prepare)
    recipe: Recipe = Recipe()
    steps: Optional[int] = None  # total steps of the stage; overrides epochs
    epochs: Optional[int] = None  # total epochs of the stage; default from the recipe
    seed: int = 0
    augment: Optional[str] = None  # one of AUGMENTS; None: the recipe's
    cache: bool = False  # keep decoded training images in RAM
    crops_per_image: Optional[int] = None  # None: FILE_CROPS_PER_IMAGE for files, else 1
    vgg_weights: str = "imagenet"  # "imagenet" | "none" | path to a .h5 file
    log_dir: Optional[str] = None  # default: <checkpoint_dir>/logs/<stage>
    save_every: int = 500  # steps between checkpoints (a final one is always written)
    summary_every: int = 50  # steps between TensorBoard scalar summaries
    image_every: int = 500  # steps between TensorBoard image summaries
    eval_every: int = 500  # steps between validations (when an evaluator is given)
    max_minutes: Optional[float] = None  # wall-clock training budget of the stage, over all runs
    max_to_keep: int = 3
    from_scratch: bool = False  # gan stage without init weights
    degradation: str = "bicubic"  # LR patches: bicubic (the recipe) | realistic | KIND:VALUE
    init_from: Optional[str] = None  # srresnet | srgan | a generator .keras file (fine-tuning)
    init_discriminator: Optional[str] = None  # gan stage: a discriminator .keras file
    deterministic: bool = False
    jit_compile: bool = False  # compile each replica's train step with XLA (see Trainer.step_function)
    debug_nan_step: Optional[int] = None  # test hook: this step's batch is made NaN
    precision: str = "auto"  # auto | float32 | mixed_bfloat16 | mixed_float16 (see precision.py)
    strategy: str = "default"  # default | mirrored | multi_worker | tpu (see distribute.py)
    devices: Optional[Tuple[str, ...]] = None  # mirrored: e.g. ("/gpu:0", "/gpu:1"); default: all GPUs
    tpu: Optional[str] = None  # tpu: TPUClusterResolver's tpu (name, grpc:// address or "local")

    def __post_init__(self):
        if self.augment is None:
            object.__setattr__(self, "augment", self.recipe.augment)
        if self.crops_per_image is None:
            reads_files = self.store is None and not self.cache
            object.__setattr__(self, "crops_per_image", FILE_CROPS_PER_IMAGE if reads_files else 1)

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
        sources = [name for name in ("hr_dir", "tfds", "store") if getattr(self, name) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of --hr_dir, --tfds or --store"
                             + (f", got {' and '.join('--' + s for s in sources)}" if sources else ""))
        if self.store is not None and not os.path.isdir(self.store):
            raise FileNotFoundError(f"--store {self.store!r} is not a directory")
        if self.hr_dir is not None and not os.path.isdir(self.hr_dir):
            raise FileNotFoundError(f"--hr_dir {self.hr_dir!r} is not a directory")
        if self.tfds is not None and not self.tfds.startswith("div2k/"):
            raise ValueError(f"--tfds must name a DIV2K config such as div2k/bicubic_x4, got {self.tfds!r}")
        if r.crop_size <= 0 or r.crop_size % SCALE:
            raise ValueError(f"--crop_size must be a positive multiple of {SCALE}, got {r.crop_size}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"--augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if self.crops_per_image < 1:
            raise ValueError(f"--crops_per_image must be >= 1, got {self.crops_per_image}")
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
        if r.gan_update not in GAN_UPDATES:
            raise ValueError(f"--gan_update must be one of {', '.join(GAN_UPDATES)}, got "
                             f"{r.gan_update!r}")
        for name in ("init_steps", "gan_steps", "decay_steps"):
            if getattr(r, name) is not None and getattr(r, name) <= 0:
                raise ValueError(f"recipe {name} must be positive, got {getattr(r, name)}")
        if r.learning_rate <= 0:
            raise ValueError(f"--learning_rate must be positive, got {r.learning_rate}")
        if not 0 <= r.bn_momentum < 1:
            raise ValueError(f"--bn_momentum must be in [0, 1), got {r.bn_momentum}")
        if r.vgg_input_size is not None and r.vgg_input_size < 0:
            raise ValueError(f"--vgg_input_size must be >= 0 (0: the crop itself), got "
                             f"{r.vgg_input_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got "
                             f"{self.precision!r}")
        parse_train_degradation(self.degradation, r.crop_size)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got "
                             f"{self.strategy!r}")
        if self.devices is not None and self.strategy != "mirrored":
            raise ValueError(f"--devices needs --strategy mirrored, got --strategy {self.strategy}")
        if self.devices is not None and not self.devices:
            raise ValueError("--devices must list at least one device, e.g. /gpu:0,/gpu:1")
        if self.tpu is not None and self.strategy != "tpu":
            raise ValueError(f"--tpu needs --strategy tpu, got --strategy {self.strategy}")
        for flag, value, names in (("--init_from", self.init_from, tuple(SHIPPED_MODELS)),
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
        """Returns the stage's total number of steps.

        --steps, else --epochs x steps_per_epoch, else the recipe's steps of the stage (paper
        preset), else the recipe's epochs x steps_per_epoch (tensorlayer preset).
        """
        if self.steps is not None:
            return self.steps
        if self.epochs is not None:
            return self.epochs * steps_per_epoch
        steps = self.recipe.stage_steps(self.stage)
        if steps is not None:
            return steps
        return self.recipe.stage_epochs(self.stage) * steps_per_epoch

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
