"""``gpt-oss-desktop-engine tokens --model DIR --prompt-ids 1,2,3``: raw token generation, printed as a JSON list.

No harmony: the prompt ids go to the model as given and the generated ids (stop token included, if one ended the
run) are printed. Meant for comparing implementations token by token, so greedy (temperature 0) is the default.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from gpt_oss_desktop.engine.cli.argument_types import (
    max_tokens_value,
    seed_value,
    temperature_value,
    top_k_value,
    top_p_value,
)
from gpt_oss_desktop.engine.cli.chat import add_weights_argument, load_for_cli, sampling_from_args
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.generator import Generator

_IDS_RE = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*,?\s*$")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tokens",
        help="generate raw token ids from raw prompt ids (JSON output)",
        description="Generate token ids from comma-separated prompt ids and print them as a JSON list.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder, or demo (the built-in toy model)")
    p.add_argument("--prompt-ids", required=True, help="comma-separated token ids, e.g. 200006,1428,200008")
    p.add_argument("--max-tokens", type=max_tokens_value, default=16, help="tokens to generate (default: 16)")
    p.add_argument("--temperature", type=temperature_value, default=0.0, help="0 = greedy (default: 0)")
    p.add_argument("--top-p", type=top_p_value, default=1.0, help="nucleus sampling mass (default: 1.0 = off)")
    p.add_argument("--top-k", type=top_k_value, default=0, help="keep the k most likely tokens (default: 0 = off)")
    p.add_argument("--seed", type=seed_value, default=None, help="sampling seed")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None, help="weight dtype (default: bfloat16)")
    add_weights_argument(p)
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def parse_prompt_ids(text: str) -> list[int]:
    """``"1, 2,3"`` -> ``[1, 2, 3]``; anything else is a one-line EngineError."""
    if not _IDS_RE.match(text):
        raise EngineError(f"--prompt-ids must be comma-separated non-negative integers, got {text!r}")
    return [int(part) for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    prompt = parse_prompt_ids(args.prompt_ids)
    params = sampling_from_args(args)
    model = load_for_cli(args.model, args.dtype, args.device, args.weights)
    # Room for the prompt and every requested token, so the run stops only at max_tokens or a stop token.
    generator = Generator(model, max_context=len(prompt) + params.max_tokens)
    ids = list(generator.generate_ids(prompt, params))
    sys.stdout.write(json.dumps(ids) + "\n")
    return 0
