"""Drive the envs with your own loop and a (tiny, local) LLM policy.

What it shows:

1. The plain PettingZoo AEC loop (``for agent in env.agent_iter(): ... env.last() ... env.step(...)``)
   with an :class:`~ccpo_agents.policies.HFPolicy` for each role, and what ``infos`` carry.
2. The counterfactual hooks: ``env.counterfactual(remove=["thinker"])`` (a branch on the same problem,
   stepped by you) and ``env.reset(options={"problem": ..., "remove": ["thinker"]})``.
3. The same with the batched driver :func:`ccpo_env.rollout`: n thoughts x m answers per problem plus
   k solo answers, each policy called once per turn for the whole batch.

The model is ``build_tiny("tiny")``: a ~110K-parameter Qwen2-style model with *random weights* and a
locally trained tokenizer (no download). Its outputs are gibberish and every answer is wrong -- that
is expected; the point is the plumbing. Swap in a real model with
``HFPolicy.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct", role=...)`` and the code stays the same.

Run::

    python examples/custom_policy_loop.py                      # a few seconds on CPU
    python examples/custom_policy_loop.py --max-new-tokens 8 --problems 2   # fastest
"""

from __future__ import annotations

import argparse
import sys

from ccpo_agents.models.tiny import build_tiny
from ccpo_agents.policies import DEFAULT_SYSTEM_PROMPTS, GenerationConfig, HFPolicy, PolicyStats
from ccpo_env import COMPACT_TEMPLATES, ThinkSolveEnv, rollout


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", help="tiny model preset: tiny, tiny-small, tiny-base (default tiny)")
    p.add_argument("--max-new-tokens", type=int, default=24, help="completion length limit (default 24)")
    p.add_argument("--problems", type=int, default=3, help="problems in the batched rollout (default 3)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def short(text: str, n: int = 70) -> str:
    """One line, at most ``n`` characters (the tiny model writes control characters and newlines)."""
    flat = repr(text)[1:-1]
    return flat if len(flat) <= n else flat[: n - 3] + "..."


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    model, tokenizer = build_tiny(args.preset, seed=args.seed)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=1.0)
    # One shared model, one policy object per role (its own system prompt and call statistics).
    policies = {
        role: HFPolicy(model, tokenizer, role=role, system_prompt=DEFAULT_SYSTEM_PROMPTS[role], generation=gen)
        for role in ("thinker", "solver")
    }
    n_params = sum(p.numel() for p in model.parameters())
    print(f"policy: HFPolicy over build_tiny({args.preset!r}) -- {n_params:,} parameters, RANDOM weights, "
          "so expect gibberish and wrong answers\n")

    # Short prompts: a tiny model's context is mostly wasted on the default instructions.
    env = ThinkSolveEnv(dataset="arith", templates=COMPACT_TEMPLATES, render_mode="ansi", seed=args.seed)

    # 1. The plain AEC loop. The env takes a str or anything with a `.text` (HFPolicy returns
    #    Generation objects carrying the token ids and log-probs a trainer needs).
    print("== 1. PettingZoo AEC loop ==")
    env.reset(seed=args.seed)
    for step, agent in enumerate(env.agent_iter()):
        obs, reward, term, trunc, info = env.last()
        if term or trunc:
            print(f"[{agent}] done: reward {reward:+.0f}, infos = {info}")
            env.step(None)
            continue
        out = policies[agent]([obs], seeds=[args.seed + step])[0]
        print(f"[{agent}] sees:  {short(obs)}")
        print(f"[{agent}] says:  {short(out.text)}  ({len(out.token_ids)} tokens, "
              f"sum log-prob {sum(out.logprobs):.1f}, truncated={out.truncated})")
        env.step(out)
    print(env.render())

    # 2. Counterfactual hooks: the same problem with the Thinker removed.
    print("\n== 2. counterfactual hooks ==")
    branch = env.counterfactual(remove=["thinker"])
    print(f"env.counterfactual(remove=['thinker']): agents {branch.agents}, removed {branch.removed}, "
          f"same problem: {branch.problem.id == env.problem.id}")
    print(f"  the Solver now sees the solo prompt: {short(str(branch.observe('solver')))}")
    for agent in branch.agent_iter():
        obs, reward, term, trunc, info = branch.last()
        if term or trunc:
            print(f"  [{agent}] done: reward {reward:+.0f}, infos['removed'] = {info['removed']}, "
                  f"pred = {info['pred']!r}, reason = {info['reason']!r}")
        branch.step(None if term or trunc else policies[agent]([obs], seeds=[args.seed])[0])
    # Equivalent, on any env: reset straight into the branch.
    env.reset(seed=args.seed, options={"problem": env.problem.id, "remove": ["thinker"]})
    print(f"env.reset(options={{'problem': id, 'remove': ['thinker']}}): first to act is {env.agent_selection!r}")

    # 3. Batched: n=2 thoughts x m=2 answers per problem + k=2 solo answers, all in 2 policy calls.
    print("\n== 3. batched rollout ==")
    for policy in policies.values():
        policy.stats = PolicyStats()  # count this rollout's calls only
    episodes = rollout(
        env, policies, args.problems, num_samples=2, fanout={"thinker": 2},
        counterfactuals=[["thinker"]], num_counterfactual=2, seed=args.seed, progress=sys.stderr.isatty(),
    )
    print(f"{len(episodes)} episodes; policy calls: " + ", ".join(
        f"{role} {policy.stats.calls} call(s) / {policy.stats.observations} observations"
        for role, policy in policies.items()))
    print(f"  (the solver's call mixed joint and solo prompts; identical prompts were encoded once: "
          f"{policies['solver'].stats.prompts_encoded} distinct prompts)")
    print(f"  {'uid':>3} {'group':>5} {'removed':>9} {'sample':>6} {'fork':>4} {'reward':>6}  solver's answer")
    for e in episodes:
        answer = e.turn("solver").action
        print(f"  {e.uid:>3} {e.group:>5} {','.join(e.removed) or '-':>9} {e.sample:>6} {e.fork:>4} "
              f"{e.rewards['solver']:>+6.0f}  {short(answer, 40)}")
    first = episodes[0]
    print(f"episode 0 keeps what the policy sampled: {type(first.turn('thinker').output).__name__} with "
          f"{len(first.turn('thinker').output.token_ids)} token ids and log-probs; "
          f"final infos['solver'] keys: {sorted(first.infos['solver'])}")


if __name__ == "__main__":
    main()
