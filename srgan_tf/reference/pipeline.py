"""The reference CPU run: stage init and stage gan on a time budget, then the benchmark tables.

`python -m srgan_tf.reference --hr_dir ../shared/data/SunHays80 --run_dir runs/reference
--init_minutes 75 --gan_minutes 30` trains, evaluates bicubic / init / gan on the benchmark
folders and writes RUN/results.json and RUN/results.md. Every part resumes: rerunning the command
continues the stage whose budget is not spent, then evaluates again.
"""

import dataclasses
import json
import os
from typing import Optional

import keras
from absl import logging

from srgan_tf import evaluate as evaluate_lib
from srgan_tf import files, plots, precision
from srgan_tf import trainer as trainer_lib
from srgan_tf.config import TrainConfig
from srgan_tf.data import list_images
from srgan_tf.upscale.resolvers import bicubic_resolver, keras_resolver

VAL_EVERY_NTH = 20  # every 20th training image (sorted) is held out for the validation curve
# Published x4 PSNR-Y / SSIM-Y (Ledig et al. 2017, Table 2; bicubic as most SR papers report it).
PUBLISHED = {
    "bicubic (published)": {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027)},
    "SRResNet (paper, 1M GPU iterations)": {"Set5": (32.05, 0.9019), "Set14": (28.49, 0.8184)},
    "SRGAN (paper)": {"Set5": (29.40, 0.8472), "Set14": (26.02, 0.7397)},
}
COMPARISON_IMAGES = ("baboon.png", "comic.png", "zebra.png", "monarch.png")
BEST_FILE = "best_generator.keras"  # stage init: the generator of the best validation PSNR-Y


@dataclasses.dataclass(frozen=True)
class ReferenceConfig:
    """What the reference run trains and evaluates."""

    hr_dir: str
    run_dir: str
    eval_dirs: tuple
    recipe: object  # config.Recipe
    init_minutes: float = 75.0
    gan_minutes: float = 30.0
    init_learning_rate: float = 2e-4
    gan_learning_rate: float = 1e-4
    vgg_weights: str = "imagenet"
    seed: int = 0
    eval_every: int = 250
    save_every: int = 250
    precision: str = "auto"
    gan_batch_size: Optional[int] = None  # default: the recipe's batch size


def split_folder(hr_dir, run_dir):
    """Links the images of `hr_dir` into RUN/data/train and RUN/data/val (every 20th image, or
    the last one of a folder of fewer than 20).

    Returns:
      (train_dir, val_dir).
    """
    paths = list_images(hr_dir)
    train_dir, val_dir = (os.path.join(run_dir, "data", name) for name in ("train", "val"))
    for folder in (train_dir, val_dir):
        os.makedirs(folder, exist_ok=True)
    held_out = {i for i in range(len(paths)) if i % VAL_EVERY_NTH == VAL_EVERY_NTH - 1}
    held_out = held_out or {len(paths) - 1}  # a small folder still gets one validation image
    for i, path in enumerate(paths):
        folder = val_dir if i in held_out else train_dir
        link = os.path.join(folder, f"{i:04d}_{os.path.basename(path)}")
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(path), link)
    return train_dir, val_dir


def validation_evaluator(val_dir, best_path=None):
    """Returns generator -> {"psnr_y", "ssim_y"} on the whole images of `val_dir` (papers' protocol).

    With `best_path`, the generator is also saved there (a .keras file) whenever its PSNR-Y beats
    every earlier validation, recorded in `best_path`.json so the record survives a resume.
    """
    record = f"{best_path}.json" if best_path else None

    def evaluator(generator):
        result = next(iter(evaluate_lib.evaluate(keras_resolver(generator), [val_dir]).values()))
        metrics = {"psnr_y": result["psnr_y"], "ssim_y": result["ssim_y"]}
        if best_path:
            best = -1.0
            if os.path.isfile(record):
                with open(record, encoding="utf-8") as f:
                    best = json.load(f)["psnr_y"]
            if metrics["psnr_y"] > best:
                files.write_atomically(best_path, generator.save, suffix=".keras")
                files.write_json(metrics, record)
                logging.info("new best validation PSNR-Y %.2f dB: saved %s", metrics["psnr_y"],
                             best_path)
        return metrics

    return evaluator


def stage_config(config, stage, train_dir):
    """Returns the TrainConfig of one stage of the reference run."""
    minutes = config.init_minutes if stage == "init" else config.gan_minutes
    rate = config.init_learning_rate if stage == "init" else config.gan_learning_rate
    recipe = dataclasses.replace(config.recipe, learning_rate=rate)
    if stage == "gan" and config.gan_batch_size:
        recipe = dataclasses.replace(recipe, batch_size=config.gan_batch_size)
    return TrainConfig(stage=stage, checkpoint_dir=config.run_dir, hr_dir=train_dir,
                       recipe=recipe, steps=10**9, max_minutes=minutes, seed=config.seed,
                       vgg_weights=config.vgg_weights, save_every=config.save_every,
                       eval_every=config.eval_every, summary_every=25,
                       image_every=config.eval_every, max_to_keep=2,
                       precision=config.precision).validate()


def train_stages(config):
    """Trains (or resumes) both stages within their budgets; returns the validation folder."""
    train_dir, val_dir = split_folder(config.hr_dir, config.run_dir)
    for stage in ("init", "gan"):
        stage_cfg = stage_config(config, stage, train_dir)
        # Stage init keeps its best generator by validation PSNR (BatchNorm moving statistics make
        # the curve jump between evaluations); stage gan lowers PSNR by design: it keeps its last.
        best = os.path.join(config.run_dir, stage, BEST_FILE) if stage == "init" else None
        keras.utils.set_random_seed(config.seed)
        trainer_lib.Trainer(stage_cfg, evaluator=validation_evaluator(val_dir, best)).train()
    return val_dir


def stage_resolvers(config):
    """Returns [("bicubic", resolver), ("init", resolver), ("gan", resolver)].

    Stage init is represented by its best validation generator, stage gan by its last one.
    """
    resolvers = [("bicubic", bicubic_resolver())]
    for stage in ("init", "gan"):
        path = os.path.join(config.run_dir, stage, BEST_FILE)
        if not os.path.isfile(path):
            path = os.path.join(config.run_dir, stage, trainer_lib.GENERATOR_FILE)
        resolvers.append((stage, keras_resolver(keras.models.load_model(path, compile=False))))
    return resolvers


def evaluate_models(config, resolvers):
    """Evaluates bicubic and both stages' generators on the benchmark folders (with artifacts).

    Returns:
      {"bicubic" | "init" | "gan": evaluate.evaluate(...) result}.
    """
    return {name: evaluate_lib.evaluate(resolver, list(config.eval_dirs), artifacts=True)
            for name, resolver in resolvers}


def results_table(results):
    """Returns the markdown tables of `evaluate_models` results beside the published rows."""
    sets = list(results["bicubic"])
    lines = ["| method | " + " | ".join(f"{s} PSNR-Y / SSIM-Y" for s in sets) + " |",
             "| --- |" + " --- |" * len(sets)]
    for label, rows in PUBLISHED.items():
        cells = [f"{rows[s][0]:.2f} / {rows[s][1]:.4f}" if s in rows else "-" for s in sets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    names = {"bicubic": "bicubic (measured here)", "init": "ours, stage init (SRResNet)",
             "gan": "ours, stage gan (SRGAN)"}
    for key, label in names.items():
        cells = [f"{results[key][s]['psnr_y']:.2f} / {results[key][s]['ssim_y']:.4f}" for s in sets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| method | " + " | ".join(
        f"{s} colour shift / HF ratio / checkerboard" for s in sets) + " |",
        "| --- |" + " --- |" * len(sets)]
    for key, label in names.items():
        cells = [f"{results[key][s]['color_shift']:.2f} / {results[key][s]['hf_ratio']:.3f} / "
                 f"{results[key][s]['checkerboard']:.3f}" for s in sets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_figures(config, resolvers, val_bicubic_psnr):
    """Writes RUN/curves.png (needs matplotlib) and RUN/comparison.png (Set14 crops)."""
    try:
        plots.training_curves(config.run_dir, os.path.join(config.run_dir, "curves.png"),
                              val_bicubic_psnr)
    except ImportError:
        logging.warning("matplotlib is not installed (pip install '.[plots]'): no curves.png")
    images = [os.path.join(d, name) for d in config.eval_dirs for name in COMPARISON_IMAGES
              if os.path.isfile(os.path.join(d, name))]
    if not images:  # other benchmark folders: the first image of each
        images = [evaluate_lib.list_images(d)[0] for d in config.eval_dirs]
    plots.comparison_figure(resolvers[:3], images[:4], os.path.join(config.run_dir,
                                                                   "comparison.png"))


def run(config):
    """Trains both stages, evaluates, writes RUN/results.{json,md}, curves.png, comparison.png."""
    precision.set_precision(config.precision)
    val_dir = train_stages(config)
    resolvers = stage_resolvers(config)
    results = evaluate_models(config, resolvers)
    val_bicubic = next(iter(evaluate_lib.evaluate(bicubic_resolver(), [val_dir]).values()))
    results["val_bicubic_psnr_y"] = val_bicubic["psnr_y"]
    write_figures(config, resolvers, val_bicubic["psnr_y"])
    files.write_json(results, os.path.join(config.run_dir, "results.json"), indent=1)
    table = results_table({k: v for k, v in results.items() if k in ("bicubic", "init", "gan")})
    with open(os.path.join(config.run_dir, "results.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    logging.info("results:\n%s", table)
    return results
