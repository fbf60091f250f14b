import time

STARTED = time.perf_counter()  # before any heavy import, for the efficiency timer

from .cli import end_process, main  # noqa: E402

end_process(main(started=STARTED))
