"""Benchmarks of the engine and its stores, run with ``make bench`` (``python -m bench``).

The model is an in-process fake that answers instantly, so every figure is the cost of Parley
itself: the engine (locks, prompt assembly, token counting, structured-reply parsing, the
rolling summary in the background) plus the store (SQLite on a temporary file, or MongoDB
served by a SecantusDB subprocess that the benchmark starts and stops).

Three things are measured for each store:

* overhead per message with 1,000 concurrent conversations, one turn at a time (pure
  overhead), with 50 turns in flight, and with every conversation sending at once
  (throughput);
* how prompt tokens and overhead per turn behave as one conversation grows to 10,000
  messages;
* the same growth for the naive approach of most tutorials, which loads and sends the whole
  history on every turn.

``--quick`` runs smaller numbers for a sanity check; ``--json PATH`` also writes the figures.
"""
