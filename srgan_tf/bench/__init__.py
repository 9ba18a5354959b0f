"""Throughput benchmark of training and inference, printed as one table (bench/measure.py).

`python -m srgan_tf.bench` runs the CLI (srgan_tf/cli/bench.py). The names below load on first use
(srgan_tf/facade.py), so the CLI parses its flags before TensorFlow is imported.
"""

from srgan_tf import facade

facade.export(__name__, {
    "measure": (
        "ROOT", "SECTIONS", "COMPUTE_DTYPES", "STEP_TARGET", "BF16_SPEEDUP_TARGET", "STORE_TARGET",
        "FILES_CROPS_TARGET", "GPU_TFLOPS", "DIV2K_HR_SIZE", "RSS_TARGET_MB", "INFER_TARGET",
        "QUICK", "DEFAULT_PRECISIONS", "CEILING_REPEATS", "XLA_SUFFIX", "default_hr_dir",
        "BenchConfig", "_FOLDED_OP", "_op_flops", "forward_flops", "train_step_flops", "_wait",
        "time_calls", "median_seconds", "_random", "matmul_gflops", "conv_gflops", "_Policy",
        "device_info", "_time_step", "measure_step", "_div2k_size_pngs", "_interleaved_rates",
        "_bicubic_ceiling_dataset", "_flops_per_patch", "measure_pipeline", "_time_inference",
        "measure_inference", "synthetic_image", "ProcessRun", "upscale_env", "_RSS_PROBE",
        "run_upscale", "measure_upscale", "run_benchmark", "_settings", "_conv_ceiling",
        "target_checks", "_row", "_num", "_percent", "_target_cell", "format_table",),
})
