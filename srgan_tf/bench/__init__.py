"""Throughput benchmark of training and inference, measured in one process and printed as one table.

0. the device: the CPU's vector features (or the GPU), cores and threads;
1. the machine's ceilings: a large matmul, and the train step's dominant op alone, a 3x3
   64->64 convolution forward + backward, in float32 and bfloat16;
2. the init-stage train step (generator, MSE) of each preset, in float32 and mixed bfloat16;
3. the gan-stage train step (generator + discriminator + VGG19 features), with each update
   mode (alternating D then G updates, or both from one shared forward pass);
4. the tf.data pipeline alone at crop 384 from DIV2K-size images (files, --crops_per_image,
   --cache, --store, the batched bicubic alone), and the patch rates GPU train steps consume;
5. inference (whole image) and the peak RSS of a tiled upscale run in a subprocess.

Every time is the median of `repeats` calls after `warmup` calls. Train steps are the Trainer's
own compiled step (`Trainer.step_function()`) on a fixed random batch; nothing is written.

FLOPs are counted, not measured: 2 per multiply-add of every convolution and dense layer, taken
from the shapes of the Conv2D / MatMul ops of the network's traced forward pass
(`forward_flops`; a FoldedConv2D counts as the k x k conv it computes). Batch norm,
activations, pixel shuffle, resizing, losses and Adam are left out. A trained network costs 3x its forward pass (forward, then input and weight gradients); in
stage gan VGG19 costs 3x its forward up to the tapped layer (forward on HR, forward and input
gradient on SR) and the discriminator 6x (forward and backward on the HR and on the SR batch).

`python -m srgan_tf.bench` runs the CLI (srgan_tf/cli/bench.py); docs/benchmarks.md has the figures.
Submodules: `settings` (BenchConfig, targets), `flops`, `ceilings` (timing, machine ceilings,
device), `steps`, `pipeline`, `inference` (and the upscale RSS probe), `runner` (`run_benchmark`)
and `table`. Their names load on first use (srgan_tf/facade.py).
"""

from srgan_tf import facade

facade.export(__name__, {
    "settings": (
        "ROOT", "SECTIONS", "COMPUTE_DTYPES", "STEP_TARGET", "BF16_SPEEDUP_TARGET", "STORE_TARGET",
        "FILES_CROPS_TARGET", "REALISTIC_TARGET", "GPU_TFLOPS", "DIV2K_HR_SIZE", "RSS_TARGET_MB", "INFER_TARGET",
        "QUICK", "DEFAULT_PRECISIONS", "CEILING_REPEATS", "XLA_SUFFIX", "default_hr_dir",
        "BenchConfig",),
    "flops": (
        "_FOLDED_OP", "_op_flops", "forward_flops", "train_step_flops",),
    "ceilings": (
        "_wait", "time_calls", "median_seconds", "_random", "matmul_gflops", "conv_gflops",
        "_Policy", "device_info",),
    "steps": (
        "_time_step", "measure_step",),
    "pipeline": (
        "_div2k_size_pngs", "_interleaved_rates", "_bicubic_ceiling_dataset", "_flops_per_patch",
        "measure_pipeline",),
    "inference": (
        "_time_inference", "measure_inference", "synthetic_image", "ProcessRun", "upscale_env",
        "_RSS_PROBE", "run_upscale", "measure_upscale",),
    "runner": (
        "run_benchmark", "_settings", "_conv_ceiling", "target_checks",),
    "table": (
        "_row", "_num", "_percent", "_target_cell", "format_table",),
})
