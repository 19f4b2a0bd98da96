"""Quickstart: play a batch of team episodes with scripted policies and measure what each agent adds.

What it shows (no model, no GPU, no download; a few seconds on a laptop CPU):

1. ``ThinkSolveEnv`` on the offline ``arith`` task, driven by :func:`ccpo_env.rollout`: a scripted
   Thinker writes the intermediate results, a scripted Solver that can do only one operation
   answers. For every problem the driver also plays *counterfactual* branches with the Thinker
   removed (the Solver answers alone, from the solo prompt), batched into the same policy calls.
   The table compares the team's accuracy with the Solver-alone accuracy: their difference is the
   Thinker's contribution, ``R_joint - R_not_thinker`` -- the signal CCPO's credit is built on.
2. One episode rendered as a transcript (``render_mode="ansi"``), played with the plain PettingZoo
   AEC loop, and its Thinker-removed branch from ``env.counterfactual(remove=["thinker"])``.
3. ``VotingEnv``: N noisy scripted voters, plurality vote vs a single voter, and each voter's
   leave-one-out counterfactual reward ``R_not_i`` (computed by re-counting, no new decoding).

By default the task is the ``freeride`` variant of ``arith``: half the problems are a single
operation that the Solver does alone (the Thinker adds nothing there), half need the Thinker's
intermediate results. ``--variant standard`` makes every problem need the Thinker.

The policies (``examples/scripted.py``) are plain callables ``list[str] -> list[str]``; swap in an
LLM policy (e.g. ``ccpo_agents.policies.HFPolicy``) and nothing else changes.

Run::

    python examples/quickstart.py                  # 64 problems, ~1 s after imports
    python examples/quickstart.py --problems 8     # fastest
    python examples/quickstart.py --variant standard --level 3 --thinker-slip 0.3
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/ is not a package: find scripted.py

from scripted import NoisyVoter, ScriptedSolver, ScriptedThinker  # noqa: E402

from ccpo_env import Episode, ThinkSolveEnv, VotingEnv, rollout  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problems", type=int, default=64, help="problems per environment (default 64)")
    p.add_argument("--samples", type=int, default=4, help="joint episodes per problem (default 4)")
    p.add_argument("--solo", type=int, default=4, help="Thinker-removed branches per problem (default 4)")
    p.add_argument("--variant", choices=["freeride", "standard"], default="freeride", help="arith variant")
    p.add_argument("--level", type=int, default=2, choices=range(1, 6), help="arith difficulty 1..5 (default 2)")
    p.add_argument("--thinker-slip", type=float, default=0.15, help="chance the Thinker gets a step wrong")
    p.add_argument("--voters", type=int, default=5, help="voters in VotingEnv (default 5)")
    p.add_argument("--voter-accuracy", type=float, default=0.5, help="chance a voter is right (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def think_solve(args: argparse.Namespace, progress: bool) -> None:
    env = ThinkSolveEnv(
        dataset="arith", dataset_options={"variant": args.variant, "level": args.level}, seed=args.seed,
        render_mode="ansi",
    )
    thinker, solver = ScriptedThinker(slip=args.thinker_slip, seed=args.seed), ScriptedSolver()
    policies = {"thinker": thinker, "solver": solver}

    # One call per agent turn for the whole batch: joint episodes and Thinker-removed branches alike.
    episodes = rollout(
        env, policies, args.problems, num_samples=args.samples,
        counterfactuals=[["thinker"]], num_counterfactual=args.solo, seed=args.seed, progress=progress,
    )
    joint = [e for e in episodes if not e.removed]
    solo = [e for e in episodes if e.removed == ("thinker",)]

    def acc(eps: list[Episode]) -> float:
        return mean(float(e.correct) for e in eps) if eps else float("nan")

    def reward(eps: list[Episode]) -> float:
        return mean(e.rewards["solver"] for e in eps) if eps else float("nan")

    # The Thinker's marginal contribution per problem: mean joint reward minus mean solo reward.
    by_group: dict[int, dict[str, list[float]]] = defaultdict(lambda: {"joint": [], "solo": []})
    for e in episodes:
        by_group[e.group]["solo" if e.removed else "joint"].append(e.rewards["solver"])
    deltas = [mean(g["joint"]) - mean(g["solo"]) for g in by_group.values()]

    print(f"== ThinkSolveEnv on arith ({args.variant}, level {args.level}): {args.problems} problems x "
          f"{args.samples} joint episodes + {args.solo} Thinker-removed branches ==")
    print(f"{'':38}{'accuracy':>10}{'mean reward':>14}")
    print(f"  {'team (Thinker -> Solver)':36}{acc(joint):>10.3f}{reward(joint):>+14.3f}")
    print(f"  {'Solver alone (Thinker removed)':36}{acc(solo):>10.3f}{reward(solo):>+14.3f}")
    print(f"  {'Thinker contribution (joint - solo)':36}{acc(joint) - acc(solo):>+10.3f}{mean(deltas):>+14.3f}")
    helped = sum(d > 0 for d in deltas)
    hurt = sum(d < 0 for d in deltas)
    print(f"  per problem: the Thinker helped on {helped}, hurt on {hurt}, made no difference on "
          f"{len(deltas) - helped - hurt} of {len(deltas)}")
    if args.variant == "freeride":
        # Split by item kind: a counterfactual credit pays the Thinker only where its thought mattered.
        for kind in ("joint", "solo"):
            j = [e for e in joint if env.dataset[e.problem_index].extras["kind"] == kind]
            s = [e for e in solo if env.dataset[e.problem_index].extras["kind"] == kind]
            what = "need the Thinker" if kind == "joint" else "one operation, Solver alone suffices"
            if j:
                print(f"    {kind:5} items ({what}): team {acc(j):.3f} vs Solver alone {acc(s):.3f}")

    # One transcript, played with the plain PettingZoo AEC loop on a problem that needs the Thinker.
    shown = next((e for e in joint if env.dataset[e.problem_index].extras["needs_thought"]), joint[0])
    env.reset(seed=args.seed, options={"problem": shown.problem_index})
    for agent in env.agent_iter():
        obs, _, term, trunc, _ = env.last()
        env.step(None if term or trunc else policies[agent]([obs], seeds=[args.seed])[0])
    print("\n-- one episode (env.render() with render_mode='ansi') --")
    print(env.render())
    # The same problem with the Thinker removed: a branch env, stepped by the caller.
    branch = env.counterfactual(remove=["thinker"])
    for agent in branch.agent_iter():
        obs, _, term, trunc, _ = branch.last()
        branch.step(None if term or trunc else policies[agent]([obs], seeds=[args.seed])[0])
    print("\n-- its counterfactual branch: env.counterfactual(remove=['thinker']) --")
    print(branch.render())


def voting(args: argparse.Namespace, progress: bool) -> None:
    env = VotingEnv(dataset="arith", dataset_options={"level": args.level}, num_voters=args.voters,
                    seed=args.seed, render_mode="ansi")
    voter = NoisyVoter(p=args.voter_accuracy, seed=args.seed)  # one callable serves every voter
    episodes = rollout(env, voter, args.problems, seed=args.seed, progress=progress)

    plurality = mean(float(e.correct) for e in episodes)
    single = mean(float(e.infos[a]["vote_correct"]) for e in episodes for a in e.infos)
    print(f"\n== VotingEnv on arith (level {args.level}): {args.problems} problems, {args.voters} noisy voters "
          f"(each right with p={args.voter_accuracy}) ==")
    print(f"  {'plurality vote accuracy':36}{plurality:>10.3f}")
    print(f"  {'single voter accuracy':36}{single:>10.3f}")
    print(f"  {'mean joint reward (ties: expected)':36}{mean(e.rewards['voter_0'] for e in episodes):>+10.3f}")

    # Leave-one-out credit: R_joint - R_not_i, from re-counting the recorded votes (no decoding).
    deltas: dict[bool, list[float]] = {True: [], False: []}
    for e in episodes:
        assert e.counterfactual_rewards is not None
        for agent, r_without in e.counterfactual_rewards.items():
            deltas[bool(e.infos[agent]["vote_correct"])].append(e.rewards[agent] - r_without)
    def avg(xs: list[float]) -> float:
        return mean(xs) if xs else float("nan")  # e.g. no voter was ever right

    print(f"  mean leave-one-out credit R_joint - R_not_i: right voters {avg(deltas[True]):+.3f}, "
          f"wrong voters {avg(deltas[False]):+.3f}")

    # One recorded episode in detail: a won vote with dissenters.
    e = next((x for x in episodes if x.correct and not all(i["vote_correct"] for i in x.infos.values())),
             episodes[0])
    print(f"\n-- one vote: gold {e.infos['voter_0']['gold']}, joint reward {e.rewards['voter_0']:+.2f} --")
    print(f"  {'voter':9}{'answer':>8}{'right':>7}{'R_not_i':>9}{'credit':>8}")
    for agent, info in e.infos.items():
        r_without = e.counterfactual_rewards[agent]
        print(f"  {agent:9}{info['pred']!s:>8}{'yes' if info['vote_correct'] else 'no':>7}"
              f"{r_without:>+9.2f}{e.rewards[agent] - r_without:>+8.2f}")
    # Re-render the recorded episode: replay its actions into the env (AEC loop, no policy calls).
    recorded = iter(turn.action for turn in e.turns)
    env.reset(seed=args.seed, options={"problem": e.problem_index})
    for _agent in env.agent_iter():
        _, _, term, trunc, _ = env.last()
        env.step(None if term or trunc else next(recorded))
    print("\n-- its transcript (replayed into the env, render_mode='ansi') --")
    print(env.render())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    progress = sys.stderr.isatty()  # a progress bar for interactive runs only (it goes to stderr)
    think_solve(args, progress)
    voting(args, progress)


if __name__ == "__main__":
    main()
