"""Records exchanged between policies, environments and the rollout driver.

These are plain dataclasses with no torch dependency: a policy may return a :class:`Generation`
(text plus the token ids and log-probs it sampled) instead of a bare ``str``; the driver feeds
``Generation.text`` to the environment and keeps the whole object in the episode record so that
a learner can train on exactly what was sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: records stay import-light
    from ccpo_env.verify import Verdict


@dataclass
class Generation:
    """One sampled completion.

    Attributes:
        text: the decoded completion (what the environment receives as the action).
        token_ids: completion token ids, without the prompt (``None`` for non-LLM policies).
        logprobs: log-probability of each completion token under the sampling distribution.
        prompt_token_ids: the prompt token ids the completion was conditioned on.
        truncated: True when generation stopped at the token limit instead of an end token.
        extra: anything else a policy wants to pass through (e.g. the role adapter used).
    """

    text: str
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prompt_token_ids: list[int] | None = None
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def action_text(output: Any) -> str:
    """The text of a policy output: a ``str`` itself, or the ``.text`` of a richer object."""
    if isinstance(output, str):
        return output
    text = getattr(output, "text", None)
    if isinstance(text, str):
        return text
    raise TypeError(
        f"a policy must return str or an object with a str `.text` attribute (e.g. ccpo_env.Generation); "
        f"got {type(output).__name__}"
    )


@dataclass(frozen=True)
class VerifyRequest:
    """What an env's step would send to its verifier: ``verifier(response, gold, answer_type=...)``.

    Returned by :meth:`ccpo_env.envs.base.TeamEnv.verification_request`, so that a driver can score the
    final actions of many envs with one batched call (:meth:`~ccpo_env.envs.base.TeamEnv.verify_requests`).

    Attributes:
        response: the action text exactly as the env will score it (after its length cut).
        gold: the problem's gold answer.
        answer_type: the problem's answer type (``"math"`` or ``"label"``).
    """

    response: str
    gold: str
    answer_type: str


@dataclass(frozen=True)
class VerifiedAction:
    """An action that carries its precomputed verdict, so that ``env.step`` does not verify it again.

    The env uses ``verdict`` only when ``request`` is exactly what it would have verified (same text,
    gold and answer type); otherwise it calls its verifier as usual, so a stale or mismatched verdict
    can never score the wrong answer. Any wrapper that passes actions through passes this one too.

    Attributes:
        output: what the policy returned (a ``str`` or an object with ``.text``).
        request: the request the verdict answers.
        verdict: the verifier's verdict on ``request``.
    """

    output: Any
    request: VerifyRequest
    verdict: Verdict

    @property
    def text(self) -> str:
        """The action text (what the env receives)."""
        return action_text(self.output)


@dataclass
class Turn:
    """One agent's move in an episode.

    Attributes:
        agent: the agent that acted (e.g. ``"thinker"``).
        observation: the exact text the agent saw.
        action: the text passed to ``env.step`` (before the env's own truncation/stripping).
        output: what the policy returned (a ``str`` or a :class:`Generation`).
        info: the agent's ``infos`` entry right after its step.
    """

    agent: str
    observation: str
    action: str
    output: Any = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Episode:
    """A finished episode as recorded by :func:`ccpo_env.rollout.rollout`.

    Attributes:
        uid: position of this record in the returned list.
        group: index of the problem in the ``problems`` argument (the GRPO "prompt group").
        problem_index: index of the problem in the env's dataset.
        problem_id: the dataset id of the problem.
        source: the dataset name the problem came from.
        removed: agents removed for this episode (empty for a joint episode).
        sample: which of the ``num_samples`` joint episodes (or ``num_counterfactual`` branches) this is.
        fork: which copy this is after a fan-out point (0 when there is none). Episodes with the same
            ``(group, removed, sample)`` share every turn before the fan-out point, e.g. one Thinker
            message answered ``m`` times.
        turns: the turns in order.
        rewards: each agent's total reward over the episode.
        infos: each agent's final ``infos`` entry.
        correct: the verifier's verdict on the team's final answer.
        counterfactual_rewards: for envs that can re-score without decoding
            (``VotingEnv.counterfactual_rewards()``), agent -> joint reward with that agent left out.
        coalition_rewards: with ``rollout(coalitions=True)``, agent subset (a tuple in acting order) ->
            joint reward of that subset alone (``VotingEnv.coalition_rewards()``).
    """

    uid: int
    group: int
    problem_index: int
    problem_id: str
    source: str
    removed: tuple[str, ...]
    sample: int
    fork: int
    turns: list[Turn]
    rewards: dict[str, float]
    infos: dict[str, dict[str, Any]]
    correct: bool
    counterfactual_rewards: dict[str, float] | None = None
    coalition_rewards: dict[tuple[str, ...], float] | None = None

    @property
    def is_counterfactual(self) -> bool:
        return bool(self.removed)

    @property
    def thought_key(self) -> tuple[int, tuple[str, ...], int]:
        """Key shared by the episodes that branch from one prefix (e.g. one Thinker message)."""
        return (self.group, self.removed, self.sample)

    def turn(self, agent: str) -> Turn | None:
        """The (first) turn of ``agent``, or ``None`` if it did not act."""
        for t in self.turns:
            if t.agent == agent:
                return t
        return None
