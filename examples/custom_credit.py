"""Add your own credit assigner in a few lines, then compare it with the built-in ones.

What it shows:

1. ``ccpo_agents.credit.register_credit``: a new method, ``ccpo_simple``, registered by name with what
   it needs (Thinker-removed "solo" rollouts), which roles it returns already baselined, and a typed
   config. It is the plainest counterfactual credit: the Thinker gets ``R_joint - V_solo`` (its
   episode's reward minus the prompt's mean Solver-alone reward), optionally clipped; the Solver
   gets ``R_joint``.
2. Running it exactly like a built-in: rollouts from :func:`ccpo_env.rollout` (n thoughts x m
   answers per problem plus k solo answers, scripted policies), turned into a ``CreditBatch`` with
   ``credit_batch_from_episodes``, then ``CreditAssigner(name)``.
3. Its per-role credit next to ``shared`` (everyone gets ``R_joint``) and ``ccpo_tree`` (ours:
   ``V(thought) - V_solo`` for the Thinker, the Solver baselined within its thought).

The task is arith's ``freeride`` variant: on one-operation items the Solver succeeds alone, so a
counterfactual credit gives the Thinker ~0 there, while ``shared`` pays it +1 for nothing. The
scripted Solver sometimes slips: ``ccpo_simple`` then charges the Solver's luck to the Thinker of that
episode, whereas ``ccpo_tree`` averages the m answers to each thought first (``V(thought)``) -- which
is why it samples m >= 2 answers per thought.

Run::

    python examples/custom_credit.py
    python examples/custom_credit.py --problems 2 --clip 1.0
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/ is not a package: find scripted.py

from scripted import ScriptedSolver, ScriptedThinker  # noqa: E402

from ccpo_agents.credit import (  # noqa: E402
    CreditAssigner,
    CreditBatch,
    credit_batch_from_episodes,
    list_credits,
    register_credit,
)
from ccpo_env import ThinkSolveEnv, rollout  # noqa: E402


# ------------------------------------------------------------------ the custom credit assigner (all of it)
@dataclass(frozen=True)
class SimpleConfig:
    """Options of ``ccpo_simple``. ``clip``: bound ``|credit|`` of the Thinker (``None``: no clipping)."""

    clip: float | None = None


# baselined_roles: the Thinker's credit is already an advantage (the counterfactual is its baseline), so
# estimators only scale it. overwrite=True: re-running this script in one session (notebook) is fine.
@register_credit("ccpo_simple", baselined_roles=("thinker",), needs=("solo",), config_cls=SimpleConfig,
                 overwrite=True)
def ccpo_simple(batch: CreditBatch, config: SimpleConfig) -> dict[str, np.ndarray]:
    """Thinker: ``R_joint - V_solo`` (optionally clipped); Solver: ``R_joint``."""
    delta = batch.joint_reward - batch.solo_group_mean()  # V_solo: mean of the prompt's k solo rewards
    if config.clip is not None:
        delta = np.clip(delta, -config.clip, config.clip)
    return {"thinker": delta, "solver": batch.joint_reward.copy()}
# ---------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problems", type=int, default=4, help="problems (prompt groups), default 4")
    p.add_argument("--thoughts", type=int, default=2, help="n: Thinker messages per problem (default 2)")
    p.add_argument("--answers", type=int, default=2, help="m: Solver answers per thought (default 2, >= 2)")
    p.add_argument("--solo", type=int, default=4, help="k: Solver-alone answers per problem (default 4)")
    p.add_argument("--thinker-slip", type=float, default=0.4, help="scripted Thinker's error rate")
    p.add_argument("--solver-slip", type=float, default=0.25, help="scripted Solver's error rate")
    p.add_argument("--clip", type=float, default=None, help="clip ccpo_simple's Thinker credit to +-CLIP")
    p.add_argument("--seed", type=int, default=5, help="default 5: a small batch that shows every case")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = ThinkSolveEnv(dataset="arith", dataset_options={"variant": "freeride"}, seed=args.seed)
    policies = {"thinker": ScriptedThinker(slip=args.thinker_slip, seed=args.seed), "solver": ScriptedSolver(slip=args.solver_slip, seed=args.seed)}
    episodes = rollout(
        env, policies, args.problems, num_samples=args.thoughts, fanout={"thinker": args.answers},
        counterfactuals=[["thinker"]], num_counterfactual=args.solo, seed=args.seed,
    )
    joint = [e for e in episodes if not e.removed]
    solo = [e for e in episodes if e.removed == ("thinker",)]
    batch = credit_batch_from_episodes(joint, solo)

    methods = ["shared", "ccpo_tree", "ccpo_simple"]
    results = {}
    for name in methods:
        config = {"clip": args.clip} if name == "ccpo_simple" else None
        results[name] = CreditAssigner(name, config=config)(batch)  # each keeps its own normalizer state

    print(f"registered credit methods: {', '.join(list_credits())}")
    print(f"{len(joint)} joint episodes ({args.problems} problems x {args.thoughts} thoughts x {args.answers} "
          f"answers) + {len(solo)} solo episodes; rewards are +-1\n")
    head = "".join(f"{m:>18}" for m in methods)
    print(f"{'grp':>3} {'thought':>7} {'kind':>5} {'R_joint':>7} {'V_solo':>7}{head}")
    print(f"{'':>32}" + "".join(f"{'thinker  solver':>18}" for _ in methods))
    v_solo = batch.solo_group_mean()
    for i, e in enumerate(joint):
        kind = env.dataset[e.problem_index].extras["kind"]
        row = "".join(
            f"{results[m].rewards['thinker'][i]:>+10.2f}{results[m].rewards['solver'][i]:>+8.2f}" for m in methods
        )
        print(f"{e.group:>3} {int(batch.thought[i]):>7} {kind:>5} {batch.joint_reward[i]:>+7.0f} {v_solo[i]:>+7.2f}{row}")

    print("\nhow the estimators will treat each method's credit (baselined = scale only, never re-centre):")
    for m in methods:
        r = results[m]
        keys = {role: "prompt" if np.array_equal(r.group_keys[role], batch.group)
                else "thought" if np.array_equal(r.group_keys[role], batch.thought) else "custom"
                for role in r.rewards}
        print(f"  {m:12} baselined {r.baselined}  grouped by {keys}")
    solo_items = np.array([env.dataset[e.problem_index].extras["kind"] == "solo" for e in joint])
    if solo_items.any():
        print("\nThinker's mean credit on one-operation items, where its thought cannot matter (a counterfactual "
              "credit is 0 there in expectation; what is left is the Solver's slips):\n  "
              + ", ".join(f"{m} {results[m].rewards['thinker'][solo_items].mean():+.2f}" for m in methods))


if __name__ == "__main__":
    main()
