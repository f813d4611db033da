"""How far the test runner batches, and how long one test may take (tests lower them to exercise the edges)."""

from __future__ import annotations

NU_TEST_TIMEOUT = 600


# Below this many batchable test files one driver process runs them all; from here on
# one driver per core (two at most) at a time.
NU_SPLIT_MIN = 8


# Test files per driver: parsing a driver grows faster than linearly with the modules its
# tests `use` (around a hundred test files it dominates), so larger batches are split.
NU_CHUNK_MAX = 25


# Failures found in a batch are re-run alone (exact status and output); past this many
# the batch's own report of the rest is kept (it still names the file and the error).
NU_CONFIRM_MAX = 16


# Driver rounds before whatever is left runs alone (each round finishes or sets aside
# at least one test, so this only bounds pathological cases).
NU_MAX_ROUNDS = 8


# A failing KCL batch is split to find the rest's answer; each run costs about a fifth of
# testing its extensions one by one. Past this many extension-runs (times the number of
# extensions) the rest is tested one by one: with a few failures batching still wins.
KCL_BATCH_WORK = 3
