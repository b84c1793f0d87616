"""The same benchmark run on transformers' ``GptOssForCausalLM`` (eager attention), as a peer on the same weights.

transformers loads MXFP4 checkpoints on CPU only by dequantising every expert to bf16 (``Mxfp4Config(dequantize=
True)``), which is exactly the memory cost this engine avoids. Run as
``python -m tools.bench.transformers_peer``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from tools.bench.measure import current_rss_bytes, random_prompt, speed_report, timed, timed_greedy_decode


def run_transformers_bench(
    model_path: Path, *, prompt_tokens: int, decode_tokens: int, dtype: torch.dtype, threads: int | None
) -> dict[str, Any]:
    # transformers is a test/benchmark extra, imported only here; typed loosely on purpose (lazy module).
    transformers: Any = importlib.import_module("transformers")

    if threads is not None:
        torch.set_num_threads(threads)
    config = json.loads((model_path / "config.json").read_text())
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": "eager"}
    if config.get("quantization_config", {}).get("quant_method") == "mxfp4":
        kwargs["quantization_config"] = transformers.Mxfp4Config(dequantize=True)
    rss_before = current_rss_bytes()

    def load() -> Any:
        return transformers.GptOssForCausalLM.from_pretrained(model_path, **kwargs).eval()

    model, load_s = timed(load)
    rss_after_load = current_rss_bytes()
    prompt = random_prompt(prompt_tokens, int(config["vocab_size"]))
    ids = torch.tensor([prompt])

    with torch.inference_mode():
        model(ids[:, :8], use_cache=True)  # warm-up
        gc.collect()
        out, prefill_s = timed(lambda: model(ids, use_cache=True))
        past = out.past_key_values

        def step(token: int) -> torch.Tensor:
            nonlocal past
            step_out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past = step_out.past_key_values
            return step_out.logits[0, -1]

        step_times = timed_greedy_decode(int(torch.argmax(out.logits[0, -1])), decode_tokens, step)
    return speed_report(
        engine="transformers",
        model_path=model_path,
        dtype=dtype,
        load_s=load_s,
        rss_after_load_bytes=rss_after_load - rss_before,
        prompt_tokens=prompt_tokens,
        prefill_s=prefill_s,
        step_times=step_times,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    result = run_transformers_bench(
        args.model,
        prompt_tokens=args.prompt_tokens,
        decode_tokens=args.decode_tokens,
        dtype=getattr(torch, args.dtype),
        threads=args.threads,
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
