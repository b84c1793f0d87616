"""The demo model's synthetic data: the held-out split and the harmony rendering of an example."""

from __future__ import annotations

from gpt_oss_desktop.engine.vocab import RETURN
from tools.demo.data import completion_tokens, held_out_problems, is_held_out, training_examples


def test_data_split_and_rendering() -> None:
    problems = held_out_problems("arithmetic", 5)
    assert all(is_held_out(p.key) for p in problems)
    examples = training_examples(8, seed=0)
    assert all(ex.ids[ex.prompt_len - 2 :][:2] == [200006, 173781] for ex in examples)  # ends <|start|>assistant
    tail = completion_tokens("a", "b")
    assert tail[:3] == [200005, 35644, 200008] and tail[-1] == RETURN  # <|channel|>analysis<|message|> ... <|return|>
