"""tools/bench/decode_roofline.py: the bytes of a llama.cpp decode step, the read-bandwidth probe, the roofline."""

from __future__ import annotations

import torch

from gpt_oss_desktop.engine.checkpoint.presets import get_preset
from tools.bench.decode_roofline import GgufTensor, gguf_decode_bytes, read_bandwidth_gbs, roofline
from tools.bench.traffic import kv_read_bytes


def test_a_decode_step_reads_one_embedding_row_and_the_routed_share_of_each_expert_tensor() -> None:
    cfg = get_preset("tiny")
    h, v, e, k = cfg.hidden_size, cfg.vocab_size, cfg.num_experts, cfg.experts_per_token
    tensors = [
        GgufTensor("token_embd.weight", (h, v), 2 * h * v),
        GgufTensor("output.weight", (h, v), 2 * h * v),
        GgufTensor("blk.0.attn_q.weight", (h, 64), 2 * h * 64),
        GgufTensor("blk.0.ffn_up_exps.weight", (h, 32, e), 1000 * e),
        GgufTensor("blk.0.ffn_up_exps.bias", (32, e), 4 * 32 * e),
    ]
    expected = 2 * h + 2 * h * v + 2 * h * 64 + 1000 * k + 4 * 32 * k + kv_read_bytes(cfg, 300, kv_bytes=2)
    assert gguf_decode_bytes(tensors, cfg, context=300) == expected


def test_rounds_are_held_against_the_median_read_probe() -> None:
    rounds = [
        {"side": "engine", "decode_tok_s": 5.0, "read_gbs_before": 20.0},
        {"side": "llama.cpp", "decode_tok_s": 8.0, "read_gbs_before": 60.0},
        {"side": "engine", "decode_tok_s": 6.0, "read_gbs_before": 30.0},
    ]
    report = roofline({"engine": 3_000_000_000, "llama.cpp": 1_500_000_000}, rounds)
    assert report["read_gbs"]["samples"] == [20.0, 60.0, 30.0]
    assert report["read_gbs"]["median"] == 30.0
    engine = report["sides"]["engine"]
    assert engine["bytes_per_token"] == 3_000_000_000
    assert engine["roofline_tok_s"] == 10.0  # 30 GB/s / 3 GB
    assert engine["fraction_of_roofline"]["samples"] == [0.5, 0.6]
    assert report["sides"]["llama.cpp"]["roofline_tok_s"] == 20.0
    assert report["sides"]["llama.cpp"]["fraction_of_roofline"]["samples"] == [0.4]


def test_the_read_probe_measures_something_and_restores_the_thread_count() -> None:
    threads = torch.get_num_threads()
    gbs = read_bandwidth_gbs(1, nbytes=8 << 20, repeats=2)
    assert 0.0 < gbs < 10_000.0
    assert torch.get_num_threads() == threads
