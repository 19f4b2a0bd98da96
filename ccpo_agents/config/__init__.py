"""Typed experiment configuration: YAML files and ``key=value`` overrides into dataclasses (torch-free).

:mod:`~ccpo_agents.config.schema` holds the experiment sections, :mod:`~ccpo_agents.config.policy` and
:mod:`~ccpo_agents.config.algo` the policy and algorithm settings, :mod:`~ccpo_agents.config.validate` the
check of a whole config, :mod:`~ccpo_agents.config.loader` YAML/overrides into dataclasses.
"""

from . import loader as _loader
from . import schema as _schema
from .loader import *
from .schema import *
from .validate import check_config

__all__ = [*_loader.__all__, *_schema.__all__, "check_config"]
