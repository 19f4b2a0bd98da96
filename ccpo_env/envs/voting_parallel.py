"""VotingParallelEnv: :class:`~ccpo_env.envs.voting.VotingEnv` under PettingZoo's Parallel API.

Without visible votes a voter sees only the problem, so the voters act independently and the AEC env
changes nothing anyone observes until the last vote is in: exactly the case PettingZoo's
:func:`~pettingzoo.utils.conversions.aec_to_parallel` is built for (``metadata["is_parallelizable"]``).
One ``step({voter: text, ...})`` casts every live vote, verified together in one verifier call
(:meth:`~ccpo_env.envs.voting.VotingEnv.vote_requests`, then
:meth:`~ccpo_env.envs.base.TeamEnv.verify_requests`); the returned rewards are the joint reward of the count. With ``visible_votes=True`` each voter reads the earlier votes (a deliberation chain), which has
no parallel form: asking for one raises a ``ValueError``.

The counterfactual hooks and every other public attribute of the AEC env (``counterfactual_rewards()``,
``tally``, ``votes``, ``problem``, ``resolve_problem()``, ``counterfactual()``, ``spawn()``, ...) are
reachable on the parallel env; ``counterfactual()`` and ``spawn()`` return AEC envs. A counterfactual
episode under the Parallel API is a ``reset(options={"problem": ..., "remove": [...]})``.
"""

from __future__ import annotations

from typing import Any

from pettingzoo import AECEnv
from pettingzoo.utils.conversions import aec_to_parallel_wrapper

from ccpo_env.envs.voting import VotingEnv, env
from ccpo_env.records import VerifiedAction

__all__ = ["VotingParallelEnv", "parallel_env"]

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
