"""``python -m asymtune.config [PATH]``: write docs/configuration.md (to PATH) from the schema."""

import sys

from asymtune.config.render import main

sys.exit(main())
