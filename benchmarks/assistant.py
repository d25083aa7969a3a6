"""Assistant training throughput and greedy latency against a plain PyTorch port of the seed.

    KERAS_BACKEND=jax python benchmarks/assistant.py [--steps 20] [--warmup 3] [--batch 32]
        [--vocab-size 600] [--quality [--no-speed] [--epochs 60] [--tokenizers subword,word]]

Speed: both models have the seed's sizes (embedding 128, hidden 256, 2-layer BiLSTM
encoder, 2-layer attention LSTM decoder, no copy attention), the vocabulary of the
bundled training data at `--vocab-size` subword tokens, and
train on the same random `(batch, max_length)` token batches (no padding) with
Adam (lr 0.002), cross-entropy ignoring `<PAD>` and gradient clipping 1.0.

* ours: `build_assistant_model` compiled by `keras_trainer.core.training.fit.compile_model`
  (the shared fit's optimizer and clipping) and stepped with `train_on_batch`;
  greedy decoding is the compiled `GreedyGenerator` (one backend while loop).
* torch port: the seed's `GenshinAssistant` modules with a forward written the
  usual way (cuDNN/ATen `nn.LSTM` encoder; the decoder one `nn.LSTM` step per
  token in a Python loop, attention on the top layer's state), a plain training
  loop, and a Python greedy loop. It runs on CUDA when available.

Tokens/s counts response tokens (batch * max_length per step), timed after
`--warmup` steps (compilation excluded). Greedy latency is for one query and 64
generated tokens (EOS is never chosen, so both run all 64 steps), median of
`--repeats` runs after a warm-up.

Quality (`--quality`): `train_assistant` with the shipped defaults (early stopping
on a random tenth, best weights kept) at the given sizes, with and without copy
attention, subword and word tokens, on the bundled training split; greedy answers
to the held-out split (entities that never occur in training) scored by exact
match and token F1 (`keras_trainer.assistant.evaluation`). "val EM" is the exact
match on the random tenth held out for early stopping.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from seed_assistant_torch import GenshinAssistant  # noqa: E402  (same folder)
from torch import nn  # noqa: E402

from keras_trainer.assistant.config import AssistantConfig, assistant_training  # noqa: E402
from keras_trainer.assistant.data import load_pairs  # noqa: E402
from keras_trainer.assistant.generation import GreedyGenerator  # noqa: E402
from keras_trainer.assistant.model import assistant_loss, build_assistant_model  # noqa: E402
from keras_trainer.assistant.tokenizer import EOS_ID, PAD_ID, SOS_ID, AssistantTokenizer  # noqa: E402
from keras_trainer.core.training.fit import compile_model  # noqa: E402


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_torch(vocab, args, q, r_in, r_out):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = GenshinAssistant(vocab, args.embedding_dim, args.hidden_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD_ID)
    q_t, r_in_t, r_out_t = (
        torch.as_tensor(a, dtype=torch.long, device=device) for a in (q, r_in, r_out)
    )

    def step():
        model.train()
        logits = model(q_t, r_in_t)
        loss = criterion(logits.reshape(-1, vocab), r_out_t.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    _sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync()
    rate = args.steps * r_out.size / (time.perf_counter() - start)
    model.eval()
    one = q_t[:1]
    model.greedy(one, args.generate)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.greedy(one, args.generate)
        _sync()
        times.append(time.perf_counter() - start)
    return rate, statistics.median(times), device


class NoEosGreedy(GreedyGenerator):
    """The compiled greedy loop with `<EOS>` banned, so every run makes all tokens."""

    banned_tokens = (PAD_ID, SOS_ID, EOS_ID)


def bench_ours(vocab, args, q, r_in, r_out):
    config = AssistantConfig(
        embedding_dim=args.embedding_dim,
        hidden_dim=args.hidden_dim,
        max_length=args.max_length,
        copy_attention=False,
        training=assistant_training(learning_rate=0.002, batch_size=args.batch),
    )
    model = build_assistant_model(config, vocab)
    compile_model(model, config.to_training_config(), loss=assistant_loss())
    x = {"query": q, "response_in": r_in}
    for _ in range(args.warmup):
        float(model.train_on_batch(x, r_out))
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = model.train_on_batch(x, r_out)
    float(loss)
    rate = args.steps * r_out.size / (time.perf_counter() - start)
    generator = NoEosGreedy(model, args.generate)
    one = q[:1]
    tokens = keras.ops.convert_to_numpy(generator.predict_on_batch(one))
    assert int((tokens != PAD_ID).sum()) == args.generate
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(generator.predict_on_batch(one))
        times.append(time.perf_counter() - start)
    return rate, statistics.median(times)


def bench_quality(args):
    """Held-out exact match and token F1 with and without copy attention, word vs subword."""
    from keras_trainer.assistant.assistant import train_assistant
    from keras_trainer.assistant.evaluation import evaluate_assistant

    train, heldout = load_pairs(), load_pairs(split="heldout")
    print(
        f"quality: {len(train)} training pairs, {len(heldout)} held-out pairs about entities "
        f"never seen in training; greedy answers, exact match = byte-for-byte equal"
    )
    print(
        f"{'tokens':8} {'copy':5} {'vocab':>6} {'epochs':>6} {'val EM':>7} {'held-out EM':>11} "
        f"{'token F1':>8} {'train s':>8}"
    )
    for kind in args.tokenizers.split(","):
        for copy in (True, False):
            config = dict(
                embedding_dim=args.embedding_dim,
                hidden_dim=args.hidden_dim,
                max_length=args.max_length,
                tokenizer=kind,
                copy_attention=copy,
                vocab_size=args.vocab_size if kind == "subword" else args.word_vocab_size,
                training={"epochs": args.epochs, "seed": args.seed},
            )
            start = time.perf_counter()
            assistant, history = train_assistant(config, train)
            seconds = time.perf_counter() - start
            scores = evaluate_assistant(assistant, heldout)
            print(
                f"{kind:8} {'on' if copy else 'off':5} {assistant.tokenizer.vocab_size:6d} "
                f"{len(history.epochs):6d} {assistant.evaluation['exact_match']:7.3f} "
                f"{scores['exact_match']:11.3f} {scores['token_f1']:8.3f} {seconds:8.1f}",
                flush=True,
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--generate", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=600,
        help="subword vocabulary size: of the speed model and the quality runs",
    )
    parser.add_argument(
        "--word-vocab-size", type=int, default=2000, help="word vocabulary size of the quality runs"
    )
    parser.add_argument("--speed", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quality", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--tokenizers", default="subword,word")
    parser.add_argument("--epochs", type=int, default=60, help="quality runs: most epochs")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    if args.speed:
        pairs = load_pairs()
        vocab = AssistantTokenizer.build(
            [t for p in pairs for t in p], args.max_length, args.vocab_size
        ).vocab_size
        rng = np.random.default_rng(0)
        shape = (args.batch, args.max_length)
        q = rng.integers(4, vocab, shape).astype("int32")
        r_out = rng.integers(4, vocab, shape).astype("int32")
        r_in = np.concatenate([np.full((args.batch, 1), SOS_ID, "int32"), r_out[:, :-1]], 1)

        ours_rate, ours_latency = bench_ours(vocab, args, q, r_in, r_out)
        torch_rate, torch_latency, device = bench_torch(vocab, args, q, r_in, r_out)
        print(
            f"backend={keras.backend.backend()} torch_device={device} vocab={vocab} "
            f"batch={args.batch} length={args.max_length} emb={args.embedding_dim} "
            f"hidden={args.hidden_dim} steps={args.steps}"
        )
        print(
            f"train tokens/s   ours {ours_rate:10.0f}   torch port {torch_rate:10.0f}   "
            f"ratio {ours_rate / torch_rate:.2f}"
        )
        print(
            f"greedy {args.generate} tok   ours {ours_latency * 1e3:8.1f} ms   torch port "
            f"{torch_latency * 1e3:8.1f} ms   latency ratio {ours_latency / torch_latency:.2f}",
            flush=True,
        )
    if args.quality:
        bench_quality(args)


if __name__ == "__main__":
    main()
