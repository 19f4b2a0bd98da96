"""Independent PPO per agent with tianshou 2.x on the discrete-choice view of the team envs.

The pieces a MARL researcher swaps:

- the env: :class:`~ccpo_env.wrappers.DiscreteChoiceEnv` around ``ThinkSolveEnv`` or ``VotingEnv`` on
  ``arith``, with the scripted :class:`~ccpo_env.wrappers.ArithMenuProposer` menu (K = 4);
- the algorithm: tianshou's ``MultiAgentOnPolicyAlgorithm`` over one ``PPO`` per agent (independent
  learners, each with its own actor and critic), collected with tianshou's ``Collector`` over a
  ``DummyVectorEnv`` of ``PettingZooEnv``;
- the reward: any ccpo credit method through :class:`~ccpo_agents.interop.CreditRewards`, applied to
  the collected buffer before each update (:func:`apply_credit`), so ``shared``, ``ccpo_tree`` and
  ``voting`` run on the same episodes.

Why the buffer is rewritten: a turn-based (AEC) episode reaches tianshou as one transition per agent
turn, and the team reward arrives only on the last one, so the Thinker's own transition carries
reward 0 and never ends; its GAE would chain into the next episode. :func:`apply_credit` gives each
agent's transition that agent's credit and ends it, so every decision is a one-step problem whose
advantage is ``credit − V(s)`` (the critic is the baseline).

Requires ``tianshou`` (and torch). Set ``NUMBA_DISABLE_JIT=1`` before importing tianshou for a fast
start on small runs (its numba kernels only pay off on large buffers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tianshou.algorithm import PPO
from tianshou.algorithm.multiagent.marl import MultiAgentOnPolicyAlgorithm
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Batch, Collector, VectorReplayBuffer
from tianshou.env import DummyVectorEnv, PettingZooEnv
from tianshou.utils.torch_utils import policy_within_training_step, torch_train_mode
from torch import nn

from ccpo_agents.interop.tianshou_credit import CreditRewards, TeamEpisodes
from ccpo_env import ThinkSolveEnv, VotingEnv
from ccpo_env.wrappers import ArithMenuProposer, DiscreteChoiceEnv, FeatureLayout, turn_seed

__all__ = ["MARLConfig", "MARLResult", "SlotActor", "SlotCritic", "TeamPettingZooEnv", "apply_credit",
           "build_algorithm", "credit_on_identical_episodes", "evaluate", "make_choice_env", "solo_branches",
           "team_episodes", "train_marl"]

ENVS = ("think_solve", "voting")


@dataclass(frozen=True)
class MARLConfig:
    """One independent-PPO run on discrete-choice ``arith``.

    Attributes:
        env: ``"think_solve"`` (Thinker + Solver) or ``"voting"`` (``num_voters`` voters).
        credit: the ccpo credit method used as reward transform (``shared``, ``ccpo_tree``, ``voting``, ...).
        level: arith level (1..5; default 1).
        variant: arith variant, ``"standard"`` or ``"freeride"`` (default: half the items need no
            thought, so the Thinker's reward there says nothing about its choice).
        num_voters: voters for ``env="voting"`` (default 3).
        iterations: collect/update rounds (default 30).
        episodes_per_iter: episodes collected per round (a multiple of ``num_envs``; default 64).
        num_envs: parallel envs in the ``DummyVectorEnv`` (default 8).
        solo_per_episode: Thinker-removed branches per episode for methods that need them (default 1).
        eval_problems: held-out (test split) problems for the team return (default 200).
        eval_every: evaluate every this many rounds, 0 = only before and after (default 0).
        lr: Adam learning rate (default 3e-3).
        hidden: width of the actor and critic networks (default 64).
        repeat: PPO epochs over each round's data (default 4).
        batch_size: PPO minibatch size (default 64).
        ent_coef: entropy bonus (default 0.01).
        eps_clip: PPO ratio clip (default 0.2).
        seed: seeds torch, the envs and the proposals (default 0).
    """

    env: str = "think_solve"
    credit: str = "shared"
    level: int = 1
    variant: str = "freeride"
    num_voters: int = 3
    iterations: int = 30
    episodes_per_iter: int = 64
    num_envs: int = 8
    solo_per_episode: int = 1
    eval_problems: int = 200
    eval_every: int = 0
    lr: float = 3e-3
    hidden: int = 64
    repeat: int = 4
    batch_size: int = 64
    ent_coef: float = 0.01
    eps_clip: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.env not in ENVS:
            raise ValueError(f"MARLConfig.env must be one of {list(ENVS)}, got {self.env!r}")
        for name in ("iterations", "episodes_per_iter", "num_envs", "eval_problems", "hidden", "repeat",
                     "batch_size", "solo_per_episode"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"MARLConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.episodes_per_iter % self.num_envs:
            raise ValueError(f"episodes_per_iter ({self.episodes_per_iter}) must be a multiple of num_envs "
                             f"({self.num_envs}) so that every env ends each round on an episode boundary")


@dataclass
class MARLResult:
    """What :func:`train_marl` measured.

    Attributes:
        config: the run's config as a dict.
        before: held-out team metrics of the untrained policy (see :func:`evaluate`).
        after: the same after training.
        curve: ``(round, episodes so far, held-out team return)`` at each evaluation.
        train_return: mean team reward of the episodes collected in each round.
        seconds: wall time of the run.
        algorithm: the trained tianshou algorithm (not serialised).
    """

    config: dict[str, Any]
    before: dict[str, float]
    after: dict[str, float]
    curve: list[tuple[int, int, float]] = field(default_factory=list)
    train_return: list[float] = field(default_factory=list)
    seconds: float = 0.0
    algorithm: Any = field(default=None, repr=False)


# ---------------------------------------------------------------------------------------------- env
def make_choice_env(cfg: MARLConfig, *, split: str = "train", seed: int = 0, size: int | None = None) -> DiscreteChoiceEnv:
    """The discrete-choice ``arith`` env of ``cfg`` (train or test split)."""
    options: dict[str, Any] = {"level": cfg.level, "variant": cfg.variant}
    if size is not None:
        options["size"] = size
    if cfg.env == "think_solve":
        inner = ThinkSolveEnv("arith", split=split, dataset_options=options, seed=seed)
    else:
        inner = VotingEnv("arith", split=split, dataset_options=options, seed=seed, num_voters=cfg.num_voters)
    return DiscreteChoiceEnv(inner, ArithMenuProposer(), seed=seed)


class TeamPettingZooEnv(PettingZooEnv):
    """tianshou's ``PettingZooEnv`` with a fixed info schema: ``problem_index`` and ``loo_rewards``.

    tianshou's replay buffer fixes the type of every info key at its first insert, while the team
    envs' infos grow over an episode (``winner`` is ``None`` or an int, ``classes`` a ragged list), so
    the buffer only gets what credit assignment needs: the problem and, for voting, the leave-one-out
    rewards (NaN until the episode ends).
    """

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        n = len(self.agents)
        loo = np.asarray(info.get("loo_rewards", [np.nan] * n), dtype=np.float64)
        return {"problem_index": int(info.get("problem_index", -1)), "loo_rewards": loo}

    def reset(self, *args: Any, **kwargs: Any) -> tuple[dict, dict]:  # noqa: D102 - tianshou API
        obs, info = super().reset(*args, **kwargs)
        return obs, self._info(info)

    def step(self, action: Any) -> tuple[dict, list[int], bool, bool, dict]:  # noqa: D102 - tianshou API
        obs, rew, term, trunc, info = super().step(action)
        return obs, rew, term, trunc, self._info(info)


# ------------------------------------------------------------------------------------------ networks
def _unpack(obs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(features, mask) from what tianshou hands a network: a Batch with ``obs``/``mask`` or an array."""
    if isinstance(obs, Batch) or hasattr(obs, "obs"):
        mask = obs.mask if hasattr(obs, "mask") else None
        obs = obs.obs
    else:
        mask = None
    features = torch.as_tensor(np.asarray(obs, dtype=np.float32) if not torch.is_tensor(obs) else obs, dtype=torch.float32)
    if mask is not None:
        mask = torch.as_tensor(np.asarray(mask, dtype=bool) if not torch.is_tensor(mask) else mask, dtype=torch.bool)
    return features, mask


class SlotActor(nn.Module):
    """Scores each candidate slot with shared weights: ``logit_k = w · tanh(f(context) + g(slot_k))``.

    Slots are interchangeable (the proposer shuffles them), so one scorer for all K slots learns from
    every slot's data; masked slots get ``-1e9``. Returns ``(logits [B, K], state)`` as tianshou's
    discrete actors do.
    """

    def __init__(self, layout: FeatureLayout, hidden: int = 64) -> None:
        super().__init__()
        self.layout = layout
        self.context = nn.Linear(layout.context_dim, hidden)
        self.slot = nn.Linear(layout.slot_dim, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[torch.Tensor, Any]:
        features, mask = _unpack(obs)
        context = features[:, : self.layout.context_dim]
        slots = features[:, self.layout.context_dim :].reshape(-1, self.layout.num_choices, self.layout.slot_dim)
        logits = self.out(torch.tanh(self.context(context)[:, None, :] + self.slot(slots))).squeeze(-1)
        if mask is not None:
            # A row without any valid slot (an agent that is not acting) stays unmasked instead of NaN.
            usable = mask & mask.any(dim=-1, keepdim=True) | ~mask.any(dim=-1, keepdim=True)
            logits = logits.masked_fill(~usable, -1e9)
        return logits, state


class SlotCritic(nn.Module):
    """``V(s)`` from the context and the mean embedding of the offered candidates."""

    def __init__(self, layout: FeatureLayout, hidden: int = 64) -> None:
        super().__init__()
        self.layout = layout
        self.context = nn.Linear(layout.context_dim, hidden)
        self.slot = nn.Linear(layout.slot_dim, hidden)
        self.out = nn.Sequential(nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, obs: Any, **kwargs: Any) -> torch.Tensor:
        features, _ = _unpack(obs)
        context = features[:, : self.layout.context_dim]
        slots = features[:, self.layout.context_dim :].reshape(-1, self.layout.num_choices, self.layout.slot_dim)
        present = slots[..., :1]  # the first slot scalar says whether the slot holds a candidate
        pooled = (self.slot(slots) * present).sum(1) / present.sum(1).clamp(min=1.0)
        return self.out(self.context(context) + pooled)


def build_algorithm(cfg: MARLConfig, template: PettingZooEnv) -> MultiAgentOnPolicyAlgorithm:
    """One PPO (own actor, critic and optimiser) per agent inside tianshou's multi-agent on-policy class."""
    from tianshou.algorithm.modelfree.reinforce import ProbabilisticActorPolicy

    layout: FeatureLayout = template.env.layout
    algorithms = []
    for _ in template.agents:
        policy = ProbabilisticActorPolicy(
            actor=SlotActor(layout, cfg.hidden), dist_fn=lambda logits: torch.distributions.Categorical(logits=logits),
            # Sampling always: tianshou 2.0.1's policy_within_training_step sets the flag on the
            # MultiAgentPolicy only, so with deterministic_eval=True the per-agent policies would also
            # act greedily while collecting. evaluate() takes the argmax itself.
            deterministic_eval=False, action_space=template.action_space, action_scaling=False,
            action_bound_method=None,
        )
        algorithms.append(PPO(
            policy=policy, critic=SlotCritic(layout, cfg.hidden), optim=AdamOptimizerFactory(lr=cfg.lr),
            eps_clip=cfg.eps_clip, ent_coef=cfg.ent_coef, vf_coef=0.5, gamma=1.0, gae_lambda=1.0,
            advantage_normalization=True, max_grad_norm=1.0,
        ))
    return MultiAgentOnPolicyAlgorithm(algorithms=algorithms, env=template)


# ---------------------------------------------------------------------------------------- credit
def _episodes_in(buffer: VectorReplayBuffer) -> tuple[np.ndarray, list[np.ndarray]]:
    """All indices of ``buffer`` in time order and the index arrays of its finished episodes."""
    indices = buffer.sample_indices(0)
    done = np.asarray(buffer.done[indices], dtype=bool)
    if len(indices) == 0 or not done[-1] or len(buffer.unfinished_index()):
        raise ValueError("the buffer holds an unfinished episode; collect whole episodes (n_episode a multiple "
                         "of the number of envs, fixed-length episodes) before assigning credit")
    ends = np.nonzero(done)[0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    return indices, [indices[s : e + 1] for s, e in zip(starts, ends)]


def team_episodes(
    buffer: VectorReplayBuffer,
    agents: Sequence[str],
    *,
    loo: bool = False,
    solo: Callable[[list[int]], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[TeamEpisodes, list[np.ndarray]]:
    """The finished episodes of ``buffer`` as :class:`TeamEpisodes`, and each one's buffer indices (read-only).

    Each episode's team reward is its last transition's, its group the problem (``info.problem_index``);
    ``loo`` reads voting's leave-one-out rewards (``info.loo_rewards``); ``solo`` (``problem indices ->
    (solo rewards, solo groups)``) adds Thinker-removed branches.
    """
    _, episodes = _episodes_in(buffer)
    agent_ids = buffer.obs.agent_id
    for ep in episodes:
        acted = [str(agent_ids[t]) for t in ep]
        if sorted(acted) != sorted(agents):
            raise ValueError(f"an episode in the buffer has turns {acted}; credit needs one turn per agent of {list(agents)}")
    last = np.array([ep[-1] for ep in episodes])
    info = buffer.info
    joint = np.asarray(buffer.rew)[last, 0].astype(np.float64)
    problems = np.asarray(info.problem_index[last]).astype(np.int64)
    loo_reward = np.asarray(info.loo_rewards[last], dtype=np.float64) if loo else None
    team = TeamEpisodes(agents=tuple(agents), joint_reward=joint, group=problems, loo_reward=loo_reward)
    if solo is not None:
        team.solo_reward, team.solo_group = solo(problems.tolist())
    return team, episodes


def apply_credit(
    buffer: VectorReplayBuffer,
    credit: CreditRewards,
    agents: Sequence[str],
    solo: Callable[[list[int]], tuple[np.ndarray, np.ndarray]] | None = None,
) -> TeamEpisodes:
    """Replace the buffer's rewards by per-agent credit and end every agent's transition.

    The episodes are read with :func:`team_episodes` (``solo`` is required when the method needs
    Thinker-removed branches). Then transition ``t`` of agent ``a`` in episode ``e`` gets
    ``rew[t, a] = credit[e, a]`` (0 in the other columns) and ``terminated[t] = done[t] = True``.
    Returns the episodes (with their solo rewards).
    """
    if credit.needs_solo and solo is None:
        raise ValueError(f"credit method {credit.method!r} needs Thinker-removed branches: pass solo=")
    team, episodes = team_episodes(buffer, agents, loo=credit.needs_loo, solo=solo if credit.needs_solo else None)
    rewards = credit(team)
    agent_index = {a: i for i, a in enumerate(agents)}
    agent_ids = buffer.obs.agent_id
    for e, ep in enumerate(episodes):
        for t in ep:
            i = agent_index[str(agent_ids[t])]
            buffer.rew[t] = 0.0
            buffer.rew[t, i] = rewards[e, i]
            buffer.terminated[t] = True
            buffer.truncated[t] = False
            buffer.done[t] = True
    return team


def credit_on_identical_episodes(
    algorithm: MultiAgentOnPolicyAlgorithm, cfg: MARLConfig, methods: Sequence[str], *, episodes: int = 8,
    seed: int = 0,
) -> tuple[TeamEpisodes, dict[str, np.ndarray]]:
    """Collect ``episodes`` training episodes once with the current policy; every method's ``[E, N]`` rewards on them.

    Each method gets a fresh :class:`CreditRewards` (no normalizer history, so ``ccpo_tree``'s Thinker credit
    is the raw ``R_joint − V_solo``). Thinker-removed branches are run once if any method needs them.
    """
    credits = {m: CreditRewards(m) for m in methods}
    template = TeamPettingZooEnv(make_choice_env(cfg, seed=turn_seed("identical", seed)))
    agents = list(template.agents)
    collector = Collector(algorithm, DummyVectorEnv([lambda: template]),
                          VectorReplayBuffer(episodes * len(agents) * 2, 1))
    collector.reset()
    with policy_within_training_step(algorithm.policy), torch_train_mode(algorithm, False):
        collector.collect(n_episode=episodes)
        solo = None
        if any(c.needs_solo for c in credits.values()):
            solo = solo_branches(algorithm.policy.policies["solver"], template.env, cfg.solo_per_episode,
                                 turn_seed("identical-solo", seed))
        team, _ = team_episodes(collector.buffer, agents, loo=any(c.needs_loo for c in credits.values()), solo=solo)
    return team, {m: c(team) for m, c in credits.items()}


def _act(policy: Any, envs: Sequence[DiscreteChoiceEnv], agent: str, *, greedy: bool = False) -> np.ndarray:
    """One batched forward of ``agent``'s tianshou policy over ``envs``: sampled, or the argmax slot."""
    obs = [env.observe(agent) for env in envs]
    batch = Batch(obs=Batch(obs=np.stack([o["observation"] for o in obs]),
                            mask=np.stack([o["action_mask"] == 1 for o in obs])), info=Batch())
    with torch.no_grad():
        if greedy:
            logits, _ = policy.actor(batch.obs)
            return logits.argmax(dim=-1).numpy()
        return np.asarray(policy(batch).act)


def solo_branches(policy: Any, template: DiscreteChoiceEnv, k: int, seed: int) -> Callable[[list[int]], tuple[np.ndarray, np.ndarray]]:
    """``problems -> (rewards, groups)``: ``k`` Thinker-removed episodes per problem, the Solver choosing
    with ``policy`` (sampling, like the joint episodes) in one batched call."""

    def run(problems: list[int]) -> tuple[np.ndarray, np.ndarray]:
        envs, groups = [], []
        for n, p in enumerate(problems):
            for j in range(k):
                env = template.spawn()
                env.reset(seed=turn_seed("solo", seed, n, j, p), options={"problem": int(p), "remove": ["thinker"]})
                envs.append(env)
                groups.append(int(p))
        acts = _act(policy, envs, "solver")
        rewards = []
        for env, a in zip(envs, acts):
            env.step(int(a))
            rewards.append(float(env.rewards["solver"]))
        return np.asarray(rewards), np.asarray(groups)

    return run


# ------------------------------------------------------------------------------------------ evaluation
def evaluate(algorithm: MultiAgentOnPolicyAlgorithm, cfg: MARLConfig, *, problems: int | None = None,
             deterministic: bool = True) -> dict[str, float]:
    """Team metrics on the first ``problems`` held-out (test split) problems, all agents acting greedily.

    Returns ``return`` (mean team reward), ``accuracy`` (share of episodes with a positive reward) and,
    on ``freeride`` data, ``accuracy_joint``/``accuracy_solo`` per item kind.
    """
    n = cfg.eval_problems if problems is None else problems
    template = make_choice_env(cfg, split="test", seed=10_000, size=n)
    envs = []
    for i in range(n):
        env = template.spawn()
        env.reset(seed=turn_seed("eval", i), options={"problem": i})
        envs.append(env)
    policies = algorithm.policy.policies
    with torch_train_mode(algorithm, False):
        while envs[0].agents and not all(envs[0].terminations.values()):
            agent = envs[0].agent_selection
            for env, a in zip(envs, _act(policies[agent], envs, agent, greedy=deterministic)):
                env.step(int(a))
    rewards = np.array([env.rewards[env.possible_agents[0]] for env in envs], dtype=np.float64)
    out = {"return": float(rewards.mean()), "accuracy": float((rewards > 0).mean())}
    kinds = np.array([env.unwrapped.problem.extras.get("kind", "joint") for env in envs])
    for kind in ("joint", "solo"):
        if cfg.variant == "freeride" and (kinds == kind).any():
            out[f"accuracy_{kind}"] = float((rewards[kinds == kind] > 0).mean())
    return out


# ------------------------------------------------------------------------------------------ training
def train_marl(cfg: MARLConfig, *, log: Callable[[str], None] | None = None) -> MARLResult:
    """Train one independent PPO per agent with ``cfg.credit`` as reward transform; evaluate before and after.

    Seeds torch's and numpy's global generators with ``cfg.seed`` (tianshou samples actions and shuffles
    minibatches with them), so a run is reproducible and two methods with one seed start identically.
    """
    start = time.time()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    credit = CreditRewards(cfg.credit)
    if credit.needs_solo and cfg.env != "think_solve":
        raise ValueError(f"credit method {cfg.credit!r} needs Thinker-removed branches: use env='think_solve'")
    if credit.needs_loo and cfg.env != "voting":
        raise ValueError(f"credit method {cfg.credit!r} needs leave-one-out rewards: use env='voting'")
    template = TeamPettingZooEnv(make_choice_env(cfg, seed=cfg.seed))
    agents = list(template.agents)
    algorithm = build_algorithm(cfg, template)
    venv = DummyVectorEnv([
        (lambda i=i: TeamPettingZooEnv(make_choice_env(cfg, seed=turn_seed("train", cfg.seed, i))))
        for i in range(cfg.num_envs)
    ])
    steps_per_episode = len(agents)
    buffer = VectorReplayBuffer(total_size=cfg.episodes_per_iter * steps_per_episode * 2, buffer_num=cfg.num_envs)
    collector = Collector(algorithm, venv, buffer)
    collector.reset()
    solver_policy = algorithm.policy.policies.get("solver")
    result = MARLResult(config=asdict(cfg), before=evaluate(algorithm, cfg), after={})
    result.curve.append((0, 0, result.before["return"]))
    if log:
        log(f"[{cfg.credit}] round 0: held-out team return {result.before['return']:+.3f}")
    for it in range(1, cfg.iterations + 1):
        with policy_within_training_step(algorithm.policy), torch_train_mode(algorithm, False):
            collector.collect(n_episode=cfg.episodes_per_iter)
            solo = (solo_branches(solver_policy, template.env, cfg.solo_per_episode, turn_seed(cfg.seed, it))
                    if credit.needs_solo else None)
            team = apply_credit(collector.buffer, credit, agents, solo)
        result.train_return.append(float(team.joint_reward.mean()))
        with policy_within_training_step(algorithm.policy):
            algorithm.update(buffer=collector.buffer, batch_size=cfg.batch_size, repeat=cfg.repeat)
        collector.reset_buffer(keep_statistics=True)
        if cfg.eval_every and it % cfg.eval_every == 0 and it < cfg.iterations:
            ret = evaluate(algorithm, cfg)["return"]
            result.curve.append((it, it * cfg.episodes_per_iter, ret))
            if log:
                log(f"[{cfg.credit}] round {it}: train return {result.train_return[-1]:+.3f}, held-out {ret:+.3f}")
    result.after = evaluate(algorithm, cfg)
    result.curve.append((cfg.iterations, cfg.iterations * cfg.episodes_per_iter, result.after["return"]))
    result.seconds = time.time() - start
    result.algorithm = algorithm
    if log:
        log(f"[{cfg.credit}] round {cfg.iterations}: held-out team return {result.after['return']:+.3f} "
            f"({result.seconds:.0f} s)")
    return result
