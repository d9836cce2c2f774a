"""`python -m lean_chat`: the command line."""

from .server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
