#!/usr/bin/env bash
# Installs srgan_tf and runs a short real training run on data/sample: stage init, then stage gan.
# Writes runs/quickstart/{init,gan}/ (checkpoints, generator.keras, sample_x4.png) and
# runs/quickstart/upscaled/chelsea_x4.png.
#   VGG_WEIGHTS=imagenet bash scripts/quickstart.sh   # use ImageNet VGG19 (downloads 80 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${RUN:-runs/quickstart}"
VGG_WEIGHTS="${VGG_WEIGHTS:-none}"  # "none" works offline; the perceptual term is then meaningless
python -m pip install --quiet -e .
common=(--hr_dir data/sample --checkpoint_dir "$RUN" --crop_size 96 --batch_size 16
        --vgg_weights "$VGG_WEIGHTS" --save_every 100 --image_every 100)
python train.py --stage init --steps "${INIT_STEPS:-300}" "${common[@]}"
python train.py --stage gan --steps "${GAN_STEPS:-10}" "${common[@]}"
python -m srgan_tf.upscale data/sample/chelsea.png --output_dir "$RUN/upscaled" --checkpoint_dir "$RUN"
echo "done: see $RUN/{init,gan}/sample_x4.png (bicubic | SR | HR) and $RUN/upscaled/chelsea_x4.png"
