"""The ``svdb`` command line: ``svdb info|verify|checkpoint|compact|import|export|query``.

``import pysvdb`` does not load this package (nor click or tqdm); the console
script and ``python -m pysvdb.cli`` do. See docs/cli.md.
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs the command line with ``argv`` (default: ``sys.argv[1:]``) and exits."""
    from .commands import main as run

    run(argv)
