"""Distributed tuning on KerasTuner's own chief/worker protocol.

KerasTuner runs a search over several processes when each is started with
`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`: the
chief holds the oracle and serves it over gRPC; each worker asks it for a trial,
trains it, and reports the result. keras_trainer keeps that protocol and adds
what a user would otherwise script by hand:

* `DistributedSearch` is the chief. It serves the in-process oracle with
  KerasTuner's `OracleServicer` (on a free port unless one is given), starts N
  local workers (one per GPU, pinned with `CUDA_VISIBLE_DEVICES`, when there are
  GPUs), and supervises them. A worker that dies mid-trial is started again with
  the same tuner id; KerasTuner then hands it the same trial, so the trial is
  retried, and the log says so. After `max_restarts` deaths the worker's trial is
  ended as FAILED, so the search still finishes. Workers started by hand on other
  machines (same command, the three environment variables) join the same chief.
* `worker_role()` tells a process started by a chief that it is a worker.

The oracle saves its state in the search directory after every trial, so a
chief started again on the same directory resumes the search; trials that were
running when it died are handed to the first worker that asks with the same id.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Optional

from keras_trainer.core.saving.atomic import write_json_atomic
from keras_trainer.errors import ConfigError, TuningError

logger = logging.getLogger("keras_trainer.tuning")

TUNER_ID = "KERASTUNER_TUNER_ID"
ORACLE_IP = "KERASTUNER_ORACLE_IP"
ORACLE_PORT = "KERASTUNER_ORACLE_PORT"


def worker_role() -> Optional[str]:
    """This process's tuner id when it runs as a KerasTuner worker, else `None`."""
    if ORACLE_IP not in os.environ:
        return None
    missing = [name for name in (ORACLE_PORT, TUNER_ID) if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"{ORACLE_IP} is set, so this process is a tuning worker, but "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not"
        )
    tuner_id = os.environ[TUNER_ID]
    if "chief" in tuner_id:
        return None
    return tuner_id


def local_gpu_count() -> int:
    """GPUs visible to this process, counted without starting a deep-learning backend.

    Starting JAX or TensorFlow here would reserve GPU memory in the chief that the
    workers need, so this asks `nvidia-smi` (and honours `CUDA_VISIBLE_DEVICES`).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([device for device in visible.split(",") if device.strip() not in ("", "-1")])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


CHIEF_PID = "KERAS_TRAINER_TUNING_CHIEF_PID"


def end_with_chief() -> None:
    """In a local worker: end this process when its chief dies, so no orphan holds a GPU.

    The chief names itself in `KERAS_TRAINER_TUNING_CHIEF_PID`; a chief started
    again on the same directory then hands the orphaned trials to new workers
    with the same tuner ids. (Set here, in the worker, rather than in a
    `preexec_fn`: forking a process that runs a gRPC server and then running
    Python in the child aborts in gRPC's fork handlers.)
    """
    chief = os.environ.get(CHIEF_PID)
    if not chief or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(chief):
        # The chief died before the line above took effect.
        raise SystemExit(f"tuning worker: chief {chief} is gone")


@dataclass
class WorkerState:
    """One local worker process and what happened to it."""

    tuner_id: str
    gpu: Optional[str]
    log_path: str
    process: Optional[subprocess.Popen] = None
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    done: bool = False


class DistributedSearch:
    """Serves a KerasTuner oracle to local (and remote) workers until the search ends.

    Args:
        oracle: The chief's KerasTuner oracle (the tuner's `oracle`).
        workers: How many local workers to start (0: only remote ones join).
        command: The worker command line (the same program the chief runs); each
            worker gets the KerasTuner environment on top of this process's.
        directory: Where worker logs and `workers.json` go.
        host: Address the oracle listens on (`0.0.0.0` lets other machines join).
        port: Port of the oracle; 0 picks a free one.
        max_restarts: How often one worker may die before its trial is failed.
        poll_seconds: How often the chief looks at its workers.

    Example:

    >>> search = DistributedSearch(tuner.oracle, 2, [sys.executable, "train.py"], "runs/search")
    >>> search.run()  # returns when every trial has ended
    """

    def __init__(
        self,
        oracle,
        workers: int,
        command: Sequence[str],
        directory: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_restarts: int = 2,
        poll_seconds: float = 0.5,
    ):
        if workers < 0:
            raise ConfigError(f"workers: must be 0 or more, got {workers}")
        if workers == 0 and port == 0:
            raise ConfigError(
                "workers=0 serves only remote workers, which need a fixed port: pass port=..."
            )
        self.oracle = oracle
        self.command = list(command)
        self.directory = directory
        self.host = host
        self.port = port
        self.max_restarts = max_restarts
        self.poll_seconds = poll_seconds
        os.makedirs(directory, exist_ok=True)
        gpus = local_gpu_count()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpu_ids = (
            [g.strip() for g in visible.split(",")] if visible else [str(i) for i in range(gpus)]
        )
        self.workers = [
            WorkerState(
                tuner_id=f"tuner{index}",
                gpu=gpu_ids[index % len(gpu_ids)] if gpu_ids else None,
                log_path=os.path.join(directory, f"tuner{index}.log"),
            )
            for index in range(workers)
        ]
        self.events: list[str] = []
        self._server = None
        self._servicer = None

    # ----------------------------------------------------------------- server
    def _serve(self) -> int:
        import grpc
        from keras_tuner.src import protos
        from keras_tuner.src.distribute.oracle_chief import OracleServicer

        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max(4, len(self.workers) + 2))
        )
        self._servicer = OracleServicer(self.oracle)
        protos.get_service_grpc().add_OracleServicer_to_server(self._servicer, self._server)
        port = self._server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise TuningError(f"cannot listen on {self.host}:{self.port} for tuning workers")
        self._server.start()
        self.port = port
        return port

    # ---------------------------------------------------------------- workers
    def _environment(self, worker: WorkerState) -> dict:
        env = dict(os.environ)
        env.update(
            {
                TUNER_ID: worker.tuner_id,
                ORACLE_IP: self._connect_host(),
                ORACLE_PORT: str(self.port),
                CHIEF_PID: str(os.getpid()),
            }
        )
        if worker.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = worker.gpu
            # Several processes may share a GPU: allocate as needed, not 75 % up front.
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return env

    def _connect_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    def _start(self, worker: WorkerState) -> None:
        log = open(worker.log_path, "a", encoding="utf-8")  # noqa: SIM115  closed with the process
        log.write(f"--- {worker.tuner_id} started (attempt {worker.restarts + 1})\n")
        log.flush()
        worker.process = subprocess.Popen(
            self.command,
            env=self._environment(worker),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def _write_status(self) -> None:
        write_json_atomic(
            os.path.join(self.directory, "workers.json"),
            {
                "oracle": f"{self._connect_host()}:{self.port}",
                "workers": [
                    {
                        "tuner_id": w.tuner_id,
                        "pid": w.process.pid if w.process else None,
                        "gpu": w.gpu,
                        "restarts": w.restarts,
                        "exit_codes": w.exit_codes,
                        "done": w.done,
                        "log": w.log_path,
                    }
                    for w in self.workers
                ],
                "events": self.events,
            },
        )

    def _say(self, message: str) -> None:
        self.events.append(message)
        logger.warning(message)

    def _ongoing_trial_id(self, tuner_id: str) -> Optional[str]:
        trial = self.oracle.ongoing_trials.get(tuner_id)
        return None if trial is None else trial.trial_id

    def _give_up(self, worker: WorkerState) -> None:
        """Ends the dead worker's trial as FAILED so that the search can finish."""
        from keras_tuner.src.engine import trial as trial_module
        from keras_tuner.src.engine.oracle import LOCKS

        trial = self.oracle.ongoing_trials.get(worker.tuner_id)
        if trial is not None:
            trial.status = trial_module.TrialStatus.FAILED
            trial.message = (
                f"worker {worker.tuner_id} died {worker.restarts + 1} times running this trial "
                f"(exit codes {worker.exit_codes}); see {worker.log_path}"
            )
            self.oracle.end_trial(trial)
        with LOCKS[self.oracle]:
            self.oracle.tuner_ids.discard(worker.tuner_id)
        worker.done = True

    def _check(self, worker: WorkerState) -> None:
        code = worker.process.poll()
        if code is None:
            return
        worker.exit_codes.append(code)
        if code == 0:
            worker.done = True
            return
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        trial_id = self._ongoing_trial_id(worker.tuner_id)
        during = f" during trial {trial_id}" if trial_id is not None else ""
        if worker.restarts < self.max_restarts:
            worker.restarts += 1
            self._say(
                f"worker {worker.tuner_id} died ({how}){during}; started it again"
                + (f", trial {trial_id} is retried" if trial_id is not None else "")
            )
            self._start(worker)
        else:
            self._say(
                f"worker {worker.tuner_id} died ({how}){during} after {worker.restarts} restarts; "
                + (
                    f"trial {trial_id} is marked FAILED"
                    if trial_id is not None
                    else "not restarted"
                )
            )
            self._give_up(worker)

    def _finished(self) -> bool:
        if any(not worker.done for worker in self.workers):
            return False
        # Remote workers still holding trials, or still asking for them, keep it open.
        if self.oracle.ongoing_trials or self.oracle.tuner_ids:
            return False
        # With only remote workers, the search ends once the oracle has said stop.
        return bool(self.workers) or self._servicer.stop_triggered

    def _resume_oracle(self) -> None:
        """Continues the search a killed chief left in the oracle's directory."""
        oracle = self.oracle
        oracle_file = os.path.join(oracle._project_dir, "oracle.json")
        # KerasTuner reloads only when the tuner's own file exists, which a chief
        # killed before any worker saved its tuner lacks; the oracle file decides.
        if not oracle.trials and os.path.isfile(oracle_file):
            oracle.reload()
            logger.info("resuming the search in %s", oracle._project_dir)
        # KerasTuner saves the oracle before it forgets a finished trial, so a killed
        # chief's file can list a finished trial as running, which a reload sends for
        # retry; a trial in `end_order` has ended for good (retries never get there).
        ended = set(oracle.end_order)
        oracle._retry_queue = [t for t in oracle._retry_queue if t not in ended]
        for tuner_id, trial in list(oracle.ongoing_trials.items()):
            if trial.trial_id in ended:
                del oracle.ongoing_trials[tuner_id]

    def run(self) -> list[str]:
        """Serves the oracle and runs the workers until the search ends; returns the events."""
        self._resume_oracle()
        port = self._serve()
        logger.info(
            "tuning oracle at %s:%d; starting %d local workers", self.host, port, len(self.workers)
        )
        try:
            for worker in self.workers:
                self._start(worker)
            self._write_status()
            while not self._finished():
                time.sleep(self.poll_seconds)
                for worker in self.workers:
                    if not worker.done:
                        self._check(worker)
                self._write_status()
        except BaseException:
            for worker in self.workers:
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.send_signal(signal.SIGTERM)
            raise
        finally:
            self._server.stop(grace=1)
        # KerasTuner saves the oracle before it forgets a finished trial; save the
        # final state, or a chief run again on this directory would redo that trial.
        self.oracle.save()
        return self.events


def read_status(directory: str) -> dict:
    """The chief's `workers.json`: oracle address, worker pids, restarts, events."""
    with open(os.path.join(directory, "workers.json"), encoding="utf-8") as handle:
        return json.load(handle)
