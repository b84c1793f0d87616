"""bf16 weights in 12 bits (kernels.bf16_packed): the C++ packing round-trips through the torch reference decoder
to the exact bits, and the GEMV over packed rows gives the bf16 GEMV's result bit for bit, at every instruction-set
level this CPU has."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.kernels import bf16_packed, cpu_build, cpu_mxfp4
from gpt_oss_desktop.kernels.bf16_packed import LANE_POSITION, PackedBf16Weight

# Every test runs once per instruction-set level this CPU has (tests/kernels/conftest.py).
pytestmark = pytest.mark.usefixtures("cpu_isa")


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int16) if t.dtype == torch.bfloat16 else t.view(torch.int32)


def _weight(n: int, k: int, seed: int, std: float = 0.02) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, k, generator=gen) * std).to(torch.bfloat16)


def _with_specials(weight: torch.Tensor) -> torch.Tensor:
    """Values that fall outside a row's 16 high bytes or are special: zeros of both signs, inf, NaN, a subnormal,
    huge and tiny values."""
    w = weight.clone()
    n = w.shape[0]
    specials = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-40, -3e38, 1e-30, 7.0]
    for i, v in enumerate(specials):
        w[i % n, (7 * i + 3) % w.shape[1]] = v
    return w


def _packed(weight: torch.Tensor) -> PackedBf16Weight:
    packed = bf16_packed.pack(weight, min_saving=-1.0)  # small test shapes would not pay; keep them packed anyway
    assert packed is not None
    return packed


@pytest.mark.parametrize(("n", "k"), [(1, 32), (7, 96), (33, 64), (129, 608), (301, 2880), (64, 4096)])
def test_round_trip_is_exact(n: int, k: int) -> None:
    weight = _with_specials(_weight(n, k, seed=n + k))
    packed = _packed(weight)
    assert packed.shape == (n, k)
    assert packed.exceptions == _expected_exceptions(weight)
    assert torch.equal(_bits(bf16_packed.unpack_ref(packed)), _bits(weight))
    assert torch.equal(_bits(bf16_packed.unpack(packed)), _bits(weight))
    assert torch.equal(_bits(bf16_packed.unpack(packed, n // 2, n)), _bits(weight[n // 2 :]))


def _expected_exceptions(weight: torch.Tensor) -> int:
    """Words whose high byte is not among their row's 16 most frequent (ties to the smaller byte)."""
    total = 0
    for row in (weight.view(torch.int16).int() & 0xFFFF).tolist():
        highs = [w >> 8 for w in row]
        table = sorted(set(highs), key=lambda b: (-highs.count(b), b))[:16]
        total += sum(h not in table for h in highs)
    return total


def test_words_outside_the_table_are_exceptions() -> None:
    # Row 0: +-4**e for e in -10..9 have 40 distinct high bytes, so at least 24 of them miss the table.
    k = 64
    weight = torch.full((2, k), 0.75).to(torch.bfloat16)
    weight[0, :40] = torch.tensor([s * 4.0**e for e in range(-10, 10) for s in (1, -1)]).to(torch.bfloat16)
    packed = _packed(weight)
    assert packed.exceptions == _expected_exceptions(weight) >= 24
    assert torch.equal(_bits(bf16_packed.unpack(packed)), _bits(weight))
    assert torch.equal(_bits(bf16_packed.unpack_ref(packed)), _bits(weight))


def test_layout_is_the_documented_one() -> None:
    # One row, one group: word j = 0x3F00 + j for j < 16 (high byte 0x3F), 0xBF00 + j above (high byte 0xBF).
    words = torch.tensor([(0x3F00 if j < 16 else 0xBF00) + j for j in range(32)], dtype=torch.int32)
    weight = words.to(torch.int16).view(torch.bfloat16).reshape(1, 32)
    packed = _packed(weight)
    data = packed.data
    table = data[:16].tolist()
    record = data[16 : 16 + 48].tolist()
    assert table[:2] == [0x3F, 0xBF]  # most frequent first, ties to the smaller byte
    for j in range(32):
        p = LANE_POSITION[j]
        assert record[p] == j  # low byte in lane order
        index = record[32 + p] & 0x0F if p < 16 else record[32 + p - 16] >> 4
        assert table[index] == (0x3F if j < 16 else 0xBF)
    assert packed.exceptions == 0


def test_pack_declines_what_does_not_pay() -> None:
    assert bf16_packed.pack(_weight(4, 48, seed=1)) is None  # K not a multiple of 32
    assert bf16_packed.pack(_weight(4, 32, seed=1)) is None  # one group per row: the table costs what is saved
    wide = bf16_packed.pack(_weight(8, 2880, seed=1))
    assert wide is not None
    assert wide.nbytes < 0.76 * 8 * 2880 * 2
    # Every word its own high byte: more exceptions than savings.
    noisy = torch.randint(-(2**15), 2**15, (8, 256), generator=torch.Generator().manual_seed(2), dtype=torch.int32)
    assert bf16_packed.pack(noisy.to(torch.int16).view(torch.bfloat16)) is None


def test_bad_packed_tensors_are_refused() -> None:
    packed = _packed(_weight(3, 64, seed=5))
    with pytest.raises(ValueError, match="data must be uint8"):
        PackedBf16Weight(data=packed.data[:-1], meta=packed.meta)
    with pytest.raises(ValueError, match="bad packed shape"):
        PackedBf16Weight(data=packed.data, meta=torch.tensor([3, 48, 0]))
    with pytest.raises(ValueError, match="pack takes"):
        bf16_packed.pack(torch.zeros(4, 64))
    with pytest.raises(ValueError, match=r"x must be \[T, K=64\]"):
        bf16_packed.packed_linear(torch.zeros(2, 32, dtype=torch.bfloat16), packed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("t", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize(("n", "k"), [(7, 96), (33, 64), (129, 608), (40, 1024), (301, 2880), (64, 4096)])
def test_gemv_is_the_bf16_gemv_bit_for_bit(dtype: torch.dtype, t: int, n: int, k: int) -> None:
    weight = _with_specials(_weight(n, k, seed=n * 7 + k + t))
    weight = torch.nan_to_num(weight, nan=1.0, posinf=2.0, neginf=-2.0)  # finite sums, so bits compare
    packed = _packed(weight)
    gen = torch.Generator().manual_seed(t)
    x = torch.randn(t, k, generator=gen).to(dtype)
    bias = torch.randn(n, generator=gen).to(dtype)
    for b in (bias, None):
        expected = cpu_mxfp4.bf16_linear(x, weight, b)
        assert torch.equal(_bits(bf16_packed.packed_linear(x, packed, b)), _bits(expected))
    logits = bf16_packed.packed_linear(x, packed, fp32_out=True)
    assert torch.equal(_bits(logits), _bits(cpu_mxfp4.bf16_linear(x, weight, fp32_out=True)))


def test_a_token_gets_the_same_bits_in_any_batch() -> None:
    weight = _weight(257, 2880, seed=11)
    packed = _packed(weight)
    x = torch.randn(6, 2880, generator=torch.Generator().manual_seed(12)).to(torch.bfloat16)
    batched = bf16_packed.packed_linear(x, packed, fp32_out=True)
    for i in range(6):
        alone = bf16_packed.packed_linear(x[i : i + 1], packed, fp32_out=True)
        assert torch.equal(_bits(alone[0]), _bits(batched[i]))


def test_the_prefetch_distance_changes_no_result() -> None:
    """How far ahead the bf16 GEMVs prefetch (by CPU vendor, kernels.cpu_build.bf16_prefetch_bytes) is speed only, and
    a distance past the end of the weight is harmless (a prefetch never faults)."""
    ops = cpu_build.ops()
    assert ops.bf16_prefetch() == cpu_build.bf16_prefetch_bytes()  # set when the variant was loaded
    weight = torch.nan_to_num(_with_specials(_weight(301, 2880, seed=5)), nan=1.0, posinf=2.0, neginf=-2.0)
    packed = _packed(weight)
    x = torch.randn(3, 2880, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
    before = ops.bf16_prefetch()
    results = []
    try:
        for distance in (0, 64, 4096, 1 << 20):
            ops.set_bf16_prefetch(distance)
            for t in (1, 3):
                results.append(
                    (
                        _bits(bf16_packed.packed_linear(x[:t], packed, fp32_out=True)),
                        _bits(cpu_mxfp4.bf16_linear(x[:t], weight, fp32_out=True)),
                    )
                )
    finally:
        ops.set_bf16_prefetch(before)
    first = results[:2]
    for i, (packed_bits, plain_bits) in enumerate(results):
        assert torch.equal(packed_bits, plain_bits)
        assert torch.equal(packed_bits, first[i % 2][0])
    with pytest.raises(RuntimeError, match="0 to 1 MiB"):
        ops.set_bf16_prefetch(-1)


@pytest.mark.parametrize("compute", [torch.float32, torch.bfloat16])
def test_prefill_blocks_match_blas_on_the_bf16_weight(compute: torch.dtype) -> None:
    weight = _weight(300, 2880, seed=13)
    packed = _packed(weight)
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(40, 2880, generator=gen).to(torch.bfloat16)
    bias = torch.randn(300, generator=gen).to(torch.bfloat16)
    out = bf16_packed.linear_prefill(x, packed, bias, compute_dtype=compute)
    ref = torch.nn.functional.linear(x.to(compute), weight.to(compute), bias.to(compute)).to(torch.bfloat16)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref.float(), rtol=1e-2, atol=1e-2)
    logits = bf16_packed.linear_prefill(x, packed, fp32_out=True, compute_dtype=compute)
    assert logits.dtype == torch.float32
    # fp32 logits are the bf16 result widened, as a plain bf16 weight's BLAS product would give them.
    assert torch.equal(logits, bf16_packed.linear_prefill(x, packed, compute_dtype=compute).float())
