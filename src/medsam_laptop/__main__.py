import time

STARTED = time.perf_counter()  # before any heavy import, for the efficiency timer

from .cli import main  # noqa: E402

raise SystemExit(main(started=STARTED))
