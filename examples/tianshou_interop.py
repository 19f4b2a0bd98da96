"""Drive ``ThinkSolveEnv`` with tianshou 2.x: ``PettingZooEnv``, ``DummyVectorEnv``, ``Collector``, and a
multi-agent policy whose per-agent policies are ccpo LLM policies.

What it shows:

- ``tianshou.env.PettingZooEnv(ThinkSolveEnv(...))`` works as is (both agents share one cached
  ``Text`` observation/action space, as tianshou requires), vectorised with ``DummyVectorEnv``.
- :class:`LLMPolicy`: a thin tianshou ``Policy`` around any ccpo text policy (a callable
  ``list[str] -> list[str]`` such as the scripted ones in ``scripted.py``, or ``--hf`` for a tiny
  ``HFPolicy`` with random weights, whose answers are gibberish). tianshou's collector gives it the
  observations of all ready envs at once, so the LLM is still called with a batch.
- The collector's statistics: episodes collected and the mean reward per agent.

What tianshou 2.0.1 needs for text, and the two small adapters this example uses (found by reading
``tianshou/algorithm/algorithm_base.py``, ``multiagent/marl.py`` and ``data/collector.py``):

1. Text itself is fine: observations reach the policy as a numpy ``object`` array of ``str`` in
   ``batch.obs``; a policy may return ``Batch(act=<object array of str>)``; ``map_action`` leaves
   non-``Box`` actions alone, ``DummyVectorEnv`` hands each env its ``str``, and the replay buffer
   stores object arrays.
2. But ``Policy.__init__`` rejects any action space that is not ``Discrete``/``MultiDiscrete``/
   ``MultiBinary``/``Box`` (``ValueError: Unsupported action space``), and ``MultiAgentPolicy``
   copies the first agent's space. :class:`LLMPolicy` therefore hands the base class a placeholder
   ``Discrete(1)`` (only used to set ``action_type``, which nothing here reads) and keeps the env's
   real ``Text`` space as ``text_action_space``.
3. ``MultiAgentPolicy.forward`` reads ``batch.obs_next`` whenever the observation has no action
   mask -- and ``PettingZooEnv`` adds a mask only for ``Discrete`` action spaces -- but the
   collector's action batch has no ``obs_next``, so collection fails with ``AttributeError``.
   :class:`TextMultiAgentPolicy` adds an empty ``obs_next`` before delegating. (The tic-tac-toe
   example never hits this because its Discrete actions always come with a mask.)

Speed: tianshou JIT-compiles numba kernels whenever a policy or vector buffer is built (~10 s on a
small CPU). They only pay off when training on large buffers, so this script sets
``NUMBA_DISABLE_JIT=1`` (unless already set) before importing tianshou.

This collects data only: tianshou's learning algorithms assume numeric actions, so nothing is trained
here. To train with tianshou's algorithms, use the discrete-choice view of the envs (each agent picks
one of K proposed texts): ``python examples/tianshou_marl.py`` trains one PPO per agent on it. For
training LLM teams use the ccpo trainer; this example is about interop (e.g. evaluation or data
collection inside a tianshou pipeline).

Run::

    python examples/tianshou_interop.py                  # scripted Thinker/Solver, 16 episodes
    python examples/tianshou_interop.py --hf             # tiny random-weights HFPolicy (gibberish)
    python examples/tianshou_interop.py --episodes 4 --envs 2     # fastest
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# This script only collects a few episodes. tianshou JIT-compiles its numba kernels (GAE, n-step returns,
# buffer indexing) when a policy or vector buffer is built: ~10 s on a small CPU, which only pays off
# when training on large buffers. Skip it unless the caller chose otherwise; in a training pipeline
# leave JIT on (delete this line).
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from tianshou.algorithm.algorithm_base import Policy  # noqa: E402
from tianshou.algorithm.multiagent.marl import MultiAgentPolicy  # noqa: E402
from tianshou.data import Batch, Collector, VectorReplayBuffer  # noqa: E402
from tianshou.env import DummyVectorEnv, PettingZooEnv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/ is not a package: find scripted.py

from scripted import ScriptedSolver, ScriptedThinker  # noqa: E402

from ccpo_env import ThinkSolveEnv, action_text  # noqa: E402

TextPolicyFn = Callable[[list[str]], Sequence[Any]]


class LLMPolicy(Policy):
    """A tianshou policy whose actions are the texts of a ccpo policy (``list[str] -> list[str]``).

    Args:
        llm: the ccpo policy; it may return ``str`` or objects with ``.text`` (e.g. ``Generation``).
        text_action_space: the env's ``Text`` action space (kept for reference and sampling).
    """

    def __init__(self, llm: TextPolicyFn, text_action_space: gym.Space) -> None:
        # tianshou 2.0.1 only accepts Discrete/MultiDiscrete/MultiBinary/Box here (see module docstring).
        super().__init__(action_space=gym.spaces.Discrete(1), action_bound_method=None)
        self.text_action_space = text_action_space
        self.llm = llm
        self.calls = 0
        self.observations = 0

    def forward(self, batch: Batch, state: Any = None, **kwargs: Any) -> Batch:
        observations = [str(o) for o in batch.obs]  # one per ready env: the LLM gets a batch
        self.calls += 1
        self.observations += len(observations)
        act = np.empty(len(observations), dtype=object)  # object array: numpy would cut fixed-width str
        act[:] = [action_text(out) for out in self.llm(observations)]
        return Batch(act=act)


class TextMultiAgentPolicy(MultiAgentPolicy):
    """``MultiAgentPolicy`` that tolerates the collector's missing ``obs_next`` (see module docstring)."""

    def forward(self, batch: Batch, state: dict | Batch | None = None, **kwargs: Any) -> Batch:
        if "obs_next" not in batch.get_keys():
            batch = Batch(batch, obs_next=Batch())
        return super().forward(batch, state, **kwargs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", type=int, default=4, help="parallel envs in the DummyVectorEnv (default 4)")
    p.add_argument("--episodes", type=int, default=16, help="episodes to collect (default 16)")
    p.add_argument("--level", type=int, default=2, choices=range(1, 6), help="arith difficulty (default 2)")
    p.add_argument("--thinker-slip", type=float, default=0.1, help="scripted Thinker's error rate")
    p.add_argument("--hf", action="store_true", help="use a tiny random-weights HFPolicy for both roles")
    p.add_argument("--max-new-tokens", type=int, default=16, help="with --hf: completion length (default 16)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_llms(args: argparse.Namespace) -> dict[str, TextPolicyFn]:
    if not args.hf:
        return {"thinker": ScriptedThinker(slip=args.thinker_slip, seed=args.seed), "solver": ScriptedSolver()}
    import torch

    from ccpo_agents.models.tiny import build_tiny
    from ccpo_agents.policies import DEFAULT_SYSTEM_PROMPTS, GenerationConfig, HFPolicy

    torch.manual_seed(args.seed)  # tianshou passes no per-observation seeds: seed torch's global RNG
    model, tokenizer = build_tiny("tiny", seed=args.seed)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    return {
        role: HFPolicy(model, tokenizer, role=role, system_prompt=DEFAULT_SYSTEM_PROMPTS[role], generation=gen)
        for role in ("thinker", "solver")
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Multi-agent returns are 2-D (one column per agent) by design; tianshou logs a warning about it.
    logging.getLogger("tianshou.data.stats").setLevel(logging.ERROR)

    def make_env(i: int) -> PettingZooEnv:
        # A distinct seed per env, so that the envs draw different problems.
        return PettingZooEnv(ThinkSolveEnv(dataset="arith", dataset_options={"level": args.level}, seed=args.seed + i))

    template = make_env(0)
    agents: list[str] = list(template.agents)
    llms = make_llms(args)
    policy = TextMultiAgentPolicy({a: LLMPolicy(llms[a], template.action_space) for a in agents})
    venv = DummyVectorEnv([lambda i=i: make_env(i) for i in range(args.envs)])
    collector = Collector(policy, venv, VectorReplayBuffer(total_size=64 * args.envs, buffer_num=args.envs))
    collector.reset()
    stats = collector.collect(n_episode=args.episodes)

    returns = np.asarray(stats.returns, dtype=float).reshape(-1, len(agents))  # [episodes, agents]
    kind = "tiny random-weights HFPolicy (gibberish)" if args.hf else "scripted Thinker/Solver"
    print(f"tianshou Collector over DummyVectorEnv({args.envs} x PettingZooEnv(ThinkSolveEnv('arith'))), "
          f"policies: {kind}")
    print(f"collected {stats.n_collected_episodes} episodes ({stats.n_collected_steps} agent steps)")
    print("mean reward: " + ", ".join(f"{a} {returns[:, j].mean():+.3f}" for j, a in enumerate(agents))
          + f" | team accuracy {(returns[:, agents.index('solver')] > 0).mean():.3f}")
    for a in agents:
        p = policy.policies[a]
        print(f"  {a}: {p.calls} policy calls for {p.observations} observations (batched across envs)")

    # What the replay buffer holds: the text observations and actions, per agent step.
    buffer = collector.buffer
    first = buffer[np.sort(buffer.sample_indices(0))[:2]]  # the first episode's two steps
    print("first episode in the buffer:")
    for agent, obs, act, rew in zip(first.obs.agent_id, first.obs.obs, first.act, first.rew):
        print(f"  [{agent}] obs ...{str(obs)[-40:]!r}\n  [{agent}] act {str(act)[:60]!r}  "
              f"rew {dict(zip(agents, map(float, rew)))}")


if __name__ == "__main__":
    main()
