import sys

from animl_local.standin_api.server import main

sys.exit(main())
