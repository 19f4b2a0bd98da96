"""Batched rollout driver: many episodes at once, one policy call per agent turn.

LLM generation is only fast when batched, so :func:`rollout` steps every episode of a batch in
lockstep and calls each agent's policy **once per turn with the observations of all episodes
waiting on that agent** — joint episodes, fan-out copies and counterfactual branches alike. A
policy is any callable ``list[str] -> list[str]``; it may instead return objects with a ``.text``
attribute (e.g. :class:`ccpo_env.Generation` carrying token ids and log-probs), which are kept in
the episode records. A policy that accepts a ``seeds=`` keyword gets one seed per observation,
derived from the rollout seed and the episode's position, so results do not depend on how the
batch happened to be composed.

Shapes of a batch, per problem (a "group"):

- ``num_samples`` joint episodes (the n thoughts of CCPO's tree),
- each forked ``fanout[agent]`` times right after ``agent`` acts (``{"thinker": m}``: m Solver
  answers per thought); forks are rebuilt by replaying the recorded actions into a fresh env, so
  only the AEC API is needed,
- ``num_counterfactual`` branches per removal set in ``counterfactuals`` (``[["thinker"]]``: k solo
  Solver answers), made with the env's :meth:`~ccpo_env.envs.base.TeamEnv.counterfactual` hook.

Agents are served in ``possible_agents`` order: an agent's policy is called only once no episode
is still waiting on an earlier agent, which is what puts the Solver's joint and solo prompts into
one call.

A turn reads top to bottom: observe every waiting episode → one policy call → ask each env what it
would verify (:meth:`~ccpo_env.envs.base.TeamEnv.verification_request`) → score all of those with
**one** verifier call (:meth:`~ccpo_env.envs.base.TeamEnv.verify_requests`, batched through
:func:`ccpo_env.verify.verify_batch`) → step each env with its action and precomputed verdict
(:class:`~ccpo_env.records.VerifiedAction`), so no env verifies on its own. The driver uses only the
AEC API and these public hooks; the template env may be raw or wrapped (``think_solve.env()``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from ccpo_env.envs.base import TeamEnv
from ccpo_env.records import Episode, Turn, VerifiedAction, action_text
from ccpo_env.seeding import stable_seed

__all__ = ["rollout", "Policy"]

Policy = Callable[..., Sequence[Any]]


@dataclass
class _Slot:
    env: TeamEnv
    group: int
    removed: tuple[str, ...]
    sample: int
    fork: int
    seed: int
    options: dict[str, Any]
    turns: list[Turn] = field(default_factory=list)
    #: what was passed to ``env.step``, in order (a fork replays these: no verdict is computed twice).
    actions: list[Any] = field(default_factory=list)
    rewards: dict[str, float] = field(default_factory=dict)
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: bool = False


def rollout(
    env: TeamEnv,
    policies: Mapping[str, Policy] | Policy,
    problems: Sequence[int | str] | int,
    *,
    num_samples: int = 1,
    fanout: Mapping[str, int] | None = None,
    counterfactuals: Sequence[Sequence[str]] = (),
    num_counterfactual: int = 1,
    seed: int = 0,
    common_random_numbers: bool = False,
    coalitions: bool = False,
    progress: bool = False,
) -> list[Episode]:
    """Play a batch of episodes and return their records.

    Args:
        env: a template env (e.g. ``ThinkSolveEnv(dataset="arith")``); fresh envs are made with
            its :meth:`~ccpo_env.envs.base.TeamEnv.spawn`, sharing its dataset. It is not stepped.
        policies: one callable per agent (``{"thinker": f, "solver": g}``), or one callable for all.
        problems: problem indices or ids, one group each; or an int ``P`` to draw ``P`` problems with
            the env's seeded problem choice.
        num_samples: joint episodes per problem (``n``).
        fanout: ``{agent: m}``: after ``agent`` acts, the episode continues as ``m`` copies.
        counterfactuals: removal sets; each gives ``num_counterfactual`` branches per problem.
        num_counterfactual: branches per removal set per problem (``k``).
        seed: makes the whole batch reproducible (problem draws, env seeds, policy seeds).
        common_random_numbers: pair each counterfactual branch ``c`` with the joint episode of pair index
            ``c`` (``sample * M + fork``, ``M`` the product of the fanouts: with one fanout, the rank by
            ``(sample, fork)``) and give an agent acting in both the same policy seed. With a policy that
            seeds each row alone (``GenerationConfig.row_seeded``) the two turns then share their sampling
            noise, so their difference measures the removal, not the luck of two independent draws. Joint
            episodes are seeded as without it: turning it on changes only the counterfactual branches.
        coalitions: also record each finished joint episode's ``coalition_rewards()`` (envs that have
            the hook, e.g. ``VotingEnv``: the reward of every subset of the agents, for Shapley credit).
            Off by default: it costs 2^N re-counts per episode.
        progress: show a progress bar over policy calls.

    Returns:
        Episodes ordered by group, then joint before counterfactual (in ``counterfactuals`` order),
        then sample, then fork. ``Episode.uid`` is the position in this list.

    Raises:
        ValueError / TypeError: bad arguments, a missing policy, or a policy that returns the wrong
        number of outputs — raised before the env state of the batch is used further.
    """
    if num_samples < 1 or num_counterfactual < 1:
        raise ValueError("num_samples and num_counterfactual must be >= 1")
    fanout = dict(fanout or {})
    agents_order = list(env.possible_agents)
    for agent, m in fanout.items():
        if agent not in agents_order:
            raise ValueError(f"fanout names unknown agent {agent!r}; agents are {agents_order}")
        if not isinstance(m, int) or m < 1:
            raise ValueError(f"fanout[{agent!r}] must be a positive int, got {m!r}")
    policy_of = _policy_table(policies, agents_order)
    forks_per_sample = 1
    for m in fanout.values():
        forks_per_sample *= m

    def policy_seed(slot: _Slot, agent: str) -> int:
        if common_random_numbers and slot.removed:  # branch c takes the seed of joint pair c
            sample, fork = divmod(slot.sample, forks_per_sample)
            return stable_seed("policy", seed, slot.group, (), sample, fork, agent)
        return stable_seed("policy", seed, slot.group, slot.removed, slot.sample, slot.fork, agent)

    groups = _choose_problems(env, problems, seed)
    slots: list[_Slot] = []
    for g, index in enumerate(groups):
        first: TeamEnv | None = None
        for j in range(num_samples):
            s = stable_seed("joint", seed, g, j)
            opts = {"problem": index}
            e = env.spawn()
            e.reset(seed=s, options=opts)
            if first is None:
                first = e
            slots.append(_Slot(e, g, (), j, 0, s, opts))
        assert first is not None
        for removal in counterfactuals:
            removed = tuple(removal)
            for c in range(num_counterfactual):
                s = stable_seed("cf", seed, g, removed, c)
                branch = first.counterfactual(remove=list(removed), seed=s)
                slots.append(_Slot(branch, g, removed, c, 0, s, {"problem": index, "remove": list(removed)}))

    calls = 0
    bar = tqdm(total=len(agents_order), desc="rollout", unit="call", disable=not progress, leave=False)
    while True:
        pending: dict[str, list[_Slot]] = {}
        for slot in slots:
            if slot.done:
                continue
            agent = slot.env.agent_selection
            if not slot.env.agents or slot.env.terminations[agent] or slot.env.truncations[agent]:
                _finish(slot)
                continue
            pending.setdefault(agent, []).append(slot)
        if not pending:
            break
        agent = next(a for a in agents_order if a in pending)
        batch = pending[agent]
        observations = [str(s.env.observe(agent)) for s in batch]
        seeds = [policy_seed(s, agent) for s in batch]
        outputs = _call_policy(policy_of(agent), agent, observations, seeds)
        calls += 1
        bar.update(1)
        actions = _verified_actions(env, batch, outputs)
        new_slots: list[_Slot] = []
        for slot, obs, out, action in zip(batch, observations, outputs, actions):
            slot.env.step(action)
            slot.actions.append(action)
            slot.turns.append(Turn(agent, obs, action_text(out), out, dict(slot.env.infos.get(agent, {}))))
            m = fanout.get(agent, 1)
            if m > 1 and slot.env.agents and not slot.env.terminations[slot.env.agent_selection]:
                new_slots.extend(_fork(slot, f) for f in range(1, m))
        if new_slots:
            slots.extend(new_slots)
    bar.close()

    slots.sort(key=lambda s: (s.group, _removal_rank(s.removed, counterfactuals), s.sample, s.fork))
    return [
        Episode(
            uid=i, group=s.group, problem_index=int(s.env.problem_index), problem_id=s.env.problem.id,
            source=s.env.problem.source, removed=s.removed, sample=s.sample, fork=s.fork, turns=s.turns,
            rewards=s.rewards, infos=s.infos, correct=_episode_correct(s),
            counterfactual_rewards=_counterfactual_rewards(s.env),
            coalition_rewards=_coalition_rewards(s.env) if coalitions and not s.removed else None,
        )
        for i, s in enumerate(slots)
    ]


def _policy_table(policies: Mapping[str, Policy] | Policy, agents: list[str]) -> Callable[[str], Policy]:
    if callable(policies) and not isinstance(policies, Mapping):
        return lambda agent: policies  # one policy for every agent
    missing = [a for a in agents if a not in policies]
    table = dict(policies)

    def lookup(agent: str) -> Policy:
        if agent not in table:
            raise KeyError(f"no policy for agent {agent!r}; got policies for {sorted(table)} (missing {missing})")
        return table[agent]

    return lookup


def _accepts_seeds(policy: Policy) -> bool:
    try:
        params = inspect.signature(policy).parameters
    except (TypeError, ValueError):
        return False
    return "seeds" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _call_policy(policy: Policy, agent: str, observations: list[str], seeds: list[int]) -> list[Any]:
    outputs = policy(observations, seeds=seeds) if _accepts_seeds(policy) else policy(observations)
    outputs = list(outputs)
    if len(outputs) != len(observations):
        raise ValueError(
            f"the policy for {agent!r} returned {len(outputs)} outputs for {len(observations)} observations; "
            "a policy must return exactly one output per observation, in order"
        )
    return outputs


def _choose_problems(env: TeamEnv, problems: Sequence[int | str] | int, seed: int) -> list[int]:
    if isinstance(problems, bool):
        raise TypeError("problems must be a sequence of indices/ids or an int count")
    if isinstance(problems, int):
        if problems < 1:
            raise ValueError("problems must be >= 1 when given as a count")
        probe = env.spawn()
        chosen = []
        for g in range(problems):
            probe.reset(seed=stable_seed("problem", seed, g))
            chosen.append(int(probe.problem_index))
        return chosen
    if isinstance(problems, str) or not len(problems):
        raise ValueError("problems must be a non-empty sequence of problem indices/ids (or an int count)")
    return [env.resolve_problem(p) for p in problems]


def _verified_actions(env: TeamEnv, batch: list[_Slot], outputs: list[Any]) -> list[Any]:
    """The turn's actions, those the envs would verify carrying verdicts from one batched verifier call.

    Every action is validated (``verification_request`` raises as ``step`` would) before any env steps.
    """
    requests = [slot.env.verification_request(out) for slot, out in zip(batch, outputs)]
    asked = [i for i, r in enumerate(requests) if r is not None]
    actions = list(outputs)
    if asked:
        verdicts = env.verify_requests([requests[i] for i in asked])
        for i, verdict in zip(asked, verdicts):
            actions[i] = VerifiedAction(outputs[i], requests[i], verdict)
    return actions


def _fork(slot: _Slot, fork: int) -> _Slot:
    """Rebuild ``slot``'s episode in a fresh env by replaying its actions: the copy continues alone."""
    e = slot.env.spawn()
    e.reset(seed=slot.seed, options=dict(slot.options))
    for action in slot.actions:
        e.step(action)
    turns = [Turn(t.agent, t.observation, t.action, t.output, dict(t.info)) for t in slot.turns]
    return _Slot(e, slot.group, slot.removed, slot.sample, fork, slot.seed, slot.options, turns, list(slot.actions))


def _finish(slot: _Slot) -> None:
    """Step the terminated agents with ``None`` (the AEC contract), recording rewards and infos."""
    env = slot.env
    while env.agents:
        agent = env.agent_selection
        _, reward, term, trunc, info = env.last(observe=False)
        if not (term or trunc):  # pragma: no cover - only reachable with a misbehaving env
            raise RuntimeError(f"agent {agent!r} is still live at the end of the episode")
        slot.rewards[agent] = float(reward)
        slot.infos[agent] = dict(info)
        env.step(None)
    slot.done = True


def _episode_correct(slot: _Slot) -> bool:
    return any(bool(info.get("correct", False)) for info in slot.infos.values())


def _counterfactual_rewards(env: TeamEnv) -> dict[str, float] | None:
    hook = getattr(env, "counterfactual_rewards", None)
    return dict(hook()) if callable(hook) else None


def _coalition_rewards(env: TeamEnv) -> dict[tuple[str, ...], float] | None:
    hook = getattr(env, "coalition_rewards", None)
    if not callable(hook):
        raise ValueError(f"coalitions=True needs an env with coalition_rewards(); {type(env).__name__} has none")
    return dict(hook())


def _removal_rank(removed: tuple[str, ...], counterfactuals: Sequence[Sequence[str]]) -> int:
    if not removed:
        return 0
    return 1 + [tuple(c) for c in counterfactuals].index(removed)
