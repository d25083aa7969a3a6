"""Benchmark: the README's assistant command on a CPU, timed, and its answers scored.

    PYTHONPATH=. python benchmarks/assistant_readme.py [--budget-s 180]

Runs the README's `train config/assistant_config.json ...` line exactly as the README
prints it (read from README.md, so the two cannot drift apart) in a fresh process
under the active KERAS_BACKEND (the README's own command sets none: TensorFlow), and
reports its wall time, process start and imports included, as a ratio to the budget
(3 minutes on the 2-core CI machine). Then it answers the 104 bundled held-out
questions (entities the training split never names) with the saved model and scores
them by exact match (`keras_trainer.assistant.evaluation`, byte for byte) and token
F1, next to a simple baseline: the response of the most similar training query
(TF-IDF over words, cosine), which is what a lookup table answers.
"""

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_command() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        for line in handle:
            if re.match(r"python3 -m keras_trainer train config/assistant_config\.json", line):
                return shlex.split(line.strip())
    raise SystemExit("README.md has no `train config/assistant_config.json` line")


def retrieval_answers(train_pairs, queries) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer().fit([q for q, _ in train_pairs])
    similarity = vectorizer.transform(queries) @ vectorizer.transform([q for q, _ in train_pairs]).T
    best = similarity.toarray().argmax(axis=1)
    return [train_pairs[i][1] for i in best]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=180.0)
    args = parser.parse_args()

    command = readme_command()
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "assistant.keras")
        # The README writes models/assistant.keras; here a scratch copy, runs under a temp root.
        command = [output if part == "models/assistant.keras" else part for part in command]
        command += ["--runs-dir", os.path.join(folder, "runs")]
        command[0] = sys.executable
        env = {**os.environ, "PYTHONPATH": ROOT}
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode:
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
            return done.returncode
        epochs = len(re.findall(r"^Epoch \d+/", done.stdout, flags=re.M))

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from keras_trainer.assistant import load_assistant
        from keras_trainer.assistant.data import load_pairs
        from keras_trainer.assistant.evaluation import evaluate_assistant, exact_match, token_f1

        assistant = load_assistant(output)
        held_out = load_pairs(split="heldout")
        scores = evaluate_assistant(assistant, held_out)
        lookup = retrieval_answers(load_pairs(None), [q for q, _ in held_out])
        references = [r for _, r in held_out]
        lookup_em, lookup_f1 = exact_match(lookup, references), token_f1(lookup, references)

    import keras

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"KERAS_BACKEND={keras.backend.backend()}, {time.strftime('%Y-%m-%d')}"
    )
    print(f"command: {shlex.join(readme_command())}")
    print(
        f"wall {wall:.1f} s for {epochs} epochs ({wall / args.budget_s:.2f}x the "
        f"{args.budget_s:.0f} s budget)"
    )
    print(
        f"held-out {len(held_out)} questions: exact match {scores['exact_match']:.3f}, "
        f"token F1 {scores['token_f1']:.3f}"
    )
    print(
        f"lookup baseline (nearest training query): exact match {lookup_em:.3f}, "
        f"token F1 {lookup_f1:.3f}"
    )
    return 0 if wall <= args.budget_s else 1


if __name__ == "__main__":
    sys.exit(main())
