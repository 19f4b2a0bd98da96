"""Train a Thinker and a Solver with tianshou 2.x multi-agent PPO on the discrete-choice view of ``arith``.

What it shows:

- :class:`ccpo_env.wrappers.DiscreteChoiceEnv` turns ``ThinkSolveEnv`` (or ``VotingEnv``) into a
  PettingZoo env with ``Discrete(4)`` actions: each agent picks one of four candidate texts from the
  scripted :class:`~ccpo_env.wrappers.ArithMenuProposer` menu (right and wrong thoughts, derived
  answers, guesses), and sees hashed features of the problem, the earlier moves and the candidates,
  with an action mask.
- tianshou trains it for real: ``MultiAgentOnPolicyAlgorithm`` over one ``PPO`` per agent
  (independent learners), ``Collector`` over a ``DummyVectorEnv`` of ``PettingZooEnv``.
- Any ccpo credit method is the reward transform (``--credit shared|ccpo_tree`` for the dyad,
  ``shared|voting`` for voters): :class:`ccpo_agents.interop.CreditRewards` turns its ``CreditResult``
  into per-agent rewards on the collected episodes. ``ccpo_tree`` runs one Thinker-removed branch per
  episode: the Solver choosing again, from candidates proposed without a thought.
- The team's return on held-out (test split) problems, greedy, before and after training, and then a few
  identical episodes with what each credit method pays each agent for them.

This is algorithm research on team credit with cheap actions; no LLM text generation is trained (see
``python examples/tianshou_interop.py`` for LLM policies inside a tianshou pipeline, and the ccpo
trainer for training them). The loop itself lives in :mod:`ccpo_agents.interop.tianshou_marl`.

Run::

    python examples/tianshou_marl.py                          # shared reward, ~1 min on 2 cores
    python examples/tianshou_marl.py --credit ccpo_tree       # counterfactual Thinker credit
    python examples/tianshou_marl.py --env voting --credit voting --variant standard
    python examples/tianshou_marl.py --iterations 3 --episodes-per-iter 32 --eval-problems 50   # fastest
"""

from __future__ import annotations

import argparse
import logging
import os

# tianshou JIT-compiles numba kernels (GAE, buffer indexing) when it builds a policy or buffer: ~10 s
# on a small CPU that only pays off on large buffers. These buffers are small: skip it unless set.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from ccpo_agents.interop.tianshou_marl import (  # noqa: E402
    MARLConfig,
    credit_on_identical_episodes,
    make_choice_env,
    train_marl,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = MARLConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", choices=["think_solve", "voting"], default=d.env)
    p.add_argument("--credit", default=d.credit, help="credit method used as reward (default shared)")
    p.add_argument("--level", type=int, default=d.level, choices=range(1, 6), help="arith level (default 1)")
    p.add_argument("--variant", choices=["standard", "freeride"], default=d.variant,
                   help="arith variant (default freeride: half the items need no thought)")
    p.add_argument("--iterations", type=int, default=d.iterations, help=f"collect/update rounds (default {d.iterations})")
    p.add_argument("--episodes-per-iter", type=int, default=d.episodes_per_iter)
    p.add_argument("--envs", type=int, default=d.num_envs, help="parallel envs (default 8)")
    p.add_argument("--eval-problems", type=int, default=d.eval_problems, help="held-out problems (default 200)")
    p.add_argument("--eval-every", type=int, default=5, help="held-out evaluation every N rounds (default 5)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--show-episodes", type=int, default=6, help="episodes shown under every credit method (default 6)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Multi-agent returns are 2-D (one column per agent) by design; tianshou logs a warning about it.
    logging.getLogger("tianshou.data.stats").setLevel(logging.ERROR)
    cfg = MARLConfig(
        env=args.env, credit=args.credit, level=args.level, variant=args.variant, iterations=args.iterations,
        episodes_per_iter=args.episodes_per_iter, num_envs=args.envs, eval_problems=args.eval_problems,
        eval_every=args.eval_every, seed=args.seed,
    )
    print(f"independent PPO per agent (tianshou MultiAgentOnPolicyAlgorithm) on discrete-choice arith "
          f"L{cfg.level} {cfg.variant}, env {cfg.env}, reward: {cfg.credit} credit")
    result = train_marl(cfg, log=print)
    before, after = result.before, result.after
    print(f"held-out team return untrained {before['return']:+.3f} -> trained {after['return']:+.3f} "
          f"({cfg.eval_problems} test problems, greedy)")
    print(f"held-out team accuracy untrained {before['accuracy']:.3f} -> trained {after['accuracy']:.3f}")
    for kind in ("joint", "solo"):
        key = f"accuracy_{kind}"
        if key in after:
            print(f"  {kind} items: {before[key]:.3f} -> {after[key]:.3f}")
    print(f"{cfg.iterations * cfg.episodes_per_iter} training episodes in {result.seconds:.1f} s")

    # The same episodes under each credit method: what each agent would be paid.
    methods = ["shared", "ccpo_tree"] if cfg.env == "think_solve" else ["shared", "voting"]
    team, rewards = credit_on_identical_episodes(result.algorithm, cfg, methods, episodes=args.show_episodes,
                                                 seed=cfg.seed)
    dataset = make_choice_env(cfg).unwrapped.dataset
    print(f"\ncredit on {len(team.joint_reward)} identical episodes (trained policy, sampling):")
    labels = [f"{m}:{a}" for m in methods for a in team.agents]
    has_solo = team.solo_reward is not None
    print("  item   R_joint" + (" V_solo" if has_solo else "") + "".join(f" {lab:>15}" for lab in labels))
    for e, (r, p) in enumerate(zip(team.joint_reward, team.group)):
        kind = dataset[int(p)].extras.get("kind", "-") if cfg.variant == "freeride" else "-"
        line = f"  {kind:<6} {r:+7.2f}"
        if has_solo:
            line += f" {team.solo_reward[team.solo_group == p].mean():+6.2f}"
        line += "".join(f" {v:+15.2f}" for m in methods for v in rewards[m][e])
        print(line)


if __name__ == "__main__":
    main()
