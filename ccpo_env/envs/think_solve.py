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
"""

from __future__ import annotations

from typing import Any

from ccpo_env.envs.base import TeamEnv
from ccpo_env.prompts import strip_boxed
from ccpo_env.spaces import TextObservation

__all__ = ["ThinkSolveEnv", "env"]


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
    removable_agents = ("thinker",)

    def __init__(self, dataset: Any = "arith", **kwargs: Any) -> None:
        self.possible_agents = ["thinker", "solver"]
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
        if agent == "thinker":
            text = self.templates.render("thinker", problem=problem)
        elif agent == "solver":
            if "thinker" in self.removed:
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
        if agent == "thinker":
            self.thought, stripped = strip_boxed(text)
            self.infos[agent]["boxed_stripped"] = stripped
            self._moves.append((agent, self.thought))
            self.agent_selection = "solver"
            return
        # The Solver's answer ends the episode for everyone.
        self.answer = text
        self._moves.append((agent, text))
        assert self.problem is not None
        self.verdict = self._verify(text)
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


def env(**kwargs: Any) -> ThinkSolveEnv:
    """PettingZoo-style constructor."""
    return ThinkSolveEnv(**kwargs)
