"""Where training runs: TensorFlow's CPU settings (before it starts), logical CPUs, the distribution
strategy and its chief, and whether this CPU has native bfloat16 arithmetic."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from semantic_timbre.errors import UserError

DISTRIBUTIONS = ("none", "mirrored", "multi-worker")
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: x86's AVX512_BF16 and AMX, Arm's BF16
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")



# ONEDNN_MAX_CPU_ISA values that leave out oneDNN's bfloat16 kernels (e.g. make test-avx2's AVX2)
ONEDNN_ISAS_WITHOUT_BFLOAT16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI")



def configure_cpu(distribute: str = "none") -> None:
    """Settings of TensorFlow's CPU runtime that make training faster and steadier; they take
    effect only when this runs before TensorFlow is imported, and a variable already set in the
    environment is left as it is.

    - TF_CPU_ALLOCATOR_USE_BFC=true: TensorFlow keeps and reuses the memory of freed tensors
      instead of handing it back to the system (glibc maps every block over 32 MB afresh, and
      the kernel zeroes its pages again at the first touch: 1.1 million page faults in 4 steps of
      batch 8 of the thesis configuration, and 20% more CPU time a step than with it).
    - TF_NUM_INTEROP_THREADS=1 without distribution: one op at a time, each over every core.
      By default as many ops as cores may run at once (e.g. a convolution's gradients with
      respect to its input and to its filters), each over every core, so they compete for the
      cores and the caches. On 2 shared cores (bench/bench_training.py, batch 16, thesis
      configuration) a step took 13 to 20 s of wall time for 7 to 8 s of CPU time with
      TensorFlow's defaults, and 9 to 18 s for 6 s with both settings: how much the default
      loses depends on what else runs at the time, hence runs of one code up to 40% apart.
      Distributed training keeps the default (replicas and their all-reduce run concurrently).
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    if distribute == "none":
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")



def configure_logical_cpus(count: int | None) -> None:
    """Split the CPU into `count` logical devices (a testing aid for distributed training on a
    machine without GPUs). Must run before TensorFlow initialises its devices."""
    if not count or count <= 1:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise UserError(f"cannot split the CPU into {count} logical devices after TensorFlow has started "
                        f"({error})") from None



def make_strategy(distribute: str = "none"):
    """Return the tf.distribute strategy for 'none', 'mirrored' or 'multi-worker'.

    'mirrored' uses every GPU of this machine, or every logical CPU when there is no GPU;
    'multi-worker' reads the cluster from the TF_CONFIG environment variable.
    """
    import tensorflow as tf

    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])
    if distribute == "multi-worker":
        if "TF_CONFIG" in os.environ:
            try:
                json.loads(os.environ["TF_CONFIG"])
            except ValueError:
                raise UserError("TF_CONFIG is not valid JSON: set it to the cluster description "
                                "(see the README's GPU notes)") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"unknown distribution '{distribute}': choose one of {', '.join(DISTRIBUTIONS)}")



def is_chief(strategy) -> bool:
    """True on the one worker that writes files (always true without multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None) or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())



def cpu_has_native_bfloat16(cpuinfo: str) -> bool:
    """True when the text of Linux's /proc/cpuinfo lists one of NATIVE_BFLOAT16_FLAGS among the
    first processor's feature flags ('flags' on x86, 'Features' on Arm)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return any(flag in value.split() for flag in NATIVE_BFLOAT16_FLAGS)
    return False



def bfloat16_is_native() -> bool:
    """True when bfloat16 runs natively here: an NVIDIA GPU is visible, or the CPU has bfloat16
    instructions. Without /proc/cpuinfo (not Linux) the answer is True: what is not known is not
    refused. Starts no TensorFlow."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0") not in ("", "-1") and gpus.is_dir() and any(gpus.iterdir()):
        return True
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper() in ONEDNN_ISAS_WITHOUT_BFLOAT16:
        return False  # oneDNN held below its bfloat16 kernels: it cannot build bfloat16 convolutions
    try:
        return cpu_has_native_bfloat16(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return True

