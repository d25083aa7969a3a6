"""Dynamic batching: concurrent requests gathered into one model call.

As TensorFlow Serving's and Triton's batchers do, `DynamicBatcher` queues the
checked input arrays of each request; one task takes the first waiting request,
adds those queued behind it (waiting at most `max_delay_s` for more) until
`max_batch_size` rows, runs the model once on the concatenated rows in its own
thread (off the event loop, so `/health` answers while it runs), and hands each
request its own rows of the output. Each model output row depends only on its
input row, so the answers are those of one call per request.

Requests whose inputs differ in a non-batch dimension (sequence windows of
different lengths) are never mixed: the first one that does not fit starts the
next batch. The concatenated rows are padded with copies of the last row to the
next power of two, so a compiled model (jax, XLA) traces a handful of batch
shapes instead of one per row count.

`QueryBatcher` does the same for an assistant's questions: concurrent requests with
the same generation settings (method, beam width, answer length) are answered by one
compiled decoding loop over all their queries, padded to the next power of two
(each batch size compiles once, on its first use).
Decoding a query reads only its own row, so the answers are those of one loop per
request; the loop's cost grows far slower than the batch on CPUs and GPUs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass
class _Pending:
    payload: list  # one array per model input, or the queries
    rows: int
    future: asyncio.Future
    key: tuple  # requests are only gathered with requests of the same key


class DynamicBatcher:
    """Runs `run(arrays) -> output` for concurrent requests, several per call.

    Args:
        run: The model call: one array per model input (rows first) -> one output
            array with a row per input row.
        max_batch_size: Most rows per call; 1 runs every request alone.
        max_delay_s: Seconds a call waits for more requests to join it.
        on_batch: Called with the rows of every model call (for metrics).
    """

    def __init__(
        self,
        run: Callable[[list[np.ndarray]], np.ndarray],
        max_batch_size: int = 64,
        max_delay_s: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.on_batch = on_batch or (lambda rows: None)
        # One model thread: calls never overlap, and the event loop stays free.
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._carried: _Pending | None = None

    async def submit(self, arrays: list[np.ndarray]) -> np.ndarray:
        """The model's output rows for `arrays`, computed in some batch."""
        return await self._enqueue(arrays, len(arrays[0]), tuple(a.shape[1:] for a in arrays))

    async def _enqueue(self, payload: list, rows: int, key: tuple):
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._serve())
        future = loop.create_future()
        self._queue.put_nowait(_Pending(payload, rows, future, key))
        return await future

    async def call(self, function: Callable, *args):
        """Runs `function(*args)` in the model thread (for calls that do not batch)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _serve(self) -> None:
        while True:
            batch = await self._gather()
            live = [item for item in batch if not item.future.done()]  # timed-out ones left
            if not live:
                continue
            try:
                outputs = await self.call(self._run_batch, live)
            except Exception as error:  # every request of the call gets the fault
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            for item, output in zip(live, outputs):
                if not item.future.done():
                    item.future.set_result(output)

    async def _gather(self) -> list[_Pending]:
        first = self._carried or await self._queue.get()
        self._carried = None
        batch, rows = [first], first.rows
        deadline = asyncio.get_running_loop().time() + self.max_delay_s
        while rows < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if item.key != first.key or rows + item.rows > self.max_batch_size:
                self._carried = item
                break
            batch.append(item)
            rows += item.rows
        return batch

    def _padded(self, rows: int) -> int:
        return min(1 << (rows - 1).bit_length(), max(self.max_batch_size, rows))

    def _run_batch(self, batch: list[_Pending]) -> list[np.ndarray]:
        if len(batch) == 1:
            self.on_batch(batch[0].rows)
            return [self.run(batch[0].payload)]
        rows = sum(item.rows for item in batch)
        self.on_batch(rows)
        padded = self._padded(rows)
        merged = []
        for parts in zip(*(item.payload for item in batch)):
            if padded > rows:
                parts = [*parts, np.repeat(parts[-1][-1:], padded - rows, axis=0)]
            merged.append(np.concatenate(parts, axis=0))
        output = self.run(merged)
        bounds = np.cumsum([0] + [item.rows for item in batch])
        return [output[bounds[k] : bounds[k + 1]] for k in range(len(batch))]


class QueryBatcher(DynamicBatcher):
    """Answers an assistant's concurrent requests, several per decoding loop.

    Args:
        run: `run(queries, settings, batch_size) -> answers`, one answer per query
            (`Assistant.generate_batch` with the settings as keywords).
        max_batch_size: Most queries per loop; 1 runs every request alone.
        max_delay_s: Seconds a loop waits for more requests to join it.
        on_batch: Called with the queries of every loop (for metrics).
    """

    async def answer(self, queries: list[str], settings: dict) -> list[str]:
        """The answers to `queries`, decoded with others' of the same `settings`."""
        return await self._enqueue(list(queries), len(queries), tuple(sorted(settings.items())))

    def _run_batch(self, batch: list[_Pending]) -> list[list[str]]:
        queries = [query for item in batch for query in item.payload]
        self.on_batch(len(queries))
        answers = self.run(queries, dict(batch[0].key), self._padded(len(queries)))
        bounds = np.cumsum([0] + [item.rows for item in batch])
        return [answers[bounds[k] : bounds[k + 1]] for k in range(len(batch))]
