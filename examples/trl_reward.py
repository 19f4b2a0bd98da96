"""The ccpo verifier as a TRL reward function: ``reward(prompts, completions, **columns) -> list[float]``.

What it shows:

- :func:`ccpo_env.verify.make_trl_reward` builds a function with TRL's reward-function calling
  convention: TRL calls it with keyword arguments ``prompts``, ``completions``, ``completion_ids``,
  ``trainer_state`` and every other column of the training dataset (here ``answer``, the gold).
  Extra keywords it does not use are ignored.
- Both completion formats TRL produces: plain strings (standard datasets) and chat messages
  (conversational datasets: each completion is ``[{"role": "assistant", "content": ...}]``).
- Options: rewards for right/wrong/no-answer (e.g. a small format penalty) and a per-row answer type
  column (``"math"`` or ``"label"``, e.g. FOLIO's True/False/Uncertain).

No TRL needed to run this. With TRL installed, pass the same function to ``GRPOTrainer``::

    from trl import GRPOConfig, GRPOTrainer
    reward = make_trl_reward("answer")               # the gold column of your dataset
    trainer = GRPOTrainer(
        model="Qwen/Qwen2.5-0.5B-Instruct",
        reward_funcs=[reward],                        # logged as "ccpo_verifier_answer"
        train_dataset=dataset,                        # columns: "prompt" and "answer"
        args=GRPOConfig(output_dir="grpo-out"),
    )

(TRL's GRPOTrainer trains one model on one outcome; for a Thinker-Solver *team* with counterfactual
credit use the ccpo trainer.)

Run::

    python examples/trl_reward.py
"""

from __future__ import annotations

import argparse
from typing import Any

from ccpo_env.data import load_dataset
from ccpo_env.verify import make_trl_reward
from ccpo_env.verify.trl import completion_text  # how the reward reads a completion (str or chat)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--format-penalty", type=float, default=-0.1,
                   help="reward for a completion with no final answer in the second demo (default -0.1)")
    return p.parse_args(argv)


def show(title: str, completions: list[Any], golds: list[str], rewards: list[float]) -> None:
    print(f"\n== {title} ==")
    for completion, gold, r in zip(completions, golds, rewards):
        text = ("" if isinstance(completion, str) else "[chat] ") + completion_text(completion)
        print(f"  reward {r:+.2f}  gold {gold!s:>10}  completion {text[:60]!r}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    reward = make_trl_reward("answer")  # correct 1.0, wrong 0.0 (TRL's usual scale)
    print(f"reward function: {reward.__name__} (TRL logs rewards under this name)")

    # 1. A standard (plain text) dataset, as GRPOTrainer passes a batch of it: one row per completion,
    #    every dataset column repeated alongside (num_generations completions per prompt).
    rows = load_dataset("arith", split="test", level=2, limit=2)
    prompts = [p.problem for p in rows for _ in range(3)]
    answers = [p.answer for p in rows for _ in range(3)]
    completions = []
    for p in rows:
        right = int(p.answer)
        completions += [
            f"Work it out step by step. The answer is \\boxed{{{right}}}.",
            f"\\boxed{{{right + 1}}}",
            "I am not sure.",
        ]
    rewards = reward(
        prompts=prompts, completions=completions, answer=answers,
        completion_ids=[[0]] * len(completions), trainer_state=None,  # TRL passes these too: ignored
    )
    show("plain-string completions (standard dataset)", completions, answers, rewards)

    # 2. A conversational dataset: prompts and completions are chat messages. Math equivalence is the
    #    verifier's (1/2 == 0.5 == \frac{1}{2}); a missing answer gets a small penalty here.
    reward_fmt = make_trl_reward("answer", correct=1.0, incorrect=0.0, no_answer=args.format_penalty)
    chat_prompts = [[{"role": "user", "content": "What is 1 divided by 2?"}]] * 3 + [
        [{"role": "user", "content": "Solve x + 3 = 8."}]
    ]
    chat_completions = [
        [{"role": "assistant", "content": "Half: \\boxed{\\frac{1}{2}}"}],
        [{"role": "assistant", "content": "The answer is 0.5"}],
        [{"role": "assistant", "content": "It is a fraction."}],
        [{"role": "assistant", "content": [{"type": "text", "text": "So \\boxed{x = 5}"}]}],  # content parts
    ]
    chat_answers = ["0.5", "1/2", "1/2", "5"]
    rewards = reward_fmt(prompts=chat_prompts, completions=chat_completions, answer=chat_answers)
    show(f"chat-message completions (conversational dataset), no_answer={args.format_penalty:+}",
         chat_completions, chat_answers, rewards)

    # 3. Mixed answer types from a column: math rows and label rows (e.g. FOLIO) in one batch.
    reward_mixed = make_trl_reward("answer", answer_type_column="answer_type")
    mixed = ["\\boxed{42}", "The conclusion is True.", "\\boxed{Uncertain}"]
    golds, types = ["42", "True", "False"], ["math", "label", "label"]
    rewards = reward_mixed(prompts=["..."] * 3, completions=mixed, answer=golds, answer_type=types)
    show("mixed answer types (answer_type_column='answer_type')", mixed, golds, rewards)


if __name__ == "__main__":
    main()
