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

With TRL installed (``pip install 'ccpo[trl]'``) the last part does exactly that: a real ``GRPOTrainer``
trains the tiny model (saved as a local Hugging Face folder, no download) on arith prompts for
``--trl-steps`` steps on CPU, rewarded by the ccpo verifier, and prints the reward per step.

(TRL's GRPOTrainer trains one model on one outcome; for a Thinker-Solver *team* with counterfactual
credit use the ccpo trainer. ``benchmarks/bench_vs_trl.py`` times the two on the same job.)

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
    p.add_argument("--trl-steps", type=int, default=2,
                   help="GRPOTrainer steps on the tiny model when TRL is installed; 0 = skip (default 2)")
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

    # 4. The same reward driving a real TRL GRPOTrainer (when TRL is installed).
    if args.trl_steps > 0:
        train_with_trl(args.trl_steps)


def train_with_trl(steps: int) -> list[float] | None:
    """Train the tiny model with TRL's GRPOTrainer for ``steps`` steps, the ccpo verifier as the reward;
    returns the mean reward per step (``None`` when TRL is not installed)."""
    try:
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        print("\n== TRL GRPOTrainer ==\n  TRL is not installed (pip install 'ccpo[trl]'): skipped")
        return None
    import tempfile

    from datasets import Dataset
    from transformers import TrainerCallback

    from ccpo_agents.models.tiny import build_tiny

    rows = load_dataset("arith", split="train", level=1, limit=64)
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p.problem}] for p in rows],
                              "answer": [p.answer for p in rows]})
    rewards: list[float] = []

    class Log(TrainerCallback):
        def on_log(self, a: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and "reward" in logs:
                rewards.append(float(logs["reward"]))

    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = build_tiny("tiny", seed=0)  # random-init tiny Qwen2 + local tokenizer
        model.save_pretrained(f"{tmp}/model")
        tokenizer.save_pretrained(f"{tmp}/model")
        config = GRPOConfig(
            output_dir=f"{tmp}/out", use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
            max_steps=steps, logging_steps=1, per_device_train_batch_size=8, num_generations=4,
            max_completion_length=8, learning_rate=1e-4, loss_type="dr_grpo", scale_rewards="none", seed=0,
            bf16=False,  # fp32 on CPU (and the same precision as a ccpo trainer in the same process)
        )
        trainer = GRPOTrainer(model=f"{tmp}/model", reward_funcs=[make_trl_reward("answer")],
                              train_dataset=data, args=config, callbacks=[Log()])
        trainer.train()
    print(f"\n== TRL GRPOTrainer, ccpo verifier as the reward, {steps} steps on the tiny model ==")
    for i, r in enumerate(rewards, 1):
        print(f"  step {i}: mean reward {r:.3f}")
    return rewards


if __name__ == "__main__":
    main()
