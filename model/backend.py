"""Compiling ``keras.ops`` functions for the Keras backend in use: TensorFlow or JAX.

The renderer keeps its tensors where the backend keeps them (on the GPU, where there is one)
and runs compiled functions on them; only scalars (a loss, a yes or no) come back to Python.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import pathlib
from collections.abc import Callable
from typing import Any

import keras

from model.errors import ModelError

log = logging.getLogger(__name__)

SUPPORTED_BACKENDS = ("tensorflow", "jax")

# A tensor of the Keras backend in use (tf.Tensor or jax.Array).
Tensor = Any


def check_backend() -> str:
    """The Keras backend's name; ``ModelError`` unless the renderer runs on it."""
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise ModelError(
            f"the renderer runs on Keras' tensorflow or jax backend, not {backend!r} (set KERAS_BACKEND)"
        )
    return backend


def compiled(function: Callable[..., Any], donate: tuple[int, ...] = ()) -> Callable[..., Any]:
    """``function`` (of tensors, written with ``keras.ops``) compiled for the backend, once per input shape.

    JAX: ``jax.jit``; the arguments at positions ``donate`` are given up to it (the caller must
    not use them again), so that its results can take their memory rather than copy them.
    TensorFlow: a graph (``tf.function``) without XLA: the functions given here are a few dozen
    vector operations, and a graph of them is only traced, not compiled, for each new picture
    size. (On 2 CPU cores a 512 px render took as long with them as with the NumPy steps they
    replaced: 55.3 s warm both.) Traced for each shape: with sizes left open, renders of 4 + 4
    iterations at 512 px (a size seen before) took 18.9 s against 17.8 s (means of 8), for
    about 1 s of tracing saved per new size. Their loops are ``keras.ops.while_loop``s, so AutoGraph, which rewrites
    Python's, is off: converting the code they call cost a cold render about 3 s.
    """
    if check_backend() == "jax":
        import jax

        return jax.jit(function, donate_argnums=donate)
    import tensorflow as tf

    return tf.function(function, reduce_retracing=False, autograph=False)


def on_gpu() -> bool:
    """Whether Keras' backend computes on a GPU (its default device is one)."""
    if check_backend() == "jax":
        import jax

        return jax.default_backend() in ("gpu", "cuda", "rocm")
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


# The CPU flags (Linux's /proc/cpuinfo) of native bfloat16 arithmetic: AVX-512 BF16 (Intel
# from Cooper Lake, AMD from Zen 4) and AMX (Intel from Sapphire Rapids). Without them bfloat16
# is emulated, slowly: on 2 AVX2 cores (AMD EPYC) a 128 px render was 1.5x slower than in
# float32. With them, on 2 AMD EPYC cores with AVX-512 BF16, the loss's pass at 512 x 336 px
# took 378 ms against float32's 846 ms, run by oneDNN (``model.render.compiled_by_xla``).
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: those of ``cpuinfo`` (a /proc/cpuinfo text) or this machine's.

    Read from the first ``flags`` line (x86) or ``Features`` line (Arm). None where there is no
    /proc/cpuinfo (macOS, Windows) or it cannot be read: no flag is assumed.
    """
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (``BFLOAT16_FLAGS``): ``cpuinfo``'s, or this machine's."""
    return bool(cpu_flags(cpuinfo) & BFLOAT16_FLAGS)


@functools.cache
def read_cpuinfo(path: str | os.PathLike[str] = "/proc/cpuinfo") -> str:
    """The text of /proc/cpuinfo (or ``path``), read once per process; empty where there is none."""
    try:
        return pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return ""


def tensorflow_eagerly() -> bool:
    """Whether Keras runs on TensorFlow, eagerly (not inside a ``tf.function``)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.executing_eagerly())


def to_tensor(array: Any) -> Tensor:
    """A float32 tensor of the backend (on its device) from an array or tensor."""
    return keras.ops.convert_to_tensor(array, "float32")


def to_numpy(tensor: Tensor) -> Any:
    """A NumPy array from a backend tensor (copied off the device)."""
    return keras.ops.convert_to_numpy(tensor)


# The most ``keep_compiled_programs`` keeps on disk.
COMPILED_PROGRAMS_MAX_BYTES = 2 * 1024**3


def keep_compiled_programs(directory: str | os.PathLike[str]) -> bool:
    """Keep the programs compiled for the backend in ``directory``, for later processes to reuse.

    On JAX (the GPU machines), the first render of each picture shape compiles and autotunes its
    programs: about 48 s on an H100 for a 512 px render, against 0.2 s for the render itself. With
    this, a restarted bot pays that once per shape, not once per process.

    On TensorFlow, XLA's persistent cache keeps the loss's program (the one ``tf.function`` with
    ``jit_compile``; the optimiser's steps are graphs, traced, not compiled). In bfloat16 on a
    CPU with bfloat16 instructions the loss is a graph too (``model.render.compiled_by_xla``):
    nothing is kept, and each process traces it again (2.3 s of a first 512 px render, both
    stages, on 2 cores). It is set through
    ``TF_XLA_FLAGS``, which TensorFlow reads once, when it first needs its XLA flags (not on
    import: set after it, they were taken): call this before the first render. A fresh
    process's first 128 px render (2 stages, 4 + 2 iterations) took 24.6-26.3 s without it and
    12.5-14.3 s with the programs found kept (a warm render: 3.6-4.5 s), on 2 loaded cores.
    They go in a folder per TensorFlow version, so that an upgrade never loads a program another
    XLA wrote, and the oldest written go first beyond ``COMPILED_PROGRAMS_MAX_BYTES``, pruned
    here (TensorFlow keeps no bound of its own).

    A folder that cannot be made is only warned of (False): renders go on, compiling as they
    would without it.
    """
    if check_backend() == "tensorflow":
        return _keep_tensorflow_programs(pathlib.Path(directory))
    import jax

    try:
        pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("compiled programs are not kept: %s cannot be made (%s)", directory, exc)
        return False
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # Every program, however quick to compile: the small optimiser steps add up too.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # Bounded, least recently used first out: every new picture or painting shape adds programs,
    # and a bot runs for months. JAX keeps a bound only with the filelock package (its entries
    # then written under a lock, so a process killed mid-write leaves no half-written program).
    if importlib.util.find_spec("filelock") is not None:
        jax.config.update("jax_compilation_cache_max_size", COMPILED_PROGRAMS_MAX_BYTES)
    else:
        log.warning("compiled programs are kept without a size bound: install filelock to bound them")
    return True


# The flag of XLA's persistent cache in TF_XLA_FLAGS (tensorflow/compiler/jit/flags.cc).
_TF_CACHE_FLAG = "--tf_xla_persistent_cache_directory"


def _keep_tensorflow_programs(directory: pathlib.Path) -> bool:
    """``keep_compiled_programs`` on TensorFlow: XLA's persistent cache in ``directory``."""
    import tensorflow as tf

    flags = os.environ.get("TF_XLA_FLAGS", "")
    if _TF_CACHE_FLAG in flags:  # set by whoever runs the bot: theirs stands
        log.info("compiled programs are kept where TF_XLA_FLAGS says: %s", flags)
        return True
    folder = directory / f"tensorflow-{tf.__version__}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("compiled programs are not kept: %s cannot be made (%s)", folder, exc)
        return False
    prune_compiled_programs(directory, COMPILED_PROGRAMS_MAX_BYTES)
    # Programs are written to a temporary file and renamed into place: several workers can
    # share the folder. Reading one back, TensorFlow first tries it as a text proto and logs an
    # error ("Error parsing text-format tensorflow.XlaSerializedCacheEntry") before reading it,
    # as it is, in binary: that line is harmless.
    os.environ["TF_XLA_FLAGS"] = f"{flags} {_TF_CACHE_FLAG}={folder}".strip()
    return True


def prune_compiled_programs(directory: str | os.PathLike[str], max_bytes: int) -> list[pathlib.Path]:
    """Delete the oldest written files under ``directory`` until they take ``max_bytes`` at most.

    Returns the files deleted. XLA's cache on TensorFlow never rewrites a file it reads, so
    "oldest written" is when its shape was first painted, not last: a program still in use that
    is pruned is compiled and written again, once. Files that vanish meanwhile (another worker
    pruning too) are counted as deleted; files that cannot be deleted are warned of and kept.
    """
    files = []
    for path in pathlib.Path(directory).rglob("*"):
        try:
            if path.is_file():
                stat = path.stat()
                files.append((stat.st_mtime_ns, stat.st_size, path))
        except OSError:
            continue
    total = sum(size for _, size, _ in files)
    deleted = []
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        try:
            path.unlink()
        except FileNotFoundError:  # another worker pruned it first
            pass
        except OSError as exc:  # kept, and counted: renders go on
            log.warning("a compiled program could not be pruned: %s (%s)", path, exc)
            continue
        total -= size
        deleted.append(path)
    return deleted
