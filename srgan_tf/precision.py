"""Compute precision: what the hardware runs natively, and the Keras mixed-precision policy.

`auto` picks bfloat16 only where it is native (CPUs with AMX-BF16 or AVX512-BF16, GPUs of compute
capability 8.0 and newer), float16 with loss scaling on older GPUs, and float32 elsewhere: on a
CPU without native bf16 (AVX2 only) TensorFlow emulates it and a bf16 step is ~10x slower. A
oneDNN ISA cap (`ONEDNN_MAX_CPU_ISA`, e.g. AVX2) below bf16 makes the CPU's bf16 unusable: oneDNN
then has no bf16 convolution and the model fails, so `auto` picks float32 there.
"""

import os
import platform

import keras
import tensorflow as tf
from absl import logging

from srgan_tf.config import PRECISIONS
_FEATURES = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX512-BF16"),
             ("amx_bf16", "AMX-BF16"))
# ONEDNN_MAX_CPU_ISA caps (oneDNN 3.x) under which oneDNN still runs bf16 convolutions.
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                     "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16",
                     "AVX10_2_512", "AVX10_2_512_AMX_2")


def cpu_features(cpuinfo="/proc/cpuinfo"):
    """Returns the vector features of this CPU that matter here, e.g. ["AVX2", "AVX-512"].

    Reads /proc/cpuinfo (Linux); elsewhere returns [].
    """
    if not os.path.exists(cpuinfo):
        return []
    with open(cpuinfo, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [name for flag, name in _FEATURES if flag in flags]
    return []


def cpu_name(cpuinfo="/proc/cpuinfo"):
    """Returns the CPU model name (or the platform's processor string)."""
    if os.path.exists(cpuinfo):
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def onednn_isa_cap(environ=None):
    """Returns the oneDNN ISA cap set in the environment, upper-cased, or None.

    `ONEDNN_MAX_CPU_ISA`, or its older name `DNNL_MAX_CPU_ISA`; "ALL" / "DEFAULT" are no cap.
    """
    environ = os.environ if environ is None else environ
    cap = (environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    return cap if cap not in ("", "ALL", "DEFAULT") else None


def _cpu_bf16(features):
    """Returns (whether this CPU runs bf16 natively, the reason in words) from its features."""
    reason = f"CPU {', '.join(features) or 'without AVX2'}"
    native = bool({"AMX-BF16", "AVX512-BF16"} & set(features))
    cap = onednn_isa_cap()
    if native and cap and cap not in _ONEDNN_BF16_ISAS:
        return False, f"{reason}, but ONEDNN_MAX_CPU_ISA={cap} leaves oneDNN no bf16"
    return native, reason


def gpu_compute_capabilities():
    """Returns [(major, minor), ...] of the visible GPUs ([] on CPU-only machines)."""
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    return capabilities


def native_precisions(features=None, gpus=None):
    """Returns the Keras policies this machine computes without emulation.

    float32 always; mixed_bfloat16 on CPUs with AMX-BF16 or AVX512-BF16 (unless a oneDNN ISA cap
    rules bf16 out, `onednn_isa_cap`) and on GPUs of compute capability 8.0+; mixed_float16 on
    GPUs only (CPUs have no float16 dot products).

    Args:
      features: CPU features as `cpu_features()` names them (default: this CPU's).
      gpus: GPU compute capabilities (default: this machine's).
    Returns:
      tuple of policy names, in PRECISIONS order.
    """
    gpus = gpu_compute_capabilities() if gpus is None else gpus
    native = ["float32"]
    if gpus:
        native += ["mixed_bfloat16"] if min(gpus) >= (8, 0) else []
        native.append("mixed_float16")
    else:
        if _cpu_bf16(cpu_features() if features is None else features)[0]:
            native.append("mixed_bfloat16")
    return tuple(native)


def resolve_precision(precision="auto", features=None, gpus=None):
    """Resolves `auto` to the precision this machine runs fastest without emulation.

    Args:
      precision: one of PRECISIONS.
      features: CPU features as `cpu_features()` names them (default: this CPU's).
      gpus: GPU compute capabilities (default: this machine's).
    Returns:
      "float32", "mixed_bfloat16" or "mixed_float16".
    """
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    gpus = gpu_compute_capabilities() if gpus is None else gpus
    if gpus:
        choice = "mixed_bfloat16" if min(gpus) >= (8, 0) else "mixed_float16"
        reason = f"GPU compute capability {min(gpus)}"
    else:
        native, reason = _cpu_bf16(cpu_features() if features is None else features)
        choice = "mixed_bfloat16" if native else "float32"
    logging.info("--precision auto: %s (%s)", choice, reason)
    return choice


def set_precision(precision="auto"):
    """Resolves `precision` and sets it as Keras's global dtype policy; returns the resolved name.

    Call before building models: layers take the policy in force when they are created.
    """
    resolved = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(resolved)
    return resolved
