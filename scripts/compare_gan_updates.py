"""Stage gan with --gan_update alternating against shared: same init generator, seed and data.

For each mode, the init generator (a .keras file, e.g. the shipped weights/srresnet_x4.keras)
becomes RUN/<mode>/init, stage gan trains STEPS steps on the training part of --hr_dir (every
20th image held out, as in `python -m srgan_tf.reference`), and the generator is scored on the
held-out images: PSNR-Y / SSIM-Y and the artifact ratios of `python -m srgan_tf.evaluate
--artifacts` (high-frequency energy SR/HR, checkerboard). Prints one Markdown table; a rerun
resumes the runs that are not finished.

  python scripts/compare_gan_updates.py --hr_dir ../shared/data/SunHays80 \
      --init_model weights/srresnet_x4.keras --run_dir runs/gan_updates --steps 20 \
      --batch_size 4 --vgg_weights none   # docs/results.md ran each mode in its own process
"""

import argparse
import dataclasses
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hr_dir", required=True, help="training photos (some held out)")
    parser.add_argument("--init_model", required=True, help="init generator, a .keras file")
    parser.add_argument("--run_dir", required=True, help="one run per mode goes in RUN/<mode>")
    parser.add_argument("--steps", type=int, default=20, help="stage gan steps of each mode")
    parser.add_argument("--crop_size", type=int, default=96)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--vgg_weights", default="imagenet")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--modes", default="alternating,shared")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    # pylint: disable=import-outside-toplevel
    import keras
    import tensorflow as tf

    from srgan_tf import evaluate, precision, reference, trainer
    from srgan_tf.config import Recipe, TrainConfig
    from srgan_tf.upscale import keras_resolver

    precision.set_precision(args.precision)
    train_dir, val_dir = reference.split_folder(args.hr_dir, args.run_dir)
    rows = {}
    for mode in args.modes.split(","):
        run = os.path.join(args.run_dir, mode)
        recipe = dataclasses.replace(
            Recipe.from_preset("tensorlayer", crop_size=args.crop_size, gan_update=mode,
                               batch_size=args.batch_size, learning_rate=args.learning_rate),
            vgg_input_size=None)
        if tf.train.latest_checkpoint(os.path.join(run, "init")) is None:
            generator = keras.models.load_model(args.init_model)
            tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator),
                                       os.path.join(run, "init"), max_to_keep=1).save(0)
        config = TrainConfig(stage="gan", checkpoint_dir=run, hr_dir=train_dir, recipe=recipe,
                             steps=args.steps, seed=0, augment=False,
                             vgg_weights=args.vgg_weights, save_every=50,
                             precision=args.precision).validate()
        keras.utils.set_random_seed(0)
        t = trainer.Trainer(config)
        t.train()
        scores = next(iter(evaluate.evaluate(keras_resolver(t.generator), [val_dir],
                                             artifacts=True).values()))
        with open(os.path.join(run, "gan", trainer.LOG_FILE), encoding="utf-8") as f:
            seconds = [json.loads(line)["train_seconds"] for line in f if '"step"' in line][-1]
        rows[mode] = {k: scores[k] for k in ("psnr_y", "ssim_y", "hf_ratio", "checkerboard")}
        rows[mode]["s_per_step"] = seconds / args.steps
    print("| update | val PSNR-Y | val SSIM-Y | HF ratio SR/HR | checkerboard | s/step |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode, r in rows.items():
        print(f"| {mode} | {r['psnr_y']:.2f} | {r['ssim_y']:.4f} | {r['hf_ratio']:.3f} | "
              f"{r['checkerboard']:.3f} | {r['s_per_step']:.2f} |")
    with open(os.path.join(args.run_dir, "comparison.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
