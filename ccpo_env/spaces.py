"""Text observation and action spaces.

PettingZoo's ``api_test`` checks that an observation's ``dtype`` equals its space's ``dtype``.
``gymnasium.spaces.Text`` declares ``dtype = np.dtype(str)`` while a Python ``str`` has no
``dtype`` at all, so a plain string observation fails that check. :class:`TextObservation` is a
real ``str`` (tokenizers, f-strings and ``==`` treat it as one) that also carries the space's
dtype, which is the honest fix: the observation *is* a member of a ``Text`` space.

The charset is every printable Unicode character plus newline, tab and carriage return: benchmark
problems contain ``’``, ``−``, ``€`` or ``Ś``, and transliterating them would change what the model
sees. Characters outside the charset (control characters from a broken generation, say) are
replaced with U+FFFD in observations so that an observation is always inside its space.
"""

from __future__ import annotations

import copy
import functools
import sys

import numpy as np
from gymnasium.spaces import Text

__all__ = ["PrintableText", "TextObservation", "printable_charset", "sanitize", "text_space", "to_observation"]

_EXTRA_WHITESPACE = "\n\t\r"
_REPLACEMENT = "\ufffd"


class TextObservation(str):
    """A ``str`` that declares the dtype of :class:`gymnasium.spaces.Text`."""

    __slots__ = ()
    dtype = np.dtype(str)


@functools.lru_cache(maxsize=1)
def printable_charset() -> frozenset[str]:
    """All printable Unicode characters, plus ``\\n``, ``\\t`` and ``\\r``."""
    chars = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isprintable()}
    chars.update(_EXTRA_WHITESPACE)
    return frozenset(chars)


class PrintableText(Text):
    """``gymnasium.spaces.Text`` over :func:`printable_charset`, with a readable ``repr``.

    The plain ``repr`` would list all ~145,000 characters (and flood any error message that prints
    the space); equality and membership are exactly ``Text``'s.
    """

    def __repr__(self) -> str:
        return f"PrintableText({self.min_length}, {self.max_length}, charset=<{len(self.character_set)} printable chars>)"


@functools.cache
def _prototype() -> PrintableText:
    # Indexing the charset costs ~0.5 s; it is done once per process and shared by every length bound.
    return PrintableText(max_length=1, min_length=0, charset=printable_charset())


def text_space(max_length: int, min_length: int = 0) -> PrintableText:
    """A new ``Text`` space over the printable charset with the given length bounds.

    Every call returns a *fresh* space with its own random generator, so that seeding or sampling one
    env's space never moves another env's. An env builds its spaces once and hands back the same
    object for every agent (PettingZoo wants ``observation_space(a) is observation_space(a)``; tianshou
    wants the spaces of all agents to be equal). The charset tables, which cost ~0.5 s to build, are
    read-only and shared by all spaces.
    """
    if not 0 <= min_length <= max_length:
        raise ValueError(f"need 0 <= min_length <= max_length, got {min_length}, {max_length}")
    space = copy.copy(_prototype())  # shares the (read-only) charset tables
    space.min_length, space.max_length = int(min_length), int(max_length)
    space._np_random = None  # each space seeds its own generator
    return space


def sanitize(text: str) -> str:
    """``text`` with characters outside :func:`printable_charset` replaced by U+FFFD."""
    charset = printable_charset()
    if all(c in charset for c in text):
        return text
    return "".join(c if c in charset else _REPLACEMENT for c in text)


def to_observation(text: str, max_length: int) -> TextObservation:
    """Make ``text`` a member of ``text_space(max_length)``.

    Characters outside the charset become U+FFFD; text longer than ``max_length`` keeps its head
    and tail around a marker, because the problem statement is at the start and the question the
    agent must answer is usually at the end.
    """
    text = sanitize(text)
    if len(text) > max_length:
        marker = "\n[...]\n"
        keep = max(max_length - len(marker), 0)
        head = keep // 2
        text = text[:head] + marker[: max_length - keep] + text[len(text) - (keep - head) :] if keep else text[:max_length]
    return TextObservation(text)
