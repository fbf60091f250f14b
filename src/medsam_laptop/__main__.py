import time

STARTED = time.perf_counter()  # before any heavy import, for the efficiency timer

from .cli import main  # noqa: E402
from .inference.startup import end_process  # noqa: E402

end_process(main(started=STARTED, own_process=True))
