"""The store under real processes: two writers at once, and a writer killed mid-transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lungapp.store import Store

ROOT = Path(__file__).resolve().parents[3]
RECORDINGS_PER_VISIT = 5

# A writer: N patients, each one transaction holding the patient, a visit, its recordings,
# a result and a label each. With PAUSE it announces "mid" halfway through a transaction
# and sleeps there, to be killed.
WRITER = r"""
import sys, time
from lungapp.store import ModelId, Store
db, tag, n, pause, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", float(sys.argv[5])
pred = {"probabilities": {"Normal": 0.5}, "abnormal_probability": 0.5, "decision": "normal",
        "label": "Normal", "quality": None, "windows": []}
with Store(db) as s:
    for i in range(n):
        with s.transaction():
            v = s.add_visit(s.add_patient(f"{tag}-{i}"))
            for k in range(RECORDINGS):
                uid = s.add_recording(v, f"/nowhere/{tag}-{i}-{k}.wav", site="Trachea")
                s.add_result(uid, pred, ModelId("m", "1", "h"))
                if pause and i == n - 1 and k == 2:
                    print("mid", flush=True)
                    time.sleep(60)
                s.confirm_label(uid, "Normal", tag)
        print("done", i, flush=True)
        time.sleep(gap)
""".replace("RECORDINGS", str(RECORDINGS_PER_VISIT))


def start_writer(db: Path, tag: str, n: int, pause: bool = False, gap_s: float = 0.0) -> subprocess.Popen:
    """The WRITER script in a new process; ``gap_s``: a pause between two transactions."""
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), tag, str(n), "1" if pause else "0", str(gap_s)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def assert_whole(store: Store) -> None:
    """No half-written patient: every patient has one visit with all its recordings, each
    with one result and one label; no orphan rows."""
    assert store.integrity() == "ok"
    assert store.query("PRAGMA foreign_key_check") == []
    per_visit = store.query("SELECT v.id, COUNT(r.id) FROM visits v LEFT JOIN recordings r ON r.visit_id = v.id "
                            "GROUP BY v.id")
    assert all(n == RECORDINGS_PER_VISIT for _, n in per_visit)
    n_patients = len(store.find_patients())
    assert len(per_visit) == n_patients
    for table in ("recordings", "results", "labels"):
        assert store.query(f"SELECT COUNT(*) FROM {table}")[0][0] == n_patients * RECORDINGS_PER_VISIT


def test_two_processes_writing_at_once_lose_nothing_and_corrupt_nothing(tmp_path):
    db = tmp_path / "store.sqlite3"
    Store(db).close()
    writers = [start_writer(db, tag, 60, gap_s=0.01) for tag in ("A", "B")]
    for w in writers:
        out, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
        assert out.splitlines()[-1] == "done 59"
    with Store(db) as s:
        assert_whole(s)
        tags = [r[0].split("-")[0] for r in s.query("SELECT identifier FROM patients ORDER BY id")]
        assert len(tags) == 120 and set(tags) == {"A", "B"}
        # the two really wrote at the same time: their transactions interleave
        assert sum(a != b for a, b in zip(tags, tags[1:])) >= 4


def test_a_writer_killed_in_the_middle_of_a_transaction_leaves_the_store_consistent(tmp_path):
    db = tmp_path / "store.sqlite3"
    writer = start_writer(db, "K", 4, pause=True)
    try:
        lines = []
        while (line := writer.stdout.readline()) and line.strip() != "mid":
            lines.append(line.strip())
        assert line.strip() == "mid", writer.stderr.read()
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert lines == ["done 0", "done 1", "done 2"]
    with Store(db) as s:  # the killed transaction (patient K-3) is gone entirely
        assert_whole(s)
        assert [p["identifier"] for p in s.find_patients()] == ["K-0", "K-1", "K-2"]
        s.add_patient("after")  # and the store takes writes again


@pytest.mark.slow  # the writer runs for about 5 s
def test_a_backup_taken_while_another_process_writes_is_consistent(tmp_path):
    from lungapp.store.manage import backup

    db = tmp_path / "store.sqlite3"
    Store(db).close()
    writer = start_writer(db, "W", 100, gap_s=0.05)  # writes for 5 s or more
    try:
        assert writer.stdout.readline().startswith("done")  # it is writing now
        with Store(db) as s:
            copy = backup(s, tmp_path / "backup.sqlite3")
        assert writer.poll() is None, "the writer finished before the backup: nothing was tested"
    finally:
        writer.communicate(timeout=240)
    assert writer.returncode == 0
    with Store(copy) as b:
        assert_whole(b)
        n = len(b.find_patients())
    with Store(db) as s:
        assert 0 < n < len(s.find_patients()) == 100
