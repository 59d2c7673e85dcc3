"""The allocator tuning that lets predictions reuse their working memory (glibc)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from lungapp.inference import alloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Page faults per prediction of a 15-s recording with the bundled model, after warm-up.
_FAULTS = r"""
import json, resource
import numpy as np
from lungapp.inference.alloc import keep_freed_memory
from lungapp.inference.predictor import Predictor
p = Predictor.load(None, runtime="numpy")
x = (0.1 * np.random.default_rng(0).standard_normal(15 * 8000)).astype(np.float32)
for _ in range(3):
    first = p.predict_audio(x, 8000)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    again = p.predict_audio(x, 8000)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5
print(json.dumps({"state": keep_freed_memory(), "faults": faults,
                  "same": first.probabilities == again.probabilities}))
"""


def _faults(**env) -> dict:
    full = {k: v for k, v in os.environ.items() if k not in ("LUNGAPP_MALLOC_TUNE", "GLIBC_TUNABLES")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, env=full,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc only")
def test_predictions_stop_faulting_in_fresh_pages():
    tuned = _faults()
    untuned = _faults(LUNGAPP_MALLOC_TUNE="0")
    assert tuned["state"] == "tuned" and untuned["state"] == "off"
    assert tuned["same"] and untuned["same"]
    # Untuned, glibc maps and unmaps the big working arrays each time: thousands of page
    # faults per prediction (about 4900 measured); tuned, the memory is reused.
    assert untuned["faults"] > 1000, untuned
    assert tuned["faults"] < untuned["faults"] / 20, (tuned, untuned)


def test_the_user_can_turn_it_off_or_keep_their_own_settings(monkeypatch):
    monkeypatch.setenv("LUNGAPP_MALLOC_TUNE", "0")
    assert alloc._tune() == "off"
    monkeypatch.delenv("LUNGAPP_MALLOC_TUNE")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000")
    assert alloc._tune() == "user"
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert alloc._tune() == "user"


def test_tuning_is_done_once_and_reported(monkeypatch):
    calls = []
    monkeypatch.setattr(alloc, "_state", None)
    monkeypatch.setattr(alloc, "_tune", lambda: calls.append(1) or "tuned")
    assert alloc.keep_freed_memory() == "tuned"
    assert alloc.keep_freed_memory() == "tuned"
    assert calls == [1]
