"""The benchmark's arithmetic: the network's operations counted by hand, the cores' peak from flags."""

from __future__ import annotations

import pytest

from bench.flops import cpu_peak, network_flops
from tests.unit.test_model_backend import EPYC_AVX2, GRAVITON, SAPPHIRE_RAPIDS


def test_one_convolution_forward_and_back() -> None:
    # block1_conv1 at 4 x 4: 3 -> 64 channels, 3 x 3: 2 * 16 * 3 * 64 * 9 = 55,296 forward,
    # as many back to the pixels.
    assert network_flops(4, 4, ["block1_conv1"]) == 2 * 55_296


def test_the_network_runs_to_its_deepest_layer_at_each_blocks_pooled_size() -> None:
    # block2_conv1 at 5 x 3 px: block 1 at 5 x 3, block 2 pooled (rounding up) to 3 x 2.
    block1_conv1 = 2 * 5 * 3 * 3 * 64 * 9  # 51,840
    block1_conv2 = 2 * 5 * 3 * 64 * 64 * 9  # 1,105,920
    block2_conv1 = 2 * 3 * 2 * 64 * 128 * 9  # 884,736
    expected = 2 * (block1_conv1 + block1_conv2 + block2_conv1)  # 4,084,992
    assert expected == 4_084_992
    assert network_flops(5, 3, ["block2_conv1"]) == expected
    # The order of the layers, and shallower ones named too, change nothing.
    assert network_flops(5, 3, ["block2_conv1", "block1_conv1"]) == expected


def test_the_default_layers_at_512_by_384_px() -> None:
    # Up to block5_conv1: 113 GFLOP forward, as much back.
    layers = ["block4_conv2", "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
    assert network_flops(384, 512, layers) == pytest.approx(226.04e9, rel=1e-4)
    with pytest.raises(ValueError, match="at least 1 x 1 px"):
        network_flops(0, 512, layers)


def test_the_peak_of_avx2_cores() -> None:
    peak = cpu_peak(EPYC_AVX2, cpus=2)
    assert peak is not None
    assert (peak.cores, peak.ghz, peak.flops_per_cycle) == (2, 2.445404, 32)
    assert peak.gflops == pytest.approx(156.5, abs=0.1)
    assert "AVX2 + FMA" in peak.describe() and "nominal" in peak.describe()


def test_the_peak_of_avx512_cores_counts_hyperthreads_as_one_core() -> None:
    cpuinfo = SAPPHIRE_RAPIDS.replace("cpu MHz", "siblings\t: 112\ncpu cores\t: 56\ncpu MHz")
    peak = cpu_peak(cpuinfo, cpus=8)  # 8 logical CPUs: 4 cores
    assert peak is not None and (peak.cores, peak.flops_per_cycle) == (4, 64)
    assert peak.gflops == pytest.approx(4 * 2.0 * 64)


def test_the_bfloat16_peak_counts_its_instructions() -> None:
    zen = EPYC_AVX2.replace("flags\t\t: ", "flags\t\t: avx512f avx512_bf16 ", 1)
    assert cpu_peak(zen, cpus=2).flops_per_cycle == 64  # type: ignore[union-attr]
    in_bfloat16 = cpu_peak(zen, cpus=2, precision="bfloat16")
    assert in_bfloat16 is not None and in_bfloat16.flops_per_cycle == 128
    assert "bfloat16 FLOP/cycle (AVX-512 BF16" in in_bfloat16.describe()
    # Computed in float32 where the CPU has no bfloat16 instructions.
    assert cpu_peak(EPYC_AVX2, cpus=2, precision="bfloat16").flops_per_cycle == 32  # type: ignore[union-attr]
    amx = cpu_peak(SAPPHIRE_RAPIDS, cpus=2, precision="bfloat16")
    assert amx is not None and amx.flops_per_cycle == 1024


def test_no_peak_without_a_clock_or_vector_units() -> None:
    assert cpu_peak("", cpus=2) is None
    assert cpu_peak(GRAVITON, cpus=2) is None  # no x86 flags, no clock
    assert cpu_peak("cpu MHz\t\t: 2000.0\nflags\t\t: sse sse2 avx\n", cpus=2) is None
