"""``python -m netsim`` runs the ``quicmeet-netsim`` command."""

import sys

from .cli import main

sys.exit(main())
