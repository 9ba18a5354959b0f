"""The reference CPU run: both stages on a time budget, then the tables (reference/pipeline.py).

`python -m srgan_tf.reference` runs the CLI (srgan_tf/cli/reference.py). The names below load on
first use (srgan_tf/facade.py), so the CLI parses its flags before TensorFlow is imported.
"""

from srgan_tf import facade

facade.export(__name__, {
    "pipeline": (
        "VAL_EVERY_NTH", "PUBLISHED", "COMPARISON_IMAGES", "BEST_FILE", "ReferenceConfig",
        "split_folder", "validation_evaluator", "stage_config", "train_stages", "stage_resolvers",
        "evaluate_models", "results_table", "write_figures", "run",),
})
