#!/usr/bin/env python
"""Django's command-line utility for Routeplane."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.instance import SetupRequired

    try:
        execute_from_command_line(sys.argv)
    except SetupRequired as exc:
        # Nothing to connect to (or no SECRET_KEY): what to do, in one line, not a traceback.
        print(f"manage.py: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
