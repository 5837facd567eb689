"""`python -m app` runs the server; `python -m app download [MODEL...]` pre-downloads model weights."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["download"]:
        from app.download import main as download_main

        return download_main(argv[1:])
    from app.main import run  # the server (lead: app/main.py; adapt this call to its signature at merge)

    exit_code: int = run(argv)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
