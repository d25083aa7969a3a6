"""Runs `keras-trainer ARGS...` and kills itself with SIGKILL at its N-th atomic write.

    python -m tests.reliability.kill_driver N LOG ARGS...

Every rename that completes an atomic write (`os.replace`) is appended to LOG
(the target's file name, one per line); the N-th is killed just before its
rename, after its temporary file is complete, as a kill -9 at that instant
would. N = 0 never kills. The resume-time repair of `history.csv` is not
counted: it happens only in resumed runs, so counting it would shift the
numbering between runs. Nor are the writes into the run folder
(`runs/<name>/version_N`): each resumed run records itself in a new folder,
with what that run saw, so their order differs between runs. With
`KILL_DRIVER_SCOPE=run_folder` only those are counted (and killed at).
"""

import os
import signal
import sys


def main() -> int:
    kill_at, log, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    run_folder_scope = os.environ.get("KILL_DRIVER_SCOPE") == "run_folder"
    real_replace = os.replace
    count = 0

    def replace(source, target, *args, **kwargs):
        nonlocal count
        target = os.fspath(target)
        name = os.path.basename(target)
        in_run_folder = "runs" in os.path.relpath(target).split(os.sep)
        if name != "history.csv" and in_run_folder == run_folder_scope:
            count += 1
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(name + "\n")
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(source, target, *args, **kwargs)

    os.replace = replace
    from keras_trainer.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
