import os
import time

STARTED = time.perf_counter()  # before any heavy import, for the efficiency timer
# numpy's BLAS does no work here, but its spare thread would spin on the second core while the model loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli import end_process, main  # noqa: E402

end_process(main(started=STARTED, own_process=True))
