"""The one vocabulary of lungapp models: classes, tasks, output and input kinds, pooling
rules.

Every module that names a class, a task or a pooling rule imports it from here (the model
card, the training engine, the label reader), so a spelling exists once. Deliberately
light: the standard library only, so the command line's ``--help`` can read it.
"""

from __future__ import annotations

import re

NORMAL = "Normal"
CAS = "CAS"  # continuous adventitious sounds: wheeze, rhonchi, stridor
DAS = "DAS"  # discontinuous adventitious sounds: crackles
BOTH = "CAS & DAS"
ABNORMAL = "Abnormal"
"""Binary-only class / label: adventitious sounds of unknown kind."""

FOUR_CLASSES = (NORMAL, CAS, DAS, BOTH)
"""The ``4class`` task's recording classes, normal first."""
BINARY_CLASSES = (NORMAL, ABNORMAL)
"""The ``binary`` task's recording classes, normal first."""

TASKS = ("binary", "4class")
_CLASSES_OF_TASK = {"binary": BINARY_CLASSES, "4class": FOUR_CLASSES}

OUTPUT_KINDS = ("softmax", "sigmoid")
"""What a model's output units are (the card's ``output_kind``): one distribution over the
classes, or independent flags."""
FLAG_OUTPUTS = {"4class": (CAS, DAS), "binary": ("abnormal",)}
"""The sigmoid flags a task's flag model outputs (the card's ``outputs``)."""
INPUT_KINDS = ("audio", "image")

POOLING_RULE = re.compile(r"^(mean|max|topk:[1-9][0-9]*|quantile:0\.[0-9]*[1-9])$")
"""A valid window -> recording pooling rule: ``mean``, ``max``, ``topk:K`` (mean of the K
largest) or ``quantile:Q`` (0 < Q < 1)."""
POOLINGS = ("mean", "max", "topk:2", "topk:3")
"""Pooling rules training scores side by side on out-of-fold predictions."""
CLASS_POOLINGS = ("quantile:0.75", "quantile:0.9", "topk:3")
"""Candidate ways to pool [CAS, DAS] window flags when naming an abnormal recording's class
(the abnormal probability keeps the card's pooling): a sound type present in a quarter of a
recording's windows has a low mean flag but a high upper quartile. Training chooses among
them on out-of-fold predictions."""


def classes_for(task: str) -> tuple[str, ...]:
    """The recording classes of ``task`` (one of :data:`TASKS`), normal first.

    Raises:
        ValueError: unknown task.
    """
    try:
        return _CLASSES_OF_TASK[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}") from None


def is_pooling_rule(rule) -> bool:
    """Whether ``rule`` is a valid pooling rule (see :data:`POOLING_RULE`)."""
    return isinstance(rule, str) and bool(POOLING_RULE.match(rule))
