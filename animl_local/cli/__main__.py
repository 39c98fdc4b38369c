"""`python -m animl_local.cli`, as the `animl-ingest` entry point."""

import sys

from animl_local.cli.main import main

sys.exit(main())
