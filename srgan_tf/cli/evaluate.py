"""`python -m srgan_tf.evaluate`: PSNR/SSIM of a generator or bicubic, by the SR papers' protocol.

  python -m srgan_tf.evaluate --checkpoint_dir runs/x --hr_dir ../shared/data/Set5 \
      --hr_dir ../shared/data/Set14 --output_json results.json
  python -m srgan_tf.evaluate --bicubic --hr_dir ../shared/data/Set5
  python -m srgan_tf.evaluate --model srresnet --model srgan --hr_dir ../shared/data/Set5 \
      --report reports/set5
"""

import math
import sys

from absl import flags, logging

from srgan_tf.cli import common
from srgan_tf.config import PRECISIONS, parse_degradation

FLAGS = flags.FLAGS


def define_flags():
    """Defines the evaluation flags (--hr_dir and at least one model source are required)."""
    flags.DEFINE_multi_string("checkpoint_dir", None, "Training run directory (latest stage is "
                              "used); repeatable, like --model, to compare several models.")
    flags.DEFINE_multi_string("model", None, "A generator .keras file, a SavedModel from "
                              "export.py, or a shipped model: srresnet, srgan or srresnet-real; repeatable to "
                              "compare several models.")
    flags.DEFINE_bool("bicubic", False, "Evaluate the bicubic baseline instead of a model.")
    flags.DEFINE_enum("precision", "float32", list(PRECISIONS),
                      "Inference precision. float32 by default so scores compare with published "
                      "ones; auto: bf16 where the hardware runs it natively.")
    flags.DEFINE_multi_string("hr_dir", None, "Folder of HR images, one set; repeatable.")
    flags.DEFINE_string("output_json", None, "Writes every score to this JSON file.")
    flags.DEFINE_string("save_dir", None, "Writes the SR images to SAVE_DIR/<set>/<stem>_x4.png "
                        "(existing files are kept unless --overwrite).")
    flags.DEFINE_bool("overwrite", False, "Replace existing files in --save_dir and an existing "
                      "--report folder.")
    flags.DEFINE_string("degradation", None, "Degrade the protocol's bicubic LR before SR: "
                        "jpeg:QUALITY, blur:SIGMA (LR pixels) or noise:SIGMA (8-bit levels).")
    flags.DEFINE_bool("artifacts", False, "Also report colour shift, high-frequency energy ratio "
                      "SR/HR and checkerboard ratio.")
    flags.DEFINE_string("report", None, "Writes an HTML comparison report to REPORT/index.html "
                        "(with its images; opens from disk, no network).")


def _format_db(value):
    return "inf" if math.isinf(value) else f"{value:.2f}"


def format_table(results, label, crop_border):
    """Returns the per-image table and per-set means of `evaluate.evaluate` results as text."""
    from srgan_tf import evaluate  # pylint: disable=import-outside-toplevel
    lines = []
    for name, result in results.items():
        baseline = "bicubic" in result
        artifacts = "checkerboard" in result
        header = f"{'image':<24} {'W x H':>9} {'PSNR-Y':>7} {'SSIM-Y':>7} {'PSNR-RGB':>8}"
        if artifacts:
            header += f" {'colour':>6} {'HF/HR':>6} {'checker':>8}"
        if baseline:
            header += f" {'bic PSNR-Y':>10} {'bic SSIM-Y':>10} {'gain dB':>7}"
        lines += ["", f"{name} ({label}; Y of BT.601 and RGB, {crop_border}-px border removed)",
                  header]
        keys = evaluate.SCORES + (evaluate.ARTIFACT_SCORES if artifacts else ())
        rows = result["images"] + [{"name": "mean", **{k: result[k] for k in keys},
                                    **{f"bicubic_{k}": v for k, v in
                                       result.get("bicubic", {}).items()}}]
        for row in rows:
            size = "x".join(str(s) for s in row["size"]) if "size" in row else ""
            line = (f"{row['name']:<24} {size:>9} {_format_db(row['psnr_y']):>7} "
                    f"{row['ssim_y']:>7.4f} {_format_db(row['psnr_rgb']):>8}")
            if artifacts:
                line += (f" {row['color_shift']:>6.2f} {row['hf_ratio']:>6.3f} "
                         f"{row['checkerboard']:>8.3f}")
            if baseline:
                line += (f" {_format_db(row['bicubic_psnr_y']):>10} "
                         f"{row['bicubic_ssim_y']:>10.4f} "
                         f"{row['psnr_y'] - row['bicubic_psnr_y']:>+7.2f}")
            lines.append(line)
        lines.append(f"{result['num_images']} images, {result['images_per_s']:.2f} images/s "
                     "(whole-image inference)")
        for skipped in result.get("skipped", []):
            lines.append(f"skipped {skipped['name']}: {skipped['reason']}")
    return "\n".join(lines)


def _check_outputs():
    """Fails before any work when an output folder exists and --overwrite isn't given."""
    from srgan_tf import report  # pylint: disable=import-outside-toplevel
    if FLAGS.report:
        try:
            report.check_destination(FLAGS.report, FLAGS.overwrite)
        except (ValueError, FileExistsError) as e:
            common.fail(str(e))


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    sources = [f"--{name}" for name in ("checkpoint_dir", "model", "bicubic") if FLAGS[name].value]
    if not sources:
        common.fail("give exactly one of --checkpoint_dir, --model or --bicubic, got none")
    if FLAGS.bicubic and len(sources) > 1:
        common.fail(f"--bicubic can't be combined with {', '.join(sources[:-1])}: bicubic is "
                    "already scored beside every model")
    labels = (FLAGS.checkpoint_dir or []) + (FLAGS.model or [])
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        common.fail(f"--checkpoint_dir/--model {repeated[0]} is given twice")
    if not FLAGS.hr_dir:
        common.fail("--hr_dir is required (a folder of HR images, repeatable)")
    degradation = None
    if FLAGS.degradation:
        try:
            degradation = parse_degradation(FLAGS.degradation)
        except ValueError as e:
            common.fail(str(e))
    _check_outputs()
    # Imported here so that --help and flag errors don't pay for TensorFlow's start-up.
    from srgan_tf import evaluate, upscale  # pylint: disable=import-outside-toplevel
    from srgan_tf import precision  # pylint: disable=import-outside-toplevel

    precision.set_precision(FLAGS.precision)  # before the model is built: layers take the policy

    try:
        for hr_dir in FLAGS.hr_dir:
            evaluate.list_images(hr_dir)
        if FLAGS.bicubic:
            resolvers, baseline_fn = {"bicubic": upscale.bicubic_resolver()}, None
        else:
            resolvers = {}
            for flag in ("checkpoint_dir", "model"):
                for path in FLAGS[flag].value or []:
                    resolvers[path], _ = upscale.load_resolver(**{flag: path})
            baseline_fn = upscale.bicubic_resolver()
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    try:
        results = evaluate.compare(resolvers, FLAGS.hr_dir, baseline_fn=baseline_fn,
                                   save_dir=FLAGS.save_dir, report_dir=FLAGS.report,
                                   overwrite=FLAGS.overwrite, artifacts=FLAGS.artifacts,
                                   degradation=degradation)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        common.fail(str(e))
    for label, result in results.items():
        degraded = f", LR degraded by {FLAGS.degradation}" if degradation else ""
        print(format_table(result, label + degraded, evaluate.CROP_BORDER))
        model = "the model" if len(results) == 1 else f"the model {label}"
        for name in evaluate.near_bicubic(result):
            print(f"WARNING: on {name} {model} is within {evaluate.NEAR_BICUBIC_DB} dB of bicubic "
                  "(or below it): is it trained, and was it fed the protocol's LR?",
                  file=sys.stderr)
    if FLAGS.output_json:
        # One model: {set: scores}, as always; several: {label: {set: scores}}.
        common.write_json(next(iter(results.values())) if len(results) == 1 else results,
                          FLAGS.output_json)
    skipped = evaluate.num_skipped(next(iter(results.values())))  # the same files for every model
    if skipped:
        print(f"error: {skipped} file(s) skipped, not scored (listed above)", file=sys.stderr)
        sys.exit(common.USAGE_EXIT_CODE)


def run():
    """Console-script entry point."""
    define_flags()
    common.run(main, __name__)


if __name__ == "__main__":
    run()
