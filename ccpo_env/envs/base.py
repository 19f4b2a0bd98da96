"""Shared machinery of the collaborative-reasoning environments.

:class:`TeamEnv` holds what ThinkSolve and Voting have in common: the dataset and problem choice,
seeding (of the episode *and* of the env's own action/observation spaces), the counterfactual reset
hooks (``options={"problem": ..., "remove": [...]}`` and :meth:`TeamEnv.counterfactual`), the
batched-verification hook (:meth:`TeamEnv.verification_request`, :meth:`TeamEnv.verify_requests`,
:class:`~ccpo_env.records.VerifiedAction`), the joint reward values, action clean-up and rendering.
Each concrete env lives in its own module and defines its agents, observations and ``step``; each
module also offers PettingZoo's constructors ``env(**kwargs)`` (wrapped, see :func:`wrap`) and
``raw_env`` (the class).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from gymnasium.utils import seeding
from pettingzoo import AECEnv
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from ccpo_env.data import Problem, load_dataset
from ccpo_env.prompts import DEFAULT_TEMPLATES, PromptTemplates
from ccpo_env.records import VerifiedAction, VerifyRequest, action_text
from ccpo_env.seeding import stable_seed
from ccpo_env.spaces import PrintableText, TextObservation, sanitize, text_space, to_observation
from ccpo_env.verify import TRAINING_EXTRACTION, Verdict, verify, verify_batch
from ccpo_env.verify.extract import check_extraction

__all__ = ["TeamEnv", "wrap"]

_KNOWN_OPTIONS = frozenset({"problem", "remove"})


class TeamEnv(AECEnv):
    """Base class: a team of agents answers one problem per episode and shares one verified reward.

    Args:
        dataset: a registered dataset name (see :func:`ccpo_env.data.list_datasets`) or a sequence of
            :class:`~ccpo_env.data.Problem` (e.g. a loaded ``Dataset``).
        split: dataset split (the benchmark sets have ``"test"``; ``arith`` has ``"train"``/``"test"``).
        data_dir: folder holding ``<name>.jsonl``; defaults to ``$CCPO_DATA_DIR``, then the Hub.
        dataset_options: extra keyword arguments for :func:`~ccpo_env.data.load_dataset`
            (e.g. ``{"level": 2}`` for ``arith``).
        problems: restrict episodes to these problem indices or ids (``None``: the whole dataset).
        limit: keep only the first ``limit`` problems of the dataset.
        reward_correct: joint reward when the team's answer is right (default ``1.0``).
        reward_incorrect: joint reward otherwise (default ``-1.0``; use ``0.0`` for {1, 0} rewards).
        max_action_chars: longer actions are cut to this many characters and flagged in ``infos``
            as ``action_truncated`` (default 8192).
        max_observation_chars: bound of the observation space; longer observations keep head and
            tail (default 32768).
        templates: role prompt templates (default :data:`~ccpo_env.prompts.DEFAULT_TEMPLATES`).
        seed: seed used by the first ``reset()`` that is given no seed.
        verifier: ``fn(response, gold, *, answer_type) -> Verdict`` scoring the team's answer
            (default :func:`ccpo_env.verify.verify` with ``extraction``); plug in your own for other tasks. A custom
            verifier may offer a batch form as its ``.batch`` attribute, with the signature of
            :func:`ccpo_env.verify.verify_batch` (``batch(responses, golds, *, answer_types)``);
            :meth:`verify_requests` then scores a whole batch in one call, else item by item.
        extraction: how the default verifier finds the final answer (``"anchored"``, the default: a
            ``\\boxed{}``, else an "answer is"/"Answer:" anchor, else a last line holding only the answer;
            ``"boxed"``: only a box counts; ``"lenient"``: also the last expression of a concluding
            sentence, as evaluation checkers read prose). Rewards default to ``"anchored"`` because
            paying for the last number of unfinished working rewards rambling and lucky guesses.
        render_mode: ``None``, ``"ansi"`` (``render()`` returns the transcript) or ``"human"`` (prints it).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "is_parallelizable": False}
    #: agents that may appear in ``options["remove"]``; set by subclasses.
    removable_agents: tuple[str, ...] = ()
    #: agents whose step sends their action to the verifier; set by subclasses.
    verified_agents: tuple[str, ...] = ()

    def __init__(
        self,
        dataset: str | Sequence[Problem] = "arith",
        *,
        split: str = "test",
        data_dir: str | None = None,
        dataset_options: dict[str, Any] | None = None,
        problems: Sequence[int | str] | None = None,
        limit: int | None = None,
        reward_correct: float = 1.0,
        reward_incorrect: float = -1.0,
        max_action_chars: int = 8192,
        max_observation_chars: int = 32768,
        templates: PromptTemplates | None = None,
        seed: int | None = None,
        verifier: Callable[..., Verdict] | None = None,
        extraction: str = TRAINING_EXTRACTION,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported; valid: {self.metadata['render_modes']} or None")
        if max_action_chars < 1 or max_observation_chars < 1:
            raise ValueError("max_action_chars and max_observation_chars must be positive")
        if not float(reward_correct) > float(reward_incorrect):
            raise ValueError(
                f"reward_correct ({reward_correct}) must be greater than reward_incorrect ({reward_incorrect})"
            )
        if isinstance(dataset, str):
            self.dataset = load_dataset(dataset, split=split, data_dir=data_dir, limit=limit, **(dataset_options or {}))
        else:
            if dataset_options:
                raise ValueError("dataset_options only apply when dataset is given by name")
            self.dataset = dataset if limit is None else dataset[:limit]
        if len(self.dataset) == 0:
            raise ValueError(f"dataset {dataset!r} has no problems")
        # What a counterfactual branch needs to be built like this env; subclasses add their own.
        self._spawn_kwargs: dict[str, Any] = dict(
            reward_correct=reward_correct, reward_incorrect=reward_incorrect,
            max_action_chars=max_action_chars, max_observation_chars=max_observation_chars,
            templates=templates, render_mode=render_mode, verifier=verifier, extraction=extraction,
        )
        check_extraction(extraction)
        #: how the default verifier finds the answer; ignored by a custom ``verifier``.
        self.extraction = extraction
        self._default_verifier = verifier is None
        self.verifier = verifier if verifier is not None else partial(verify, extraction=extraction)
        self.reward_correct = float(reward_correct)
        self.reward_incorrect = float(reward_incorrect)
        self.max_action_chars = int(max_action_chars)
        self.max_observation_chars = int(max_observation_chars)
        self.templates = templates if templates is not None else DEFAULT_TEMPLATES
        self.render_mode = render_mode
        self._ids: dict[str, int] | None = None
        self._subset: list[int] | None = None
        if problems is not None:
            self._subset = [self.resolve_problem(p) for p in problems]
            if not self._subset:
                raise ValueError("problems= must name at least one problem")
        self._default_seed = seed
        self.np_random, self.np_random_seed = seeding.np_random(seed)
        self._episode_seed: int | None = None
        self._branch_count = 0
        self.problem_index: int | None = None
        self.problem: Problem | None = None
        self.removed: tuple[str, ...] = ()
        self._moves: list[tuple[str, str]] = []
        # Per instance (never shared with another env), and the same object for every agent.
        self._observation_space = text_space(self.max_observation_chars)
        self._action_space = text_space(self.max_action_chars)
        if seed is not None:
            self._seed_spaces(seed)

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> PrintableText:  # noqa: D102 - PettingZoo API
        return self._observation_space

    def action_space(self, agent: str) -> PrintableText:  # noqa: D102 - PettingZoo API
        return self._action_space

    def _seed_spaces(self, seed: int) -> None:
        # Derived seeds: the spaces' draws must not mirror the episode's own generator.
        self._observation_space.seed(stable_seed("observation_space", seed))
        self._action_space.seed(stable_seed("action_space", seed))

    # ------------------------------------------------------------------ problems
    def resolve_problem(self, key: int | str) -> int:
        """The dataset index of a problem given by index (negative counts from the end) or id.

        Raises:
            TypeError: ``key`` is neither an int nor a str.
            KeyError: no problem has that id.
            IndexError: the index is out of range.
        """
        n = len(self.dataset)
        if isinstance(key, bool) or not isinstance(key, (int, str)) and not hasattr(key, "__index__"):
            raise TypeError(f"a problem is chosen by index (int) or id (str); got {type(key).__name__}")
        if isinstance(key, str):
            index_of = getattr(self.dataset, "index_of", None)
            if index_of is not None:
                return int(index_of(key))
            if self._ids is None:
                self._ids = {p.id: i for i, p in enumerate(self.dataset)}
            if key not in self._ids:
                raise KeyError(f"no problem with id {key!r} in this dataset (ids look like {self.dataset[0].id!r})")
            return self._ids[key]
        index = int(key)
        if not -n <= index < n:
            raise IndexError(f"problem index {index} is out of range for a dataset of {n} problems")
        return index % n

    def _parse_options(self, options: dict[str, Any] | None) -> tuple[int | None, tuple[str, ...]]:
        options = dict(options or {})
        unknown = set(options) - _KNOWN_OPTIONS
        if unknown:
            # api_test passes an unknown key on purpose, so this warns instead of raising.
            warnings.warn(
                f"{type(self).__name__}.reset ignores unknown option(s) {sorted(unknown)}; "
                f"valid options are {sorted(_KNOWN_OPTIONS)}",
                stacklevel=3,
            )
        problem = options.get("problem")
        index = None if problem is None else self.resolve_problem(problem)
        remove = options.get("remove") or ()
        if isinstance(remove, str):
            remove = (remove,)
        remove = tuple(dict.fromkeys(remove))
        bad = [a for a in remove if a not in self.possible_agents]
        if bad:
            raise ValueError(f"cannot remove unknown agent(s) {bad}; agents are {self.possible_agents}")
        if len(remove) == len(self.possible_agents):
            raise ValueError("removing every agent leaves nobody to answer; keep at least one agent")
        not_removable = [a for a in remove if a not in self.removable_agents]
        if not_removable:
            raise ValueError(
                f"agent(s) {not_removable} cannot be removed from {type(self).__name__}; "
                f"removable agents are {list(self.removable_agents)}"
            )
        return index, remove

    def _start_episode(self, seed: int | None, options: dict[str, Any] | None) -> None:
        """Seed, pick the problem and the removed agents; subclasses then set up their state."""
        index, remove = self._parse_options(options)  # validate before changing any state
        if seed is None and self._episode_seed is None and self._default_seed is not None:
            seed = self._default_seed
        if seed is not None:
            self.np_random, self.np_random_seed = seeding.np_random(seed)
            self._branch_count = 0
            self._seed_spaces(seed)
        # The episode seed drives anything random inside the episode (e.g. a tie-break draw).
        self._episode_seed = int(self.np_random.integers(2**31 - 1))
        if index is None:
            pool = self._subset if self._subset is not None else None
            n = len(pool) if pool is not None else len(self.dataset)
            pick = int(self.np_random.integers(n))
            index = pool[pick] if pool is not None else pick
        self.problem_index = index
        self.problem = self.dataset[index]
        self.removed = remove
        self.agents = [a for a in self.possible_agents if a not in remove]
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: self._base_info(a) for a in self.agents}
        self.agent_selection = self.agents[0]
        self._moves = []

    def _base_info(self, agent: str) -> dict[str, Any]:
        assert self.problem is not None
        return {
            "problem_id": self.problem.id,
            "problem_index": self.problem_index,
            "source": self.problem.source,
            "removed": list(self.removed),
        }

    # ------------------------------------------------------------------ counterfactual hooks
    def counterfactual(self, remove: Sequence[str] = (), *, seed: int | None = None) -> TeamEnv:
        """A fresh env on the *same* problem with ``remove`` left out, reset and ready to step.

        The branch shares this env's dataset object (nothing is reloaded). Its seed is derived from
        this episode's seed and a branch counter unless ``seed`` is given, so repeated calls give
        distinct but reproducible branches.
        """
        if self.problem_index is None:
            raise RuntimeError("call reset() before counterfactual(): there is no problem to branch from")
        if seed is None:
            self._branch_count += 1
            seed = stable_seed(self._episode_seed, self.problem_index, tuple(remove), self._branch_count)
        branch = self.spawn()
        branch.reset(seed=seed, options={"problem": self.problem_index, "remove": list(remove)})
        return branch

    def spawn(self) -> TeamEnv:
        """A new, not yet reset env of the same class and configuration, sharing this env's dataset.

        The rollout driver uses it to make many envs from one template without reloading data.
        """
        # problems= carries over too: a driver drawing problems from a spawned env keeps the subset.
        return type(self)(self.dataset, problems=self._subset, **self._spawn_kwargs)

    # ------------------------------------------------------------------ helpers for subclasses
    def _clean_action(self, action: Any, agent: str | None = None) -> tuple[str, bool]:
        """Validate ``agent``'s action (default: the current agent's) and cut it to ``max_action_chars``.

        Returns (text, was_truncated).
        """
        agent = self.agent_selection if agent is None else agent
        if action is None:
            raise ValueError(
                f"agent {agent!r} is live and must act with a string; None is only valid for terminated agents"
            )
        try:
            text = action_text(action)
        except TypeError as e:
            raise TypeError(f"invalid action for {agent!r}: {e}") from None
        if len(text) > self.max_action_chars:
            return text[: self.max_action_chars], True
        return text, False

    def _observation(self, text: str) -> TextObservation:
        return to_observation(text, self.max_observation_chars)

    # ------------------------------------------------------------------ verification
    def _request(self, text: str) -> VerifyRequest:
        assert self.problem is not None
        return VerifyRequest(text, self.problem.answer, self.problem.answer_type)

    def verification_request(self, action: Any) -> VerifyRequest | None:
        """What ``step(action)`` would send to the verifier now; ``None`` when this step verifies nothing.

        With :meth:`verify_requests` and :class:`~ccpo_env.records.VerifiedAction` this lets a driver
        verify the actions of many envs in one batched call: collect the requests, score them together,
        then step each env with ``VerifiedAction(action, request, verdict)``. A live agent's ``action``
        is validated as ``step`` would (same errors), without changing any state.
        """
        if self.problem is None:
            raise RuntimeError("call reset() before verification_request()")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            return None  # a dead step takes None and verifies nothing
        text, _ = self._clean_action(action)
        return self._request(text) if agent in self.verified_agents else None

    def verify_requests(self, requests: Sequence[VerifyRequest]) -> list[Verdict]:
        """Score many requests (from any envs sharing this verifier) with one verifier call, in order.

        The default verifier is scored with :func:`ccpo_env.verify.verify_batch` (same verdict per item
        as :func:`~ccpo_env.verify.verify`); a custom verifier with a ``.batch`` attribute through that;
        a custom verifier without one item by item.
        """
        requests = list(requests)
        if not requests:
            return []
        if self._default_verifier:
            batch = partial(verify_batch, extraction=self.extraction)
        else:
            batch = getattr(self.verifier, "batch", None)
        if batch is None:
            return [self.verifier(r.response, r.gold, answer_type=r.answer_type) for r in requests]
        verdicts = list(batch(
            [r.response for r in requests], [r.gold for r in requests], answer_types=[r.answer_type for r in requests]
        ))
        if len(verdicts) != len(requests):
            raise ValueError(
                f"the verifier's batch form returned {len(verdicts)} verdicts for {len(requests)} responses; "
                "it must return one verdict per response, in order"
            )
        return verdicts

    def _verify(self, text: str, action: Any) -> Verdict:
        """The verdict on ``text`` (the cleaned ``action``): precomputed when ``action`` carries a matching one."""
        request = self._request(text)
        if isinstance(action, VerifiedAction) and action.request == request:
            return action.verdict
        return self.verifier(request.response, request.gold, answer_type=request.answer_type)

    def _reward_for(self, correct: bool) -> float:
        return self.reward_correct if correct else self.reward_incorrect

    def _next_live_agent(self, after: str) -> str | None:
        later = self.agents[self.agents.index(after) + 1 :]
        return later[0] if later else None

    # ------------------------------------------------------------------ rendering
    def transcript(self) -> str:
        """A human-readable transcript of the current episode (problem, moves, outcome)."""
        if self.problem is None:
            return f"{type(self).__name__}: not reset yet"
        lines = [f"=== {type(self).__name__} | {self.problem.source}:{self.problem.id}"]
        if self.removed:
            lines.append(f"removed: {', '.join(self.removed)}")
        lines.append(f"problem: {self.problem.problem}")
        for agent, text in self._moves:
            lines.append(f"--- {agent}:\n{text}")
        outcome = self._outcome_lines()
        lines.extend(outcome if outcome else ["(episode in progress)"])
        # Model output may hold terminal escape codes; never print them raw.
        return sanitize("\n".join(lines))

    def _outcome_lines(self) -> list[str]:
        """Lines describing the finished episode's outcome (empty while it runs)."""
        return []

    def render(self) -> str | None:
        """``"ansi"``: return the transcript; ``"human"``: print it; ``None``: warn and do nothing."""
        if self.render_mode is None:
            warnings.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'", stacklevel=2)
            return None
        text = self.transcript()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        """Nothing to release: the verifier's worker pool is shared and closes at interpreter exit."""



def wrap(raw: TeamEnv) -> OrderEnforcingWrapper:
    """``raw`` in the standard PettingZoo wrappers that fit text actions, as each module's ``env()`` returns it.

    Only :class:`~pettingzoo.utils.wrappers.OrderEnforcingWrapper` applies (it raises on ``step``,
    ``observe`` or ``render`` before ``reset``). ``AssertOutOfBoundsWrapper`` and
    ``TerminateIllegalWrapper`` need ``Discrete`` actions (and an action mask), ``ClipOutOfBoundsWrapper``
    a ``Box``; a text action is never "out of bounds": the env cuts it to ``max_action_chars`` and says so
    in ``infos``. Public attributes and hooks (``counterfactual``, ``spawn``, ``resolve_problem``,
    ``verification_request``, ``counterfactual_rewards``, ...) forward through the wrapper; they return
    raw envs. ``env.unwrapped`` is the raw env.
    """
    return OrderEnforcingWrapper(raw)
