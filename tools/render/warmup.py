"""Imported by ``make live``'s fork server, and only there, to warm it up: imports the
modules listed in the file that ``$DLBOOK_WARM_MODULES`` names (:mod:`tools.render.warm`).

It is a module of its own because the fork server can only be told what to import; an
import that raises here is skipped, where the server would have died of it."""

import os
from pathlib import Path

from tools.render.warm import LIST_VARIABLE, warm_up

if os.environ.get(LIST_VARIABLE):
    warm_up(Path(os.environ[LIST_VARIABLE]))
