"""A batch from upload to end: the state machine's steps, ingest's record of the batch, its
inference queue, and stopping or sweeping it from outside its execution.

Imports `functions.platform`, `functions.archive` and `functions.image`.
"""
