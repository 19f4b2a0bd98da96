"""Credit assignment: map a team's shared outcome to a per-agent scalar reward per episode.

Pure numpy functions selectable by name (shared reward, the CCPO counterfactual variants, SEPO, voting)::

    from ccpo_agents.credit import CreditAssigner, CreditBatch

    assigner = CreditAssigner("ccpo_tree")          # owns its GlobalHistoryNormalizer
    result = assigner(CreditBatch(joint_reward=..., group=..., thought=...,
                                  solo_reward=..., solo_group=...))
    result.rewards["thinker"], result.group_keys["solver"], result.baselined["thinker"]
    checkpoint["credit"] = assigner.state_dict()

Built-in methods (``list_credits()``), with the roles they return already baselined:

==============  =====================  ============================  ==============
name            baselined roles        needs                         solo per prompt
==============  =====================  ============================  ==============
shared          -                      -                             0
ccpo_paired     -                      solo, normalizer              one per joint episode
ccpo_event      -                      solo                          k
ccpo_tree       thinker                solo, thoughts, normalizer    k
voting          all voters             loo                           0
voting_shapley  -                      coalitions                    0
sepo            -                      ratings                       0
c3              all roles              thoughts                      0
magrpo          all roles              -                             0
drmas           all roles              -                             0
==============  =====================  ============================  ==============

``c3``, ``magrpo`` and ``drmas`` are peers' methods (``peers.py`` says what each reduces to).
"""

# Importing the method modules registers the built-in methods.
from . import batch as _batch
from . import ccpo as _ccpo
from . import episodes as _episodes
from . import normalizer as _normalizer
from . import peers as _peers
from . import registry as _registry
from . import sepo as _sepo
from . import shared as _shared
from . import voting as _voting
from .batch import *
from .ccpo import *
from .episodes import *
from .normalizer import *
from .peers import *
from .registry import *
from .sepo import *
from .shared import *
from .voting import *

# Each module's __all__ is its public API; the package re-exports all of them.
__all__ = [
    *_batch.__all__, *_registry.__all__, *_normalizer.__all__, *_shared.__all__, *_ccpo.__all__,
    *_voting.__all__, *_sepo.__all__, *_episodes.__all__, *_peers.__all__,
]  # fmt: skip
