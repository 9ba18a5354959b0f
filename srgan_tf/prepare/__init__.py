"""Writes a decode-once store from a folder of images or tfds (prepare/writer.py).

`python -m srgan_tf.prepare` runs the CLI (srgan_tf/cli/prepare.py). The names below load on first
use (srgan_tf/facade.py), so the CLI parses its flags before TensorFlow is imported.
"""

from srgan_tf import facade

facade.export(__name__, {
    "writer": (
        "write_manifest", "write_store",),
})
