"""Evaluation of a x4 super-resolver with the protocol of the SR papers' tables.

For every HR image of a folder: crop to a multiple of 4 (modcrop); make the LR by antialiased
bicubic x4 downsampling rounded to uint8, as if saved; super-resolve the whole image at once
(fully convolutional, no tiling, no fixed size); round the output to uint8; score PSNR and SSIM
on the Y channel of BT.601 YCbCr with a 4-pixel border removed, plus RGB PSNR (same border).
Grayscale HR images are scored as RGB with three equal channels.

`compare` evaluates several super-resolvers on the same folders and can write the HTML
comparison report (srgan_tf/report.py). `python -m srgan_tf.evaluate --hr_dir DIR ...` runs the
CLI (srgan_tf/cli/evaluate.py).
"""

import os
import time

import numpy as np
import tensorflow as tf
from absl import logging
from PIL import Image

from srgan_tf import degradations, errors, files, metrics, report
from srgan_tf.config import SCALE
from srgan_tf.imaging import (bicubic_downsample, bicubic_upsample, modcrop, read_rgb,
                              signed_to_uint8, uint8_to_signed)
from srgan_tf.upscale.image_io import INPUT_EXTENSIONS
from srgan_tf.upscale.tiling import upscale_array

CROP_BORDER = SCALE  # pixels shaved from each side before scoring, as in the published tables
SCORES = ("psnr_y", "ssim_y", "psnr_rgb")
ARTIFACT_SCORES = ("color_shift", "hf_ratio", "checkerboard")  # with artifacts=True
NEAR_BICUBIC_DB = 0.1  # a model this close to bicubic (Y PSNR) is reported loudly
PROTOCOL = (f"x{SCALE}: HR cropped to a multiple of {SCALE}, LR by antialiased bicubic "
            "downsampling rounded to uint8, whole-image inference, output rounded to uint8; "
            f"PSNR and SSIM (11x11 Gaussian, sigma 1.5) on the Y of BT.601 YCbCr, "
            f"{CROP_BORDER}-px border removed; PSNR-RGB with the same border")


def protocol_lr(hr_u8):
    """Makes the benchmark LR of an HR image: antialiased bicubic x4, rounded to uint8.

    Args:
      hr_u8: uint8 [H, W, 3] in [0, 255], H and W multiples of 4 (see `imaging.modcrop`).
    Returns:
      numpy uint8 [H/4, W/4, 3].
    """
    return signed_to_uint8(bicubic_downsample(uint8_to_signed(hr_u8))).numpy()


def score(sr_u8, hr_u8, crop_border=CROP_BORDER):
    """Scores an SR image against its HR image with the papers' protocol.

    Args:
      sr_u8, hr_u8: uint8 [H, W, 3] in [0, 255].
      crop_border: pixels removed from each side.
    Returns:
      dict: psnr_y (dB), ssim_y, psnr_rgb (dB).
    """
    return {"psnr_y": metrics.psnr(sr_u8, hr_u8, crop_border, test_y_channel=True),
            "ssim_y": metrics.ssim(sr_u8, hr_u8, crop_border, test_y_channel=True),
            "psnr_rgb": metrics.psnr(sr_u8, hr_u8, crop_border, test_y_channel=False)}


def list_images(hr_dir):
    """Returns the sorted image files directly inside `hr_dir`.

    Raises:
      FileNotFoundError / ValueError: naming --hr_dir when it is missing or holds no image.
    """
    if not os.path.isdir(hr_dir):
        raise FileNotFoundError(f"--hr_dir {hr_dir} is not a directory")
    paths = sorted(os.path.join(hr_dir, name) for name in os.listdir(hr_dir)
                   if name.lower().endswith(INPUT_EXTENSIONS))
    if not paths:
        raise ValueError(f"--hr_dir {hr_dir} holds no image ({', '.join(INPUT_EXTENSIONS)})")
    return paths


def set_name(hr_dir):
    """Returns the name a folder's results are filed under: its base name (Set5, Set14...)."""
    return os.path.basename(os.path.normpath(os.path.abspath(hr_dir)))


def artifact_scores(sr_u8, lr_u8, hr_u8, crop_border=CROP_BORDER):
    """Colour shift (0..255), high-frequency energy ratio SR/HR and checkerboard ratio.

    See metrics.color_shift, metrics.high_frequency_ratio and metrics.checkerboard_ratio; the
    checkerboard residual is taken against bicubic upsampling of the same LR.
    """
    bicubic = signed_to_uint8(bicubic_upsample(uint8_to_signed(lr_u8))).numpy()
    return {"color_shift": metrics.color_shift(sr_u8, hr_u8, crop_border),
            "hf_ratio": metrics.high_frequency_ratio(sr_u8, hr_u8, crop_border),
            "checkerboard": metrics.checkerboard_ratio(sr_u8, bicubic, hr_u8)}


def _evaluate_image(sr_fn, baseline_fn, hr, crop_border, artifacts=False, degradation=None):
    """Returns (sr uint8 [H, W, 3], seconds of SR, scores dict) for one modcropped HR image."""
    lr = protocol_lr(hr)
    if degradation is not None:
        lr = degradations.degrade_lr(lr, degradation)
    start = time.perf_counter()
    try:
        sr = upscale_array(sr_fn, lr, tile=0)
    except tf.errors.OpError as e:
        raise ValueError(f"the model failed: {errors.first_line(e)}") from None
    seconds = time.perf_counter() - start
    row = {**score(sr, hr, crop_border), "size": [hr.shape[1], hr.shape[0]]}
    if artifacts:
        row.update(artifact_scores(sr, lr, hr, crop_border))
    base_sr = None
    if baseline_fn is not None:
        base_sr = upscale_array(baseline_fn, lr, tile=0)
        row.update({f"bicubic_{k}": v for k, v in score(base_sr, hr, crop_border).items()})
    return sr, base_sr, seconds, row


def _mean(rows, key):
    return float(np.mean([row[key] for row in rows])) if rows else float("nan")


def evaluate(sr_fn, hr_dirs, save_dir=None, baseline_fn=None, crop_border=CROP_BORDER,
             artifacts=False, overwrite=False, on_image=None, degradation=None):
    """Evaluates a super-resolver on folders of HR images with the papers' protocol.

    Args:
      sr_fn: uint8 [h, w, 3] -> uint8 [4h, 4w, 3] (see `upscale.keras_resolver`,
        `upscale.bicubic_resolver`), run once per image on the whole LR image.
      hr_dirs: list of folders of HR images; each is one set named after the folder.
      save_dir: when given, SR images are written to `save_dir`/<set>/<stem>_x4.png; an
        existing file there is kept (one log line) unless `overwrite`.
      baseline_fn: optional second super-resolver (the bicubic baseline) scored alongside:
        each image and set then also gets "bicubic_<score>" entries.
      crop_border: pixels shaved from each side before scoring.
      artifacts: also compute ARTIFACT_SCORES per image (see `artifact_scores`) and their means.
      overwrite: replace existing files in `save_dir`.
      on_image: optional function called after each image as on_image(set name, file name,
        hr, bicubic, sr): uint8 [H, W, 3] arrays, bicubic None without `baseline_fn`.
      degradation: optional (kind, value) from `config.parse_degradation`: the protocol's LR is
        degraded so (JPEG, blur or noise) before it is super-resolved; scores stay against HR.
    Returns:
      {set name: {"psnr_y", "ssim_y", "psnr_rgb": means (NaN when no image was scored),
       "num_images", "seconds" (SR time), "images_per_s", ["bicubic": {means}],
       "images": [{"name", "psnr_y", "ssim_y", "psnr_rgb", "size": [W, H] after modcrop,
       ["bicubic_psnr_y", ...]}, ...], "skipped": [{"name", "reason"}, ...]}}.
      A file that can't be read or is smaller than 4 x 4 is not scored: it is listed under
      "skipped" with the reason (see `num_skipped`) and the others are scored.
    Raises:
      ValueError / FileNotFoundError: naming the folder, or the file the model failed on.
    """
    names = [set_name(d) for d in hr_dirs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"--hr_dir folders must have distinct names, {duplicates[0]} repeats")
    paths_by_set = {name: list_images(d) for name, d in zip(names, hr_dirs)}
    results = {}
    for name, paths in paths_by_set.items():
        rows, skipped, seconds = [], [], 0.0
        for path in paths:
            try:
                hr = modcrop(read_rgb(path), SCALE)
                if min(hr.shape[:2]) < SCALE:
                    raise ValueError(f"cannot evaluate {path}: smaller than {SCALE} x {SCALE}")
            except ValueError as e:
                logging.error("%s: skipped, %s", name, e)
                skipped.append({"name": os.path.basename(path), "reason": str(e)})
                continue
            try:
                sr, base_sr, sr_seconds, row = _evaluate_image(sr_fn, baseline_fn, hr,
                                                               crop_border, artifacts,
                                                               degradation)
            except ValueError as e:
                raise ValueError(f"cannot evaluate {path}: {e}") from None
            seconds += sr_seconds
            row = {"name": os.path.basename(path), **row}
            rows.append(row)
            logging.info("%s/%s: PSNR-Y %.2f dB, SSIM-Y %.4f", name, row["name"], row["psnr_y"],
                         row["ssim_y"])
            if save_dir is not None:
                _save_png(sr, os.path.join(save_dir, name, os.path.splitext(row["name"])[0]
                                           + "_x4.png"), overwrite)
            if on_image is not None:
                on_image(name, row["name"], hr, base_sr, sr)
        result = {k: _mean(rows, k) for k in SCORES + (ARTIFACT_SCORES if artifacts else ())}
        if degradation is not None:
            result["degradation"] = "{}:{}".format(*degradation)
        result.update(num_images=len(rows), seconds=seconds,
                      images_per_s=len(rows) / seconds if seconds > 0 else float("inf"))
        if baseline_fn is not None:
            result["bicubic"] = {k: _mean(rows, f"bicubic_{k}") for k in SCORES}
            if _near_bicubic(result):
                logging.warning(
                    "%s: the model scores %.2f dB PSNR-Y against %.2f dB for bicubic, less than "
                    "%.1f dB better: is it trained, and was it fed the right LR?", name,
                    result["psnr_y"], result["bicubic"]["psnr_y"], NEAR_BICUBIC_DB)
        result["images"] = rows
        result["skipped"] = skipped
        results[name] = result
        logging.info("%s: %d images, PSNR-Y %.2f dB, SSIM-Y %.4f, PSNR-RGB %.2f dB, %.2f images/s",
                     name, len(rows), result["psnr_y"], result["ssim_y"], result["psnr_rgb"],
                     result["images_per_s"])
    return results


def _near_bicubic(result):
    return "bicubic" in result and result["psnr_y"] - result["bicubic"]["psnr_y"] < NEAR_BICUBIC_DB


def near_bicubic(results):
    """Returns the names of sets where the model is less than NEAR_BICUBIC_DB above bicubic."""
    return [name for name, result in results.items() if _near_bicubic(result)]


def compare(resolvers, hr_dirs, baseline_fn=None, save_dir=None, report_dir=None,
            overwrite=False, crop_border=CROP_BORDER, artifacts=False, degradation=None):
    """Evaluates one or several super-resolvers on the same folders, optionally with a report.

    Args:
      resolvers: {label: sr_fn} in display order (see `evaluate`); the label "bicubic" with
        no `baseline_fn` is the bicubic baseline evaluated on its own.
      hr_dirs, crop_border, artifacts, degradation: as for `evaluate`.
      baseline_fn: the bicubic baseline scored beside every model, or None.
      save_dir: SR images go to `save_dir`/<set>/<stem>_x4.png; one resolver only.
      report_dir: when given, the HTML comparison report is written there (see `report`).
      overwrite: replace an earlier report in `report_dir` and earlier images in `save_dir`.
    Returns:
      {label: what `evaluate` returns for that resolver}.
    Raises:
      ValueError / FileNotFoundError / FileExistsError: naming the flag, folder or file.
    """
    if save_dir is not None and len(resolvers) > 1:
        raise ValueError(f"--save_dir takes one model, got {len(resolvers)}: "
                         f"{', '.join(resolvers)}")
    writer = report.ReportWriter(report_dir, overwrite, crop_border) if report_dir else None
    try:
        results = {}
        for label, sr_fn in resolvers.items():
            logging.info("evaluating %s on %s", label, ", ".join(map(str, hr_dirs)))
            on_image = None if writer is None else _report_images(writer, label)
            results[label] = evaluate(sr_fn, hr_dirs, save_dir=save_dir, baseline_fn=baseline_fn,
                                      crop_border=crop_border, artifacts=artifacts,
                                      overwrite=overwrite, on_image=on_image,
                                      degradation=degradation)
        if writer is not None:
            writer.write(results, PROTOCOL)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    return results


def _report_images(writer, label):
    """Returns the `on_image` function that hands one resolver's images to a ReportWriter."""
    def on_image(set_name, name, hr, bicubic, sr):
        if bicubic is None:  # no baseline: the resolver is the bicubic baseline itself
            writer.add_image(set_name, name, hr, sr)
        else:
            writer.add_image(set_name, name, hr, bicubic, label, sr)
    return on_image


def num_skipped(results):
    """Returns how many files `evaluate` skipped over all sets."""
    return sum(len(result["skipped"]) for result in results.values())


def _save_png(image_u8, path, overwrite):
    """Writes uint8 [H, W, 3] as PNG whole (`files.written_whole`); keeps an existing file
    (one log line) unless `overwrite`."""
    if not overwrite and os.path.lexists(path):
        logging.info("%s exists, not replaced (--overwrite replaces it)", path)
        return
    with files.written_whole(path, overwrite) as temp:
        Image.fromarray(image_u8).save(temp, format="PNG")
