#!/usr/bin/env bash
# Shows every stage working in a few minutes on 2 CPU cores: installs srgan_tf into the project's
# virtualenv (.venv, or the active one; see scripts/venv.sh), trains stage init and stage gan
# briefly on the five photos of data/sample, and upscales a photo with the result. Writes
# runs/quickstart/{init,gan}/ (checkpoints, generator.keras, sample_x4.png) and
# runs/quickstart/upscaled/chelsea_x4.png. A demonstration of the mechanics, not a useful model.
#   VGG_WEIGHTS=imagenet bash scripts/quickstart.sh   # ImageNet VGG19 (downloads 80 MB)
#   INIT_STEPS=300 GAN_STEPS=10 bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh || exit 1
RUN="${RUN:-runs/quickstart}"
VGG_WEIGHTS="${VGG_WEIGHTS:-none}"  # "none" works offline; the perceptual term is then meaningless
# float32 everywhere: bfloat16 is emulated, hence slower, on CPUs without AVX512-BF16 or AMX.
common=(--hr_dir data/sample --checkpoint_dir "$RUN" --crop_size 96 --precision float32
        --vgg_weights "$VGG_WEIGHTS" --save_every 1000 --image_every 1000)
start=$SECONDS
python train.py --stage init --steps "${INIT_STEPS:-60}" --batch_size 16 "${common[@]}"
init_done=$SECONDS
# Stage gan runs VGG19 on 224x224 resizes of the SR and HR batches: batch 4 keeps a step short.
python train.py --stage gan --steps "${GAN_STEPS:-4}" --batch_size 4 "${common[@]}"
gan_done=$SECONDS
python -m srgan_tf.upscale data/sample/chelsea.png --output_dir "$RUN/upscaled" --checkpoint_dir "$RUN" \
    --precision float32
echo "stage init $((init_done - start)) s, stage gan $((gan_done - init_done)) s, upscale $((SECONDS - gan_done)) s"
echo "done: see $RUN/{init,gan}/sample_x4.png (bicubic | SR | HR) and $RUN/upscaled/chelsea_x4.png"
venv="${VIRTUAL_ENV#"$PWD"/}"  # relative when it is the project's .venv
echo "to use srgan_tf from your shell: . $venv/bin/activate  (then e.g. srgan-upscale --help)"
