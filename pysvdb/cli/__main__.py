"""``python -m pysvdb.cli``: the ``svdb`` command."""

from . import main

main()
