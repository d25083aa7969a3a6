"""Distributed tuning: a chief and two local workers on KerasTuner's protocol.

One search is driven through every failure a long search meets: a worker is
SIGKILLed in the middle of a trial (it is started again and the trial retried),
then the chief itself is SIGKILLed (its workers go with it) and started again
on the same directory, which resumes the search. At the end every trial of the
budget is accounted for and completed, and the best model is saved.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keras_trainer.errors import ConfigError
from keras_trainer.tuning.distributed import (
    ORACLE_IP,
    ORACLE_PORT,
    TUNER_ID,
    DistributedSearch,
    worker_role,
)
from tests.conftest import ROOT, subprocess_env

CONFIG = f"{ROOT}/config/tabular_tuning_config.json"
TRIALS = 4


def _chief(tmp_path, output):
    command = [
        sys.executable,
        "-m",
        "keras_trainer",
        "tune",
        CONFIG,
        "--data",
        "builtin:breast_cancer",
        "--directory",
        str(tmp_path / "runs"),
        "--symbol",
        "bc",
        "--max-trials",
        str(TRIALS),
        "--max-epochs",
        "3",
        "--workers",
        "2",
        "--output",
        str(output),
    ]
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env=subprocess_env(OMP_NUM_THREADS=1),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None


def _wait_for(condition, chief, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        assert chief.poll() is None, chief.stdout.read()[-3000:]
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_search_survives_a_killed_worker_and_a_restarted_chief(tmp_path):
    project = tmp_path / "runs" / "bc"
    output = tmp_path / "best.keras"

    chief = _chief(tmp_path, output)
    try:
        # Kill worker tuner0 while the oracle has a trial running for it.
        def tuner0_mid_trial():
            status, oracle = (
                _read(project / "workers" / "workers.json"),
                _read(project / "oracle.json"),
            )
            if status and oracle and "tuner0" in oracle.get("ongoing_trials", {}):
                return status["workers"][0]["pid"], oracle["ongoing_trials"]["tuner0"]
            return None

        pid, trial_id = _wait_for(tuner0_mid_trial, chief)
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: (_read(project / "workers" / "workers.json") or {}).get("events"), chief)

        # Then kill the chief once at least one trial has ended; its workers end with it.
        _wait_for(lambda: (_read(project / "oracle.json") or {}).get("end_order"), chief)
        worker_pids = [w["pid"] for w in _read(project / "workers" / "workers.json")["workers"]]
        chief.kill()
        first_log = chief.communicate(timeout=60)[0]
        deadline = time.time() + 60
        while any(_running(p) for p in worker_pids) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_running(p) for p in worker_pids), "workers outlived their chief"
    finally:
        if chief.poll() is None:
            chief.kill()

    status = _read(project / "workers" / "workers.json")
    assert status["events"][0].startswith(f"worker tuner0 died (signal 9) during trial {trial_id}")
    assert f"trial {trial_id} is retried" in status["events"][0]
    finished_before_restart = _read(project / "oracle.json")["end_order"]
    assert finished_before_restart and not output.exists(), first_log[-2000:]

    restarted = _chief(tmp_path, output)
    out = restarted.communicate(timeout=600)[0]
    assert restarted.returncode == 0, out[-3000:]
    rows = [line for line in out.splitlines() if line.startswith("| ") and "| COMPLETED |" in line]
    assert len(rows) == TRIALS, out[-3000:]
    oracle = _read(project / "oracle.json")
    assert (
        sorted(oracle["end_order"]) == sorted(oracle["start_order"])
        and len(oracle["end_order"]) == TRIALS
    )
    assert not oracle["ongoing_trials"]
    # Trials that ended before the chief died were not run again.
    assert oracle["end_order"][: len(finished_before_restart)] == finished_before_restart
    assert f"saved model: {output}" in out and output.exists()


def _running(pid):
    """Whether `pid` is a live process (a reaped or zombie one is not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


def test_worker_role_reads_kerastuner_environment(monkeypatch):
    monkeypatch.delenv(ORACLE_IP, raising=False)
    assert worker_role() is None
    monkeypatch.setenv(ORACLE_IP, "127.0.0.1")
    monkeypatch.setenv(ORACLE_PORT, "8000")
    monkeypatch.setenv(TUNER_ID, "tuner3")
    assert worker_role() == "tuner3"
    monkeypatch.setenv(TUNER_ID, "chief")
    assert worker_role() is None
    monkeypatch.delenv(ORACLE_PORT)
    with pytest.raises(ConfigError, match="KERASTUNER_ORACLE_PORT"):
        worker_role()


def test_remote_only_chief_needs_a_fixed_port(tmp_path):
    with pytest.raises(ConfigError, match="fixed port"):
        DistributedSearch(oracle=None, workers=0, command=[], directory=str(tmp_path))
