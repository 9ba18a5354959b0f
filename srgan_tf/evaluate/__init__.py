"""Evaluation of a x4 super-resolver with the SR papers' protocol (srgan_tf/evaluate/scoring.py).

`python -m srgan_tf.evaluate` runs the CLI (srgan_tf/cli/evaluate.py). The names below load on first
use (srgan_tf/facade.py), so the CLI parses its flags before TensorFlow is imported.
"""

from srgan_tf import facade

facade.export(__name__, {
    "scoring": (
        "CROP_BORDER", "SCORES", "ARTIFACT_SCORES", "NEAR_BICUBIC_DB", "PROTOCOL", "protocol_lr",
        "score", "list_images", "set_name", "artifact_scores", "_evaluate_image", "_mean",
        "evaluate", "_near_bicubic", "near_bicubic", "compare", "_report_images", "num_skipped",
        "_save_png",),
})
