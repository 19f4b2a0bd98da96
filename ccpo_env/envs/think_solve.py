"""ThinkSolveEnv: a Thinker writes the solving thought, a Solver gives the final answer.

Agents act in the order ``thinker`` then ``solver``. The Thinker sees the problem; the Solver sees
the problem and the Thinker's message. The episode ends after the Solver acts: the verifier scores
the Solver's final answer and *both* agents receive the same joint reward. Splitting that reward
into per-agent credit is the learner's job (see ``ccpo_agents.credit``), not the env's.

Counterfactual hook: ``reset(options={"remove": ["thinker"]})`` (or :meth:`counterfactual`) runs
the Solver alone on the same problem with the solo prompt; this is the ``R_¬thinker`` branch of CCPO.

``infos[agent]`` always has ``problem_id``, ``problem_index``, ``source`` and ``removed``; after the
agent acts, ``action_truncated`` (and for the Thinker ``boxed_stripped``); after the episode ends,
``pred`` (extracted answer), ``correct``, ``reason`` (the verifier's) and ``gold``.

Constructors, as in PettingZoo's own environment modules: :func:`env` (the env in the standard
wrappers, see :func:`ccpo_env.envs.base.wrap`) and :data:`raw_env` (the class). There is no Parallel
version: the Solver reads the Thinker's message, so the two cannot act at once.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from ccpo_env.envs.base import TeamEnv, wrap
from ccpo_env.prompts import strip_boxed
from ccpo_env.spaces import TextObservation
from ccpo_env.topology import SOLVER, THINKER, get_topology

__all__ = ["ThinkSolveEnv", "env", "raw_env"]

_TOPOLOGY = get_topology("think_solve")


class ThinkSolveEnv(TeamEnv):
    """Two-agent Think–Solve dyad on a verifiable problem. See the module docstring.

    Takes every argument of :class:`~ccpo_env.envs.base.TeamEnv` (dataset, split, rewards, length
    bounds, templates, seed, render_mode, ...).

    Example:
        >>> env = ThinkSolveEnv(dataset="arith")
        >>> env.reset(seed=0)
        >>> for agent in env.agent_iter():
        ...     obs, reward, term, trunc, info = env.last()
        ...     env.step(None if term or trunc else my_policy(agent, obs))
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "think_solve_v0", "is_parallelizable": False}
    verified_agents = (SOLVER,)

    def __init__(self, dataset: Any = "arith", **kwargs: Any) -> None:
        self.possible_agents = list(_TOPOLOGY.agents())
        self.removable_agents = _TOPOLOGY.removable(tuple(self.possible_agents))
        super().__init__(dataset, **kwargs)
        self.thought: str | None = None
        self.answer: str | None = None
        self.verdict = None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Start an episode. ``options``: ``problem`` (index or id) and ``remove`` (e.g. ``["thinker"]``)."""
        self._start_episode(seed, options)
        self.thought = None
        self.answer = None
        self.verdict = None

    def observe(self, agent: str) -> TextObservation:
        """The text ``agent`` sees: its role prompt filled with the problem (and thought)."""
        assert self.problem is not None, "call reset() first"
        problem = self.problem.problem
        if agent == THINKER:
            text = self.templates.render("thinker", problem=problem)
        elif agent == SOLVER:
            if THINKER in self.removed:
                text = self.templates.render("solver_solo", problem=problem)
            else:
                text = self.templates.render("solver_joint", problem=problem, thought=self.thought or "")
        else:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.possible_agents}")
        return self._observation(text)

    def step(self, action: Any) -> None:
        """Take the current agent's message (a ``str`` or an object with ``.text``)."""
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        text, was_cut = self._clean_action(action)  # raises before any state changes
        self._cumulative_rewards[agent] = 0.0
        self._clear_rewards()
        self.infos[agent]["action_truncated"] = was_cut
        if agent == THINKER:
            self.thought, stripped = strip_boxed(text)
            self.infos[agent]["boxed_stripped"] = stripped
            self._moves.append((agent, self.thought))
            self.agent_selection = SOLVER
            return
        # The Solver's answer ends the episode for everyone.
        self.answer = text
        self._moves.append((agent, text))
        assert self.problem is not None
        self.verdict = self._verify(text, action)
        reward = self._reward_for(self.verdict.correct)
        for a in self.agents:
            self.rewards[a] = reward
            self.terminations[a] = True
            self.infos[a].update(
                pred=self.verdict.pred, correct=self.verdict.correct, reason=self.verdict.reason,
                gold=self.problem.answer,
            )
        self._accumulate_rewards()
        self._deads_step_first()

    def _outcome_lines(self) -> list[str]:
        if self.verdict is None or self.problem is None:
            return []
        mark = "correct" if self.verdict.correct else "wrong"
        return [f"=== answer: {self.verdict.pred!r} | gold: {self.problem.answer!r} | {mark} ({self.verdict.reason})"]


#: The unwrapped env class, under the name PettingZoo's environment modules use.
raw_env = ThinkSolveEnv


def env(**kwargs: Any) -> OrderEnforcingWrapper:
    """A :class:`ThinkSolveEnv` (any of its arguments) in the standard wrappers (:func:`~ccpo_env.envs.base.wrap`)."""
    return wrap(raw_env(**kwargs))
