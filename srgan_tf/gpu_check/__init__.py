"""A prepared check of a training machine, everything in one JSON (gpu_check/checks.py).

`python -m srgan_tf.gpu_check` runs the CLI (srgan_tf/cli/gpu_check.py). The names below load on
first use (srgan_tf/facade.py), so the CLI parses its flags before TensorFlow is imported.
"""

from srgan_tf import facade

facade.export(__name__, {
    "checks": (
        "PRECISIONS", "STAGES", "CPU_NOTE", "CheckConfig", "_run", "_failure", "loss_trend",
        "check_training", "check_export", "check_pipeline", "time_steps", "run_check", "_ms",
        "format_report",),
})
