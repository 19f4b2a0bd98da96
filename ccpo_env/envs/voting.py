"""VotingEnv: N voters answer in turn; the plurality answer is the team's answer.

Voters ``voter_0 .. voter_{N-1}`` act in order. By default a voter does not see earlier votes
(independent sampling, like self-consistency); ``visible_votes=True`` shows each voter the answers
extracted from earlier votes, which makes a deliberation chain.

Counting: each vote's final answer is extracted with the verifier; votes with no answer abstain.
Answers are grouped into equivalence classes with :func:`ccpo_env.verify.answer_classes` (``1/2`` and
``0.5`` are one class), and the class with the most votes wins. Ties (``tie_break``):

- ``"expected"`` (default): the joint reward is the *expected* reward of a uniform random choice
  among the tied classes, so a 1–1 tie between a right and a wrong answer gives 0 with ±1 rewards.
  Deterministic and lower-variance than a draw.
- ``"random"``: one tied class is drawn uniformly with a generator seeded from the episode seed
  (so the same seed gives the same draw).

If every vote abstains the team has no answer and gets ``reward_incorrect``.

:meth:`VotingEnv.counterfactual_rewards` re-counts the recorded votes with one voter left out: the
counterfactual ``R_¬i`` needs no new decoding. :meth:`VotingEnv.coalition_rewards` re-counts every subset
of the votes (what Shapley-value credit needs), also without decoding.

Constructors, as in PettingZoo's own environment modules: :func:`env` (the env in the standard
wrappers, see :func:`ccpo_env.envs.base.wrap`), :data:`raw_env` (the class) and :func:`parallel_env`
(the Parallel API version, :class:`VotingParallelEnv`: without visible votes the voters act
independently, so all of them can vote at once).

Parallel API. Without visible votes a voter sees only the problem, so the voters act independently and the
AEC env changes nothing anyone observes until the last vote is in: exactly the case PettingZoo's
:func:`~pettingzoo.utils.conversions.aec_to_parallel` is built for (``metadata["is_parallelizable"]``).
One ``step({voter: text, ...})`` casts every live vote, verified together in one verifier call
(:meth:`VotingEnv.vote_requests`, then :meth:`~ccpo_env.envs.base.TeamEnv.verify_requests`); the returned
rewards are the joint reward of the count. With ``visible_votes=True`` each voter reads the earlier votes
(a deliberation chain), which has no parallel form: asking for one raises a ``ValueError``. The
counterfactual hooks and every other public attribute of the AEC env (``counterfactual_rewards()``,
``tally``, ``votes``, ``problem``, ``resolve_problem()``, ``counterfactual()``, ``spawn()``, ...) are
reachable on the parallel env; ``counterfactual()`` and ``spawn()`` return AEC envs. A counterfactual
episode under the Parallel API is a ``reset(options={"problem": ..., "remove": [...]})``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pettingzoo import AECEnv
from pettingzoo.utils.conversions import aec_to_parallel_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from ccpo_env.envs.base import TeamEnv, wrap
from ccpo_env.records import VerifiedAction, VerifyRequest
from ccpo_env.seeding import stable_seed
from ccpo_env.spaces import TextObservation
from ccpo_env.topology import get_topology
from ccpo_env.verify import Verdict, answer_classes

__all__ = ["VotingEnv", "VotingParallelEnv", "VoteTally", "env", "parallel_env", "raw_env"]

_TOPOLOGY = get_topology("voting")
#: ``coalition_rewards()`` counts 2^N subsets; above this many voters it refuses.
MAX_COALITION_VOTERS = 12

TIE_BREAKS = ("expected", "random")


@dataclass(frozen=True)
class VoteTally:
    """Result of counting a set of votes.

    Attributes:
        reward: the joint reward (an expectation under ``tie_break="expected"``).
        winner: index of the winning class in ``classes`` (``None`` when every vote abstained or
            under an ``"expected"`` tie).
        classes: per equivalence class: (representative answer, number of votes, correct).
        tied: indices of the classes tied for the most votes.
    """

    reward: float
    winner: int | None
    classes: tuple[tuple[str, int, bool], ...]
    tied: tuple[int, ...]

    @property
    def correct(self) -> bool:
        """Whether the team's answer is right (under an ``"expected"`` tie: whether its expected reward is positive-leaning, i.e. a majority of tied classes are right)."""
        if self.winner is not None:
            return self.classes[self.winner][2]
        if not self.tied:
            return False
        right = sum(self.classes[i][2] for i in self.tied)
        return right * 2 > len(self.tied)


class VotingEnv(TeamEnv):
    """N-agent plurality vote over verifier equivalence classes. See the module docstring.

    Args:
        dataset: dataset name or sequence of problems (see :class:`~ccpo_env.envs.base.TeamEnv`).
        num_voters: number of voters (default 3).
        visible_votes: show earlier votes to later voters (default False).
        tie_break: ``"expected"`` (default) or ``"random"``.
        **kwargs: every other :class:`~ccpo_env.envs.base.TeamEnv` argument.

    ``metadata["is_parallelizable"]`` is per instance: ``True`` unless ``visible_votes`` (a voter that
    reads earlier votes must wait for them).
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "voting_v0", "is_parallelizable": True}

    def __init__(
        self,
        dataset: Any = "arith",
        *,
        num_voters: int = 3,
        visible_votes: bool = False,
        tie_break: str = "expected",
        **kwargs: Any,
    ) -> None:
        if isinstance(num_voters, bool) or not isinstance(num_voters, int) or num_voters < 1:
            raise ValueError(f"num_voters must be a positive integer, got {num_voters!r}")
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break={tie_break!r} is not valid; choose one of {list(TIE_BREAKS)}")
        self.possible_agents = list(_TOPOLOGY.agents(num_voters=num_voters))
        self.removable_agents = _TOPOLOGY.removable(tuple(self.possible_agents))
        self.verified_agents = tuple(self.possible_agents)  # every vote is scored (its answer is extracted)
        super().__init__(dataset, **kwargs)
        self.num_voters = num_voters
        self.visible_votes = bool(visible_votes)
        self.metadata = {**type(self).metadata, "is_parallelizable": not self.visible_votes}
        self.tie_break = tie_break
        self._spawn_kwargs.update(num_voters=num_voters, visible_votes=visible_votes, tie_break=tie_break)
        self.votes: dict[str, Verdict] = {}
        self.tally: VoteTally | None = None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Start an episode. ``options``: ``problem`` (index or id) and ``remove`` (voters who do not vote)."""
        self._start_episode(seed, options)
        self.votes = {}
        self.tally = None

    def vote_requests(self, actions: Mapping[str, Any]) -> dict[str, VerifyRequest]:
        """What each voter's step would send to the verifier, for the live voters named in ``actions``.

        A vote is scored on its own (the problem and its text), whatever the order, so the requests of a
        whole round can be made before anyone votes: the Parallel env scores them in one
        :meth:`verify_requests` call. Each action is validated as ``step`` would; nothing changes.
        """
        if self.problem is None:
            raise RuntimeError("call reset() before vote_requests()")
        live = [a for a in self.agents if not (self.terminations[a] or self.truncations[a])]
        return {a: self._request(self._clean_action(actions[a], a)[0]) for a in live if a in actions}

    def observe(self, agent: str) -> TextObservation:
        """The voter prompt; with ``visible_votes`` it lists the answers of earlier voters."""
        assert self.problem is not None, "call reset() first"
        if agent not in self.possible_agents:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.possible_agents}")
        problem = self.problem.problem
        if not self.visible_votes:
            return self._observation(self.templates.render("voter", problem=problem))
        earlier = [
            f"{a}: {v.pred if v.pred is not None else '(no answer)'}"
            for a, v in self.votes.items()
            if self.possible_agents.index(a) < self.possible_agents.index(agent)
        ]
        votes = "\n".join(earlier) if earlier else "(none yet)"
        return self._observation(self.templates.render("voter_visible", problem=problem, votes=votes))

    def step(self, action: Any) -> None:
        """Record the current voter's answer; the last voter's step counts the votes."""
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        text, was_cut = self._clean_action(action)
        self._cumulative_rewards[agent] = 0.0
        self._clear_rewards()
        assert self.problem is not None
        verdict = self._verify(text, action)
        self.votes[agent] = verdict
        self._moves.append((agent, text))
        self.infos[agent].update(action_truncated=was_cut, pred=verdict.pred)
        following = self._next_live_agent(agent)
        if following is not None:
            self.agent_selection = following
            return
        self.tally = self._count(self.votes, rng_seed=self._episode_seed)
        for a in self.agents:
            self.rewards[a] = self.tally.reward
            self.terminations[a] = True
            self.infos[a].update(
                correct=self.tally.correct,
                vote_correct=self.votes[a].correct,
                reason=self.votes[a].reason,
                classes=[list(c) for c in self.tally.classes],
                winner=self.tally.winner,
                gold=self.problem.answer,
            )
        self._accumulate_rewards()
        self._deads_step_first()

    # ------------------------------------------------------------------ counting
    def _count(self, votes: dict[str, Verdict], *, rng_seed: Any,
               membership: Mapping[str, int | None] | None = None) -> VoteTally:  # fmt: skip
        """The tally of ``votes``. ``membership`` (voter -> class id over all votes, None: abstained) skips
        the equivalence checks when many subsets of the same votes are counted."""
        assert self.problem is not None
        answer_type = self.problem.answer_type
        verdicts = list(votes.values())
        if membership is None:
            groups = answer_classes([v.pred for v in verdicts], answer_type=answer_type)
        else:  # the same classes, ordered by first appearance among these votes as answer_classes orders them
            by_class: dict[int, list[int]] = {}
            for pos, agent in enumerate(votes):
                if membership[agent] is not None:
                    by_class.setdefault(int(membership[agent]), []).append(pos)  # type: ignore[arg-type]
            groups = list(by_class.values())
        # (representative pred, votes, correct): a class is as right as its first member.
        classes = [(verdicts[g[0]].pred, len(g), verdicts[g[0]].correct) for g in groups]
        frozen = tuple((c[0], c[1], bool(c[2])) for c in classes)
        if not classes:
            return VoteTally(self.reward_incorrect, None, frozen, ())
        top = max(c[1] for c in classes)
        tied = tuple(i for i, c in enumerate(classes) if c[1] == top)
        if len(tied) == 1:
            return VoteTally(self._reward_for(frozen[tied[0]][2]), tied[0], frozen, tied)
        if self.tie_break == "expected":
            reward = float(np.mean([self._reward_for(frozen[i][2]) for i in tied]))
            return VoteTally(reward, None, frozen, tied)
        pick = tied[int(np.random.default_rng(stable_seed("tie", rng_seed)).integers(len(tied)))]
        return VoteTally(self._reward_for(frozen[pick][2]), pick, frozen, tied)

    def counterfactual_rewards(self) -> dict[str, float]:
        """For each voter that voted, the joint reward with that voter's vote left out.

        Computed from the recorded votes, with no new decoding. Under ``tie_break="random"`` each
        re-count draws with its own generator seeded from the episode seed and the voter, so the
        result is reproducible. A voter whose removal leaves no votes gets ``reward_incorrect``.
        """
        if self.tally is None:
            raise RuntimeError("counterfactual_rewards() needs a finished episode: step every voter first")
        out: dict[str, float] = {}
        for agent in self.votes:
            rest = {a: v for a, v in self.votes.items() if a != agent}
            out[agent] = self._count(rest, rng_seed=(self._episode_seed, agent)).reward
        return out

    def coalition_rewards(self) -> dict[tuple[str, ...], float]:
        """The joint reward of every subset of the voters who voted, re-counted from the recorded votes.

        Keys are voter tuples in voting order, ``()`` included (no votes: ``reward_incorrect``). The full set
        gives the episode's reward and each set of N − 1 the same value as :meth:`counterfactual_rewards`
        (under ``tie_break="random"`` with the same seeds; other subsets draw with a seed from the episode
        seed and the subset). Answer classes are formed once over all votes. 2^N counts, no decoding;
        refused above :data:`MAX_COALITION_VOTERS` voters.
        """
        if self.tally is None:
            raise RuntimeError("coalition_rewards() needs a finished episode: step every voter first")
        voters = list(self.votes)
        n = len(voters)
        if n > MAX_COALITION_VOTERS:
            raise ValueError(f"coalition_rewards() counts 2^N subsets; {n} voters is more than "
                             f"MAX_COALITION_VOTERS={MAX_COALITION_VOTERS}: use leave-one-out credit instead")
        assert self.problem is not None
        groups = answer_classes([self.votes[a].pred for a in voters], answer_type=self.problem.answer_type)
        membership: dict[str, int | None] = {a: None for a in voters}
        for cid, members in enumerate(groups):
            for pos in members:
                membership[voters[pos]] = cid
        out: dict[tuple[str, ...], float] = {(): float(self.reward_incorrect)}
        for size in range(1, n + 1):
            for subset in itertools.combinations(voters, size):
                if size == n:
                    out[subset] = float(self.tally.reward)
                    continue
                missing = [a for a in voters if a not in subset]
                seed = (self._episode_seed, missing[0]) if size == n - 1 else (self._episode_seed, "coalition", subset)
                out[subset] = self._count({a: self.votes[a] for a in subset}, rng_seed=seed,
                                          membership=membership).reward
        return out

    def _outcome_lines(self) -> list[str]:
        if self.tally is None or self.problem is None:
            return []
        lines = [f"  class {c[0]!r}: {c[1]} vote(s), {'correct' if c[2] else 'wrong'}" for c in self.tally.classes]
        lines.append(f"=== joint reward {self.tally.reward:+.2f} | gold: {self.problem.answer!r}")
        return lines


#: The unwrapped env class, under the name PettingZoo's environment modules use.
raw_env = VotingEnv


def env(**kwargs: Any) -> OrderEnforcingWrapper:
    """A :class:`VotingEnv` (any of its arguments) in the standard wrappers (:func:`~ccpo_env.envs.base.wrap`)."""
    return wrap(raw_env(**kwargs))


_NO_PARALLEL = (
    "visible_votes=True makes each voter read the earlier votes (a deliberation chain), so the voters cannot "
    "act at once and there is no Parallel API version; use the AEC env (ccpo_env.envs.voting.env(...) or "
    "VotingEnv) for it, or visible_votes=False for the parallel one"
)


class VotingParallelEnv(aec_to_parallel_wrapper):
    """Parallel API view of a :class:`VotingEnv` (raw or wrapped) without visible votes.

    Raises:
        TypeError: ``aec_env`` is not a (wrapped) :class:`VotingEnv`.
        ValueError: the env has ``visible_votes=True``.
    """

    def __init__(self, aec_env: AECEnv) -> None:
        raw = aec_env.unwrapped
        if not isinstance(raw, VotingEnv):
            raise TypeError(f"VotingParallelEnv wraps a VotingEnv; got {type(raw).__name__}")
        if raw.visible_votes:
            raise ValueError(_NO_PARALLEL)
        super().__init__(aec_env)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Cast every live vote at once; all votes are verified in one verifier call, then counted."""
        raw = self.unwrapped
        requests = raw.vote_requests(actions)
        verdicts = raw.verify_requests(list(requests.values()))
        scored = {a: VerifiedAction(actions[a], r, v) for (a, r), v in zip(requests.items(), verdicts)}
        return super().step({**actions, **scored})

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the parallel wrapper lacks: the AEC env's hooks and attributes.
        if name.startswith("_") or name == "aec_env":
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(self.aec_env, name)


def parallel_env(**kwargs: Any) -> VotingParallelEnv:
    """A :class:`VotingParallelEnv` over ``voting.env(**kwargs)`` (any :class:`VotingEnv` argument but ``visible_votes=True``)."""
    if kwargs.get("visible_votes"):
        raise ValueError(_NO_PARALLEL)  # before any data is loaded
    return VotingParallelEnv(env(**kwargs))
