"""Peak RSS of training from a large decode-once store (a measurement, not a test).

  python scripts/store_rss.py --store /tmp/big_store --images 850 --steps 60

Makes (once) a store of `--images` DIV2K-size (2040x1356) images, each a Lanczos-resized photo of
--photos rolled by a different offset (850 images are 7.05 GB of decoded pixels), then trains
`--steps` steps of stage init from it in a child process (the TensorLayer crop 384 and batch 16,
with a 1-block 8-feature generator: the network is not what is measured) and prints the child's
peak RSS. Delete the store afterwards.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_TRAIN = """
import sys
from srgan_tf import trainer
from srgan_tf.config import Recipe, TrainConfig
store, run, steps = sys.argv[1:4]
recipe = Recipe(num_feat=8, num_block=1, upsample_feat=32)  # crop 384, batch 16
config = TrainConfig(stage="init", checkpoint_dir=run, store=store, recipe=recipe,
                     steps=int(steps), precision="float32", save_every=10_000).validate()
trainer.Trainer(config).train()
"""


def make_store(store, count, photos):
    """Writes `count` raw 2040x1356 images and the manifest into `store` (if absent)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from srgan_tf import data, prepare  # pylint: disable=import-outside-toplevel
    from srgan_tf import store as store_lib  # pylint: disable=import-outside-toplevel
    if os.path.exists(os.path.join(store, store_lib.MANIFEST)):
        return
    height, width = 1356, 2040
    bases = [np.asarray(Image.open(p).convert("RGB").resize((width, height), Image.LANCZOS))
             for p in data.list_images(photos)[:8]]
    os.makedirs(os.path.join(store, store_lib.IMAGES), exist_ok=True)
    entries = []
    for i in range(count):
        image = np.roll(bases[i % len(bases)], shift=(7 * i, 13 * i), axis=(0, 1))
        with open(os.path.join(store, store_lib.image_name(i)), "wb") as f:
            f.write(store_lib.to_strips(image, store_lib.STRIP_WIDTH))
        entries.append({"file": store_lib.image_name(i), "source": f"synthetic {i}",
                        "height": height, "width": width})
    prepare.write_manifest(store, {"synthetic": photos}, entries, count, [], 384,
                           store_lib.STRIP_WIDTH)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--images", type=int, default=850)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--photos", default=os.path.join(os.path.dirname(ROOT), "shared",
                                                         "data", "SunHays80"))
    parser.add_argument("--run", default=None, help="run directory (default: STORE.run)")
    args = parser.parse_args()
    clock = time.perf_counter()
    make_store(args.store, args.images, args.photos)
    made = time.perf_counter() - clock
    run = args.run or args.store.rstrip("/") + ".run"
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    clock = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", _TRAIN, args.store, run, str(args.steps)],
                           env=env, check=False, capture_output=True, text=True)
    if child.returncode:
        sys.exit(child.stderr[-3000:])
    with open(os.path.join(args.store, "manifest.json"), encoding="utf-8") as f:
        size = json.load(f)["bytes"]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"store_gb": size / 1e9, "images": args.images, "steps": args.steps,
                      "peak_rss_gb": peak / 1e9, "train_seconds": time.perf_counter() - clock,
                      "store_seconds": made}))


if __name__ == "__main__":
    main()
