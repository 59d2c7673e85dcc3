"""The label vocabulary: record labels, the binary mapping and SPRSound / ICBHI event types.

Record labels follow SPRSound: ``Normal``, ``CAS`` (continuous adventitious sounds: wheeze,
rhonchi, stridor), ``DAS`` (discontinuous: crackles), ``CAS & DAS`` and ``Poor Quality``.
Datasets that only say normal / abnormal use the extra, binary-only label ``Abnormal``.

Every label text a user or a dataset hands us goes through :func:`normalise_label`, which
accepts the spellings people actually use (``wheezes``, ``Crackles and wheezes``, ``poor_quality``)
and refuses anything else with a :class:`ValueError` naming the text.
"""

from __future__ import annotations

import re

from lungapp.vocabulary import ABNORMAL, BOTH, CAS, DAS, FOUR_CLASSES, NORMAL

POOR = "Poor Quality"
"""A record label, but no class: unusable for training and evaluation."""

RECORD_LABELS = (NORMAL, CAS, DAS, BOTH, POOR)
ALL_LABELS = RECORD_LABELS + (ABNORMAL,)
CLASSES_4 = FOUR_CLASSES
CLASSES_2 = ("normal", "abnormal")

EVENT_TYPES = ("Normal", "Wheeze", "Rhonchi", "Stridor", "Fine Crackle", "Coarse Crackle",
               "Wheeze+Crackle")
"""SPRSound's respiratory-event types."""
ICBHI_EVENT_TYPES = ("Normal", "Crackle", "Wheeze", "Wheeze+Crackle")
"""Event types the ICBHI reader gives each respiratory cycle (from its crackle/wheeze flags)."""

_EVENT_FLAGS = {
    "Normal": (False, False),
    "Wheeze": (True, False),
    "Rhonchi": (True, False),
    "Stridor": (True, False),
    "Fine Crackle": (False, True),
    "Coarse Crackle": (False, True),
    "Crackle": (False, True),
    "Wheeze+Crackle": (True, True),
}
_EVENT_BY_KEY = {"".join(t.lower().split()): t for t in _EVENT_FLAGS}

# Keys are texts after _key(): lower case, "_" and "-" read as spaces, runs of spaces collapsed.
_SYNONYMS = {
    NORMAL: ("normal", "healthy", "no adventitious sounds"),
    CAS: ("cas", "wheeze", "wheezes", "wheezing", "rhonchi", "rhonchus", "stridor", "continuous",
          "continuous adventitious sounds"),
    DAS: ("das", "crackle", "crackles", "crackling", "fine crackle", "fine crackles",
          "coarse crackle", "coarse crackles", "discontinuous",
          "discontinuous adventitious sounds"),
    BOTH: ("both",),
    POOR: ("poor quality", "poor", "noisy", "noise", "low quality", "bad quality"),
    ABNORMAL: ("abnormal", "adventitious", "adventitious sounds"),
}
_LABEL_BY_KEY = {key: label for label, keys in _SYNONYMS.items() for key in keys}
# "CAS & DAS", "wheeze+crackle", "crackles and wheezes", "wheezes/crackles", "cas, das" ...
_JOINERS = re.compile(r"\s*(?:&|\+|/|,|\band\b)\s*")


def _key(text: str) -> str:
    """Lower-case ``text``, read ``_`` and ``-`` as spaces and collapse runs of white space."""
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def normalise_label(text: str) -> str:
    """Return the canonical record label for a label text.

    Case and surrounding white space do not matter; ``_``, ``-`` and runs of white space
    count as one space (``Poor_Quality`` = ``poor quality``). Accepted:

    - canonical labels: ``Normal``, ``CAS``, ``DAS``, ``CAS & DAS``, ``Poor Quality``, ``Abnormal``;
    - synonyms: ``healthy`` -> Normal; ``wheeze(s)``, ``rhonchi``, ``stridor``, ``continuous``
      -> CAS; ``crackle(s)``, ``fine/coarse crackle(s)``, ``discontinuous`` -> DAS; ``both``
      -> CAS & DAS; ``poor``, ``noisy``, ``low quality`` -> Poor Quality; ``abnormal``,
      ``adventitious`` -> ``Abnormal`` (binary datasets only);
    - a CAS term joined to a DAS term by ``&``, ``+``, ``/``, ``,`` or ``and`` in either order
      (``cas&das``, ``wheeze+crackle``, ``Crackles and wheezes``) -> CAS & DAS.

    Raises:
        ValueError: ``text`` is not a string or is none of the above; the message names it.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a label text: {text!r}")
    key = _key(text)
    label = _LABEL_BY_KEY.get(key)
    if label is not None:
        return label
    parts = [p for p in _JOINERS.split(key) if p]
    if len(parts) == 2 and {_LABEL_BY_KEY.get(p) for p in parts} == {CAS, DAS}:
        return BOTH
    raise ValueError(
        f"unknown label {text!r}: expected one of {', '.join(ALL_LABELS)} "
        "(or a synonym such as healthy, wheeze, crackles, wheeze+crackle, noisy)")


def binary_label(label: str) -> str | None:
    """Map a record label (any text :func:`normalise_label` accepts) to ``"normal"`` or
    ``"abnormal"``; ``None`` for Poor Quality, which is neither.

    Raises:
        ValueError: ``label`` is not a known label text.
    """
    canonical = normalise_label(label)
    if canonical == POOR:
        return None
    return "normal" if canonical == NORMAL else "abnormal"


def label_from_flags(cas: bool, das: bool) -> str:
    """Record label for the presence of continuous (``cas``) and discontinuous (``das``)
    adventitious sounds: Normal, CAS, DAS or CAS & DAS."""
    if cas and das:
        return BOTH
    if cas:
        return CAS
    return DAS if das else NORMAL


def normalise_event_type(text: str) -> str:
    """Canonical spelling of a respiratory-event type (case and white space do not matter).

    Accepts SPRSound's :data:`EVENT_TYPES` and the ICBHI reader's ``Crackle``.

    Raises:
        ValueError: unknown event type; the message names it.
    """
    if isinstance(text, str):
        canonical = _EVENT_BY_KEY.get("".join(text.lower().split()))
        if canonical is not None:
            return canonical
    raise ValueError(f"unknown event type {text!r}: expected one of "
                     f"{', '.join(EVENT_TYPES)}, Crackle")


def event_flags(type: str) -> tuple[bool, bool]:  # noqa: A002 - the contract's name
    """``(is_cas, is_das)`` for a respiratory-event type: wheeze, rhonchi and stridor are
    continuous; fine, coarse (and ICBHI's plain) crackles discontinuous; ``Wheeze+Crackle`` both;
    ``Normal`` neither.

    Raises:
        ValueError: unknown event type (see :func:`normalise_event_type`).
    """
    return _EVENT_FLAGS[normalise_event_type(type)]
