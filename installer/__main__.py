"""`python -m installer` is the same as the `chatalot-db` command."""

from installer.cli import main

raise SystemExit(main())
