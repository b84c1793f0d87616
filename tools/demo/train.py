"""Train the toy demo model: ``python -m tools.demo.train --out resources/demo --seed 0``.

Pure torch on the CPU, through the engine's own model (:class:`engine.model.Model` with
:class:`kernels.moe.DenseExperts` leaves that require grad, run by :meth:`engine.model.Model.forward_hidden`).

Vocabulary trick. The data uses ~1.5k of the 201,088 token ids, so the model is trained on a *sub-vocabulary*:
row ``j < U`` of the small embedding/unembedding is real token ``used_ids[j]``, and row ``U`` ("other") stands for
every one of the ``N = 201088 - U`` unused ids at once. At export each unused id gets a copy of the other row. In
the full vocabulary those N copies share one logit ``z``, so their total probability is that of a single logit
``z + log N``; the training loss uses exactly that, so the small softmax is the full one and the model learns to
push unused ids down (greedy decoding then never picks one). Prompts now and then carry an "other" token inside the
user's text, so the shared embedding row is trained too: that is what an out-of-vocabulary input token reads.

Experts are trained dense and exported as MXFP4; the last ``--qat-share`` of the steps trains through the MXFP4
rounding (straight-through), so the exported experts are the ones the loss saw.

Fine-tune. ``--init DIR`` starts from shipped compact weights instead of a random initialisation (their
sub-vocabulary, grown by any token the new data uses, which starts as the shared row); the shipped model is the
base run (``--mix base``) followed by the copy fine-tune (``--init … --mix copy``, tools.demo.mix.COPY_MIX).
``--digit-weight`` weighs target tokens that hold a digit (the numbers the model must copy) more in the loss.

Deterministic for a given seed, thread count (``--threads``, default 2), machine and, with ``--init``, start
weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gpt_oss_desktop.engine.checkpoint import canonical_specs, quantize_mxfp4
from gpt_oss_desktop.engine.checkpoint.presets import REAL_VOCAB
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.demo.materialize import MANIFEST_NAME
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.ops import CPU_OPS, Ops, dense_or_q8_linear
from gpt_oss_desktop.engine.vocab import get_encoding
from gpt_oss_desktop.kernels.attention import attention_ref
from gpt_oss_desktop.kernels.moe import moe_ref
from gpt_oss_desktop.kernels.mxfp4 import dequantize_mxfp4
from gpt_oss_desktop.kernels.rmsnorm import add_rmsnorm_ref, rmsnorm_ref
from gpt_oss_desktop.kernels.rope import rope_ref
from gpt_oss_desktop.kernels.router import router_ref
from tools.demo.data import Example
from tools.demo.mix import MIXES, training_examples

logger = logging.getLogger(__name__)

# Shipped format; bump when the file layout or the model changes (the materialised copy is keyed by it).
FORMAT_VERSION: Final = 1
WEIGHTS_NAME: Final = "demo.safetensors"
TOY_LABEL: Final = (
    "toy demo model: a tiny gpt-oss-architecture model trained on synthetic arithmetic-style tasks (arithmetic, "
    "letter counting, number comparison, unit conversion) and on calling tools (python for arithmetic, "
    "convert_units, get_current_time); not a real assistant"
)

# 4 layers (sliding, full, sliding, full), hidden 128, 8 experts top-2. The 32-token window is shorter than every
# training conversation (~70-token prompts), so the sliding layers really slide.
DEMO_CONFIG: Final = ModelConfig(
    num_hidden_layers=4,
    num_experts=8,
    experts_per_token=2,
    vocab_size=REAL_VOCAB,
    hidden_size=128,
    intermediate_size=128,
    head_dim=32,
    num_attention_heads=4,
    num_key_value_heads=2,
    sliding_window=32,
)
_EXPERT_SUFFIXES: Final = (".mlp.mlp1_weight", ".mlp.mlp2_weight")
# Training runs the model on the torch reference ops: the fused C++ CPU kernels (RMSNorm, RoPE, attention, ...) have no
# autograd, so through them only the unembedding would get a gradient and every layer would stay at its random
# initialisation (tests/tools/demo checks that every parameter gets a gradient).
TRAIN_OPS: Final[Ops] = dataclasses.replace(
    CPU_OPS,
    name="train",
    rmsnorm=rmsnorm_ref,
    add_rmsnorm=add_rmsnorm_ref,
    rope=rope_ref,
    attention=attention_ref,
    router=router_ref,
    moe=moe_ref,
    linear=dense_or_q8_linear,  # F.linear for the dense weights training uses
)


def extra_token_ids() -> set[int]:
    """Ids kept in the sub-vocabulary even if the data misses some: every number 0-999 and every letter."""
    enc = get_encoding()
    texts = [str(n) for n in range(1000)] + [c for c in "abcdefghijklmnopqrstuvwxyz"]
    texts += [" " + t for t in texts]
    out: set[int] = set()
    for text in texts:
        ids = enc.encode(text, allowed_special=set())
        if len(ids) == 1:
            out.add(ids[0])
    return out


def load_init(source: Path) -> tuple[dict[str, torch.Tensor], list[int], dict[str, Any]]:
    """fp32 tensors under canonical names (experts dequantised, ``*.rows`` as ``*.weight``), the used token ids and
    the manifest of the compact weights in ``source`` (what :func:`export` wrote)."""
    manifest = json.loads((source / MANIFEST_NAME).read_text(encoding="utf-8"))
    compact = load_file(str(source / manifest["weights_file"]))
    tensors: dict[str, torch.Tensor] = {}
    for name, value in compact.items():
        if name.endswith(".scales"):
            continue
        if name.endswith(".blocks"):
            base = name.removesuffix(".blocks")
            tensors[base] = dequantize_mxfp4(value, compact[base + ".scales"], torch.float32)
        else:
            tensors[name.replace(".rows", ".weight")] = value.to(torch.float32)
    return tensors, list(manifest["used_token_ids"]), manifest


def start_params(init: dict[str, torch.Tensor], init_ids: list[int], used_ids: list[int]) -> dict[str, torch.Tensor]:
    """Leaves (requires_grad) from ``init`` over the sub-vocabulary ``used_ids`` (a superset of ``init_ids``):
    a token new to it starts as the shared row, which is what the init model read and wrote for it."""
    where = {t: i for i, t in enumerate(init_ids)}
    rows = torch.tensor([where.get(t, len(init_ids)) for t in used_ids] + [len(init_ids)])  # [U + 1] -> init row
    params: dict[str, torch.Tensor] = {}
    for name, value in init.items():
        t = value[rows] if name in ("embedding.weight", "unembedding.weight") else value
        params[name] = t.clone().requires_grad_()
    return params


def digit_weights(used_ids: list[int], weight: float) -> torch.Tensor:
    """Loss weight per sub-vocabulary id ``[U + 1]``: ``weight`` for a token holding a digit, 1 otherwise."""
    enc = get_encoding()
    out = torch.ones(len(used_ids) + 1)
    for j, token in enumerate(used_ids):
        if any(c.isdigit() for c in enc.decode([token]) if c.isascii()):
            out[j] = weight
    return out


def init_params(config: ModelConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """fp32 leaves (requires_grad) under canonical names with dense experts."""
    params: dict[str, torch.Tensor] = {}
    out_std = 0.02 / math.sqrt(2 * config.num_hidden_layers)  # residual-writing projections start small
    for name, spec in canonical_specs(config, mxfp4=False).items():
        if name.endswith("norm.scale"):
            t = torch.ones(spec.shape)
        elif name.endswith(("bias", "sinks")):
            t = torch.zeros(spec.shape)
        elif name.endswith(("attn.out.weight", "mlp2_weight")):
            t = torch.randn(spec.shape, generator=generator) * out_std
        else:
            t = torch.randn(spec.shape, generator=generator) * 0.02
        params[name] = t.requires_grad_()
    return params


def training_model(config: ModelConfig, tensors: dict[str, torch.Tensor]) -> Model:
    """The engine's model over ``tensors`` (it wraps the leaves, no copies), differentiable (:data:`TRAIN_OPS`)."""
    model = Model(config, tensors, torch.device("cpu"), torch.float32)
    model.ops = TRAIN_OPS
    return model


def fake_mxfp4(w: torch.Tensor) -> torch.Tensor:
    """``w`` rounded to MXFP4 in the forward pass, identity in the backward pass (straight-through)."""
    rounded = dequantize_mxfp4(*quantize_mxfp4(w.detach()), torch.float32)
    return w + (rounded - w).detach()


def batches(examples: list[Example], batch_size: int, rng: random.Random) -> Iterator[list[Example]]:
    """Endless batches of similar length (little padding): shuffle, sort within windows of 64 batches, shuffle."""
    while True:
        order = examples[:]
        rng.shuffle(order)
        window = batch_size * 64
        chunks: list[list[Example]] = []
        for start in range(0, len(order), window):
            part = sorted(order[start : start + window], key=lambda e: len(e.ids))
            chunks += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
        rng.shuffle(chunks)
        yield from chunks


def make_batch(
    batch: list[Example], to_sub: torch.Tensor, other: int, rng: random.Random, noise_share: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-vocabulary ids ``[B, T]`` and loss targets ``[B, T]`` (-100 = no loss: prompts, tool results, padding).

    With probability ``noise_share`` a sequence gets one or two "other" tokens at the start of the user's text
    (everything after shifts right; the loss spans shift with it), so the model learns to read past unknown input
    tokens.
    """
    rows: list[list[int]] = []
    row_spans: list[tuple[tuple[int, int], ...]] = []
    for ex in batch:
        ids = ex.ids
        spans = ex.spans
        if rng.random() < noise_share:
            # the first prompt's last <|message|> opens the user's text
            cut = [i for i, t in enumerate(ids[: ex.prompt_len]) if t == 200008][-1] + 1
            extra = rng.randint(1, 2)
            ids = ids[:cut] + [-1] * extra + ids[cut:]
            spans = tuple((start + extra, end + extra) for start, end in spans)
        rows.append(ids)
        row_spans.append(spans)
    length = max(len(r) for r in rows)
    full = torch.full((len(rows), length), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        full[i, : len(r)] = torch.tensor(r)
    sub = torch.where(full >= 0, to_sub[full.clamp(min=0)], torch.full_like(full, other))  # -1 -> other
    targets = torch.full_like(sub, -100)
    for i, spans in enumerate(row_spans):
        for start, end in spans:
            # position t predicts token t+1; the loss covers the target tokens [start, end)
            targets[i, start - 1 : end - 1] = sub[i, start:end]
    return sub, targets


def train(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    # e.g. the embedding's backward (index_add over repeated ids) is otherwise free to sum in any order
    torch.use_deterministic_algorithms(True)
    rng = random.Random(args.seed)
    enc = get_encoding()

    examples = training_examples(args.steps * args.batch_size, args.seed, enc, MIXES[args.mix])
    used: set[int] = extra_token_ids()
    for ex in examples:
        used.update(ex.ids)
    init: dict[str, torch.Tensor] | None = None
    init_manifest: dict[str, Any] | None = None
    if args.init is not None:
        init, init_ids, init_manifest = load_init(args.init)
        used.update(init_ids)
    used_ids = sorted(used)
    other = len(used_ids)  # index of the shared row
    to_sub = torch.full((REAL_VOCAB,), other, dtype=torch.long)
    to_sub[torch.tensor(used_ids)] = torch.arange(len(used_ids))
    # The N unused ids share one logit; together they weigh as that logit + log N (see the module docstring).
    other_offset = math.log(REAL_VOCAB - len(used_ids))
    data_seconds = time.perf_counter() - started
    logger.info("%d examples, %d used token ids (%.1f s)", len(examples), len(used_ids), data_seconds)

    config = DEMO_CONFIG.replace(vocab_size=len(used_ids) + 1)
    if init is not None:
        params = start_params(init, init_ids, used_ids)
    else:
        params = init_params(config, torch.Generator().manual_seed(args.seed))
    if args.tied_init and init is None:
        # The unembedding starts as a copy of the embedding (they stay separate parameters): a head that moves a
        # token's embedding to a later position then already predicts that token, which is how the model copies
        # numbers from the question into a call and from a tool's result into the answer.
        with torch.no_grad():
            params["unembedding.weight"].copy_(params["embedding.weight"])
    decay = [p for n, p in params.items() if p.dim() >= 2]
    no_decay = [p for n, p in params.items() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    qat_from = int(args.steps * (1 - args.qat_share))
    warmup = max(1, args.steps // 20)
    stream = batches(examples, args.batch_size, rng)
    offset = torch.zeros(len(used_ids) + 1)
    offset[other] = other_offset
    token_weight = digit_weights(used_ids, args.digit_weight) if args.digit_weight != 1.0 else None
    losses: list[float] = []
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / warmup)
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))  # cosine to 10 %
        for group in optimizer.param_groups:
            group["lr"] = lr
        tensors = dict(params)
        if step >= qat_from:
            for name in tensors:
                if name.endswith(_EXPERT_SUFFIXES):
                    tensors[name] = fake_mxfp4(params[name])
        model = training_model(config, tensors)
        ids, targets = make_batch(next(stream), to_sub, other, rng, args.noise_share)
        hidden = model.forward_hidden(ids)  # [B, T, H]
        # Logits only where there is a target (the completions; prompts and tool results are most of the tokens).
        scored = targets != -100  # [B, T]
        assert isinstance(model.unembedding, torch.Tensor)  # trained in bf16/fp32, never 8-bit
        logits = F.linear(hidden[scored], model.unembedding) + offset  # [N, U+1]
        wanted = targets[scored]  # [N]
        if token_weight is None:
            loss = F.cross_entropy(logits, wanted)
        else:
            weights = token_weight[wanted]  # [N]
            loss = (F.cross_entropy(logits, wanted, reduction="none") * weights).sum() / weights.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < args.steps:
            # an intermediate copy to evaluate while training goes on (same format as the final one)
            partial = {"steps_done": step + 1, "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4)}
            detached = {n: p.detach() for n, p in params.items()}
            export(Path(args.out) / f"step-{step + 1}", detached, used_ids, args.seed, partial)
        if step % 50 == 0 or step == args.steps - 1:
            logger.info(
                "step %d/%d loss %.4f lr %.2e (%.0f s)", step, args.steps, losses[-1], lr, time.perf_counter() - started
            )

    train_seconds = time.perf_counter() - started
    stats: dict[str, Any] = {
        "examples": len(examples),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "qat_steps": args.steps - qat_from,
        "tied_init": args.tied_init and init is None,
        "mix": args.mix,
        "digit_weight": args.digit_weight,
        "threads": args.threads,
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "data_seconds": round(data_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "torch": torch.__version__,
    }
    if init_manifest is not None:
        # what the fine-tune started from: the base run's version and its own training record
        stats["init"] = {"version": init_manifest["version"], "training": init_manifest["training"]}
    export(Path(args.out), {n: p.detach() for n, p in params.items()}, used_ids, args.seed, stats)
    return stats


def export(out: Path, params: dict[str, torch.Tensor], used_ids: list[int], seed: int, stats: dict[str, Any]) -> None:
    """Write the compact weights (used rows only, MXFP4 experts) and the manifest into ``out``."""
    compact: dict[str, torch.Tensor] = {}
    for name, value in params.items():
        if name.endswith(_EXPERT_SUFFIXES):
            compact[f"{name}.blocks"], compact[f"{name}.scales"] = quantize_mxfp4(value)
        elif name in ("embedding.weight", "unembedding.weight"):
            # [U + 1, H]: the used rows, then the shared row every unused id gets at materialisation
            compact[name.replace(".weight", ".rows")] = value.to(torch.bfloat16)
        else:
            compact[name] = value.to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_NAME
    save_file({k: v.contiguous() for k, v in compact.items()}, str(weights), metadata={"format": "gpt-oss-demo"})
    weights.chmod(0o644)  # safetensors may create it private; it ships as package data
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    manifest = {
        "name": "gpt-oss demo",
        "description": TOY_LABEL,
        "format_version": FORMAT_VERSION,
        "version": f"{FORMAT_VERSION}-{digest[:12]}",
        "seed": seed,
        "config": DEMO_CONFIG.to_original_dict(),
        "weights_file": WEIGHTS_NAME,
        "weights_sha256": digest,
        "training": stats,
        "used_token_ids": used_ids,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %s (%d bytes) and %s", weights, weights.stat().st_size, MANIFEST_NAME)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.demo.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("resources/demo"), help="folder for the compact weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--qat-share", type=float, default=0.2, help="last share of steps trained through MXFP4")
    p.add_argument("--noise-share", type=float, default=0.1, help="share of prompts with unknown tokens")
    p.add_argument(
        "--tied-init",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the unembedding as the embedding",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (results depend on it)")
    p.add_argument("--init", type=Path, default=None, help="fine-tune from the compact weights in this folder")
    p.add_argument("--mix", choices=tuple(MIXES), default="base", help="training mixture (tools.demo.mix)")
    p.add_argument("--save-every", type=int, default=0, help="also export every N steps into OUT/step-N")
    p.add_argument("--digit-weight", type=float, default=1.0, help="loss weight of target tokens with a digit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    stats = train(parse_args(argv))
    logger.info("done: %s", json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
