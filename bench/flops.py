"""How much arithmetic the renderer's network does, and how much the CPU's cores could do.

Pure functions of shapes and of a /proc/cpuinfo text, so that ``bench.render`` can say how near
the machine's limit an iteration runs, and a test can check the counts by hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from model.weights import NETWORKS, Network


def network_flops(height: int, width: int, layers: Sequence[str], net: Network = NETWORKS["vgg16"]) -> int:
    """Floating-point operations of one pass of ``net`` forward and its gradient back to the pixels,
    for a (1, height, width, 3) picture, counted once.

    The network computed is the renderer's extractor: every convolution up to the deepest of
    ``layers`` (``model.network.build_extractor``). Each is a 3 x 3 convolution at its block's
    resolution (block b sees the picture pooled b - 1 times, each pooling halving a side and
    rounding up, as Caffe's): forward, 2 * H * W * Cin * Cout * 9 (a multiply and an add per
    weight and position). Backward, only the gradient with respect to the convolution's input
    is computed (the weights are constants): a transposed convolution of as many operations
    again. That includes the first convolution's, which is the gradient with respect to the
    pixels themselves (with 3 input channels, 0.3% of the total at the default layers). Left
    out: biases, ReLUs, poolings, the Gram matrices and the losses. The Gram matrices, the
    largest of these, take 2 * H * W * C * C operations forward and as many back at each
    style layer: 6% more at the default layers.
    """
    if height < 1 or width < 1:
        raise ValueError(f"the picture must be at least 1 x 1 px, got: {height} x {width}")
    deepest = max(net.layers.index(layer) for layer in layers)
    total = 0
    for name in net.layers[: deepest + 1]:
        poolings = int(name.split("_")[0].removeprefix("block")) - 1
        rows, columns = height, width
        for _ in range(poolings):
            rows, columns = (rows + 1) // 2, (columns + 1) // 2
        kernel_height, kernel_width, inputs, outputs = net.kernel_shapes[name]
        forward = 2 * rows * columns * inputs * outputs * kernel_height * kernel_width
        total += 2 * forward  # and the gradient to its input
    return total


@dataclass(frozen=True)
class Peak:
    """The cores' peak arithmetic in ``precision``: cores x clock x operations per cycle, and what was assumed."""

    cores: int
    ghz: float
    flops_per_cycle: int
    assumed: str  # which instructions and units the operations per cycle assume
    precision: str = "float32"

    @property
    def gflops(self) -> float:
        return self.cores * self.ghz * self.flops_per_cycle

    def describe(self) -> str:
        return (f"{self.cores} cores x {self.ghz:.3f} GHz (nominal, /proc/cpuinfo) x {self.flops_per_cycle} "
                f"{self.precision} FLOP/cycle ({self.assumed}) = {self.gflops:.1f} GFLOP/s")


def cpu_peak(cpuinfo: str, cpus: int, precision: str = "float32") -> Peak | None:
    """The peak in ``precision`` of the ``cpus`` logical CPUs this process may use, from /proc/cpuinfo's text.

    Operations per cycle from the flags: AVX-512 with two FMA units, 64 (2 units x 16 lanes x a
    multiply and an add; a CPU with one unit, or AMD's Zen 4, which splits 512-bit operations
    in two, has half); AVX2 with FMA, 32 (two 256-bit FMA units, as AMD's Zen and Intel's
    cores since Haswell have). The clock is "cpu MHz", the nominal one (a virtual machine
    reports its host's base clock; turbo is not counted). Logical CPUs are counted as cores
    unless "siblings" and "cpu cores" say they are hyperthreads, which share a core's units.
    None where the flags or the clock cannot be read (no /proc/cpuinfo, no AVX2 and FMA).

    In bfloat16: with AMX, 1024 per cycle (Intel's figure for its tile unit); with AVX-512 BF16,
    twice float32's (a VDPBF16PS sums 32 products in pairs into 16 float32 lanes); without
    either, float32's (bfloat16 is computed in float32).
    """
    flags: set[str] = set()
    megahertz = siblings = physical = None
    for line in cpuinfo.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "cpu MHz" and megahertz is None and re.fullmatch(r"[0-9.]+", value):
            megahertz = float(value)
        elif key == "siblings" and siblings is None and value.isdigit():
            siblings = int(value)
        elif key == "cpu cores" and physical is None and value.isdigit():
            physical = int(value)
    if megahertz is None or not megahertz > 0:
        return None
    if {"avx512f", "fma"} <= flags:
        per_cycle, assumed = 64, "AVX-512, two FMA units assumed"
    elif {"avx2", "fma"} <= flags:
        per_cycle, assumed = 32, "AVX2 + FMA, two 256-bit FMA units assumed"
    else:
        return None
    if precision == "bfloat16" and "amx_bf16" in flags:
        per_cycle, assumed = 1024, "AMX tiles"
    elif precision == "bfloat16" and "avx512_bf16" in flags:
        per_cycle, assumed = 2 * per_cycle, f"AVX-512 BF16, twice float32's: {assumed}"
    cores = cpus
    if siblings and physical and siblings > physical:  # hyperthreads: two logical CPUs a core
        cores = max(1, cpus * physical // siblings)
    return Peak(cores, megahertz / 1000, per_cycle, assumed, precision)
