"""`animl-ingest`: the command line, one module per command group.

`main` parses and dispatches; `run` (run, upload, sample), `executions` (list, describe, history),
`operate` (stop, redrive, reprocess, parking-lot replay), `deploy` (deploy, teardown) and `serve`
each add their commands to the parser. The local run itself lives in `animl_local.local_run`.
"""

from animl_local.cli.main import main

__all__ = ["main"]
