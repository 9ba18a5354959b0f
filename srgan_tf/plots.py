"""Figures of a training run: learning curves (needs matplotlib) and side-by-side crops (PIL only)."""

import json
import os

import numpy as np
from PIL import Image, ImageDraw

from srgan_tf import evaluate
from srgan_tf.imaging import modcrop, read_rgb
from srgan_tf.trainer import LOG_FILE


def read_log(stage_dir):
    """Returns the records of RUN/<stage>/log.jsonl as a list of dicts ([] when absent)."""
    path = os.path.join(stage_dir, LOG_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def training_curves(run_dir, path, bicubic_psnr=None):
    """Plots training MSE and validation PSNR-Y over steps for stages init and gan into a PNG.

    Args:
      run_dir: training run directory (RUN/init/log.jsonl, RUN/gan/log.jsonl).
      path: output PNG.
      bicubic_psnr: optional validation PSNR-Y of bicubic, drawn as a horizontal line.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    figure, (ax_mse, ax_psnr) = pyplot.subplots(1, 2, figsize=(11, 4))
    offset = 0
    for stage, colour in (("init", "tab:blue"), ("gan", "tab:red")):
        records = read_log(os.path.join(run_dir, stage))
        train = [r for r in records if "mse" in r]
        val = [r for r in records if "val_psnr_y" in r]
        if train:
            ax_mse.plot([offset + r["step"] for r in train], [r["mse"] for r in train],
                        color=colour, lw=0.8, label=f"stage {stage}")
        if val:
            ax_psnr.plot([offset + r["step"] for r in val], [r["val_psnr_y"] for r in val],
                         "o-", color=colour, ms=3, label=f"stage {stage}")
        offset += max([r["step"] for r in records], default=0)
    if bicubic_psnr is not None:
        ax_psnr.axhline(bicubic_psnr, color="gray", ls="--", label="bicubic")
    ax_mse.set(xlabel="step", ylabel="training MSE ([-1, 1] range)", yscale="log",
               title="pixel MSE on training crops")
    ax_psnr.set(xlabel="step", ylabel="PSNR-Y (dB)", title="validation PSNR-Y (held-out photos)")
    for ax in (ax_mse, ax_psnr):
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def comparison_figure(resolvers, hr_paths, path, crop=96, scale_up=2):
    """Writes a grid of HR crops: one row per image, one column per super-resolver, then HR.

    Each image goes through the evaluation protocol (modcrop, bicubic x4 LR rounded to uint8);
    the crop is taken at the image's most detailed `crop` x `crop` window (largest HR variance on
    a coarse grid), and enlarged `scale_up` times with nearest neighbour so pixels stay visible.

    Args:
      resolvers: list of (label, uint8 [h, w, 3] -> uint8 [4h, 4w, 3]) super-resolvers.
      hr_paths: HR image files.
      path: output PNG.
    """
    labels = [label for label, _ in resolvers] + ["HR"]
    side, pad, top = crop * scale_up, 6, 22
    canvas = Image.new("RGB", (len(labels) * (side + pad) + pad, len(hr_paths) * (side + pad) + top),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(labels):
        draw.text((pad + j * (side + pad) + 4, 5), label, fill="black")
    for i, hr_path in enumerate(hr_paths):
        hr = modcrop(read_rgb(hr_path))
        y, x = _detailed_window(hr, crop)
        lr = evaluate.protocol_lr(hr)
        tiles = [resolver(lr) for _, resolver in resolvers] + [hr]
        for j, image in enumerate(tiles):
            patch = Image.fromarray(image[y:y + crop, x:x + crop]).resize((side, side),
                                                                           Image.NEAREST)
            canvas.paste(patch, (pad + j * (side + pad), top + i * (side + pad)))
    canvas.save(path)


def _detailed_window(image, crop):
    """Returns (y, x), multiples of 4, of the crop x crop window with the largest variance."""
    gray = image.astype(np.float64).mean(axis=2)
    best, best_var = (0, 0), -1.0
    for y in range(0, image.shape[0] - crop + 1, max(4, crop // 4) // 4 * 4):
        for x in range(0, image.shape[1] - crop + 1, max(4, crop // 4) // 4 * 4):
            var = gray[y:y + crop, x:x + crop].var()
            if var > best_var:
                best, best_var = (y, x), var
    return best
