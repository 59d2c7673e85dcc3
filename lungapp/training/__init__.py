"""Training: recipes, datasets, architectures, fitting, evaluation, export.

TensorFlow is imported only by the modules that fit models; :func:`unavailable_reason`
says, without importing it, whether this installation can train at all (the
``lungapp-viewer`` bundle leaves TensorFlow and Keras out).
"""

from __future__ import annotations

import importlib.util


def _tensorflow_present() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def unavailable_reason() -> str | None:
    """None when training can run here, else one line saying why not and what to do."""
    if _tensorflow_present():
        return None
    return ("training needs TensorFlow, which this installation leaves out (the lungapp-viewer "
            "build is for analysing, recording and labelling); install the full lungapp package "
            "to train")
