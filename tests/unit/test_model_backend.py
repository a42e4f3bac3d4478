"""What the backend module reads of the machine: the CPU's flags, and its bfloat16 instructions."""

from __future__ import annotations

import pathlib

from model.backend import cpu_flags, cpu_has_bfloat16, read_cpuinfo

# Two processors of a Sapphire Rapids Xeon, flags shortened: AVX-512 BF16 and AMX.
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""
# This project's usual machine: an AMD EPYC with AVX2 and no bfloat16 instructions.
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
cpu MHz\t\t: 2445.404
flags\t\t: fpu sse sse2 pni ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni vaes
"""
# An Arm server (Graviton 3): its flags are its Features line; its bf16 is not one of ours.
GRAVITON = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd aes pmull sha1 sha2 crc32 sve svebf16 bf16 i8mm
CPU implementer\t: 0x41
"""


def test_the_flags_are_read_from_the_first_flags_line() -> None:
    assert {"avx2", "avx512_bf16", "amx_bf16"} <= cpu_flags(SAPPHIRE_RAPIDS)
    assert "avx512f" not in cpu_flags(EPYC_AVX2) and "avx2" in cpu_flags(EPYC_AVX2)
    assert "sve" in cpu_flags(GRAVITON)


def test_bfloat16_is_native_with_avx512_bf16_or_amx_only() -> None:
    assert cpu_has_bfloat16(SAPPHIRE_RAPIDS)
    assert cpu_has_bfloat16("flags\t\t: avx2 avx512f avx512_bf16\n")  # Cooper Lake, Zen 4
    assert cpu_has_bfloat16("flags\t\t: avx2 amx_bf16\n")
    assert not cpu_has_bfloat16(EPYC_AVX2)
    assert not cpu_has_bfloat16(GRAVITON)
    # avx512_bf16's name inside another word is no flag.
    assert not cpu_has_bfloat16("flags\t\t: avx2 avx512_bf16x\nmodel name\t: avx512_bf16 emulator\n")


def test_without_a_cpuinfo_no_flag_is_assumed(tmp_path: pathlib.Path) -> None:
    assert read_cpuinfo(tmp_path / "none") == ""  # macOS, Windows: there is no /proc/cpuinfo
    assert cpu_flags("") == frozenset() and not cpu_has_bfloat16("")
    assert cpu_flags("processor\t: 0\nmodel name\t: something\n") == frozenset()


def test_this_machines_cpuinfo_is_read_once(tmp_path: pathlib.Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(EPYC_AVX2)
    first = read_cpuinfo(cpuinfo)
    cpuinfo.write_text(SAPPHIRE_RAPIDS)
    assert read_cpuinfo(cpuinfo) == first == EPYC_AVX2
