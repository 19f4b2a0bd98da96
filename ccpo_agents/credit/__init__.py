"""Credit assignment: map a team's shared outcome to a per-agent scalar reward per episode.

Pure numpy functions selectable by name (shared reward, the CCPO counterfactual variants, SEPO, voting)::

    from ccpo_agents.credit import CreditAssigner, CreditBatch

    assigner = CreditAssigner("ccpo_tree")          # owns its GlobalHistoryNormalizer
    result = assigner(CreditBatch(joint_reward=..., group=..., thought=...,
                                  solo_reward=..., solo_group=...))
    result.rewards["thinker"], result.group_keys["solver"], result.baselined["thinker"]
    checkpoint["credit"] = assigner.state_dict()

Built-in methods (``list_credits()``), with the roles they return already baselined:

=============  =====================  ============================  ==============
name           baselined roles        needs                         solo per prompt
=============  =====================  ============================  ==============
shared         -                      -                             0
ccpo_paired    -                      solo, normalizer              one per joint episode
ccpo_event     -                      solo                          k
ccpo_tree      thinker                solo, thoughts, normalizer    k
voting         all voters             loo                           0
sepo           -                      ratings                       0
=============  =====================  ============================  ==============
"""

from . import ccpo as _ccpo  # noqa: F401  (registers the built-in methods)
from . import sepo as _sepo  # noqa: F401
from . import shared as _shared  # noqa: F401
from . import voting as _voting  # noqa: F401
from .batch import DYAD_ROLES, CreditBatch, CreditResult, SepoRatings, group_mean
from .ccpo import (
    CCPOEventConfig,
    CCPOPairedConfig,
    CCPOTreeConfig,
    ccpo_event,
    ccpo_paired,
    ccpo_tree,
    pair_solo_rewards,
)
from .episodes import credit_batch_from_episodes
from .normalizer import GLOBAL_SOURCE, GlobalHistoryNormalizer, RunningStat
from .registry import (
    NEEDS,
    CreditAssigner,
    CreditSpec,
    assign_credit,
    get_credit,
    list_credits,
    register_credit,
)
from .sepo import (
    NEUTRAL_SHARE,
    RATING_TEMPLATE,
    SEPOConfig,
    build_rating_prompt,
    parse_rating,
    ratings_from_texts,
    sepo,
)
from .shared import SharedConfig, shared_credit
from .voting import VotingConfig, voting_loo

__all__ = [
    # types
    "CreditBatch",
    "CreditResult",
    "SepoRatings",
    "DYAD_ROLES",
    # registry
    "CreditSpec",
    "CreditAssigner",
    "register_credit",
    "get_credit",
    "list_credits",
    "assign_credit",
    "NEEDS",
    # normalizer
    "GlobalHistoryNormalizer",
    "RunningStat",
    "GLOBAL_SOURCE",
    # methods and configs
    "SharedConfig",
    "shared_credit",
    "CCPOPairedConfig",
    "CCPOEventConfig",
    "CCPOTreeConfig",
    "ccpo_paired",
    "ccpo_event",
    "ccpo_tree",
    "pair_solo_rewards",
    "VotingConfig",
    "voting_loo",
    "SEPOConfig",
    "sepo",
    # SEPO rating text
    "build_rating_prompt",
    "parse_rating",
    "ratings_from_texts",
    "RATING_TEMPLATE",
    "NEUTRAL_SHARE",
    # helpers
    "group_mean",
    "credit_batch_from_episodes",
]
