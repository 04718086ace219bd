"""import_prices <file.yaml|csv>: add or change model prices; events since then are re-priced."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracking.pricing import load_price_file
from tracking.repricing import import_prices


class Command(BaseCommand):
    help = (
        "Import model prices (USD per 1M tokens) from a YAML file with a `prices:` list or a CSV "
        "with columns model,input,output[,effective_from,source]. Events since each price's "
        "effective_from are re-priced in the background."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="price file (.yaml, .yml or .csv)")
        parser.add_argument(
            "--no-reprice",
            action="store_true",
            help="store the prices without re-pricing events already stored",
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            rows = load_price_file(str(options["path"]))
        except FileNotFoundError:
            raise CommandError(f"no such file: {options['path']}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        count = import_prices(rows=rows, reprice=not options["no_reprice"])
        self.stdout.write(f"Imported {count} prices.")
