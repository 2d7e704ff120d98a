"""torchrun as `lmforge train` starts it (`python -m lmforge.train.torchrun ARGS`: torchrun's own arguments).

A signal the launcher forwards makes torchrun pass it to every worker, wait for them (they save a
checkpoint and stop) and end by raising its `SignalException`. Here that ending is the signal's exit code
without a traceback, and torchrun's two notices about it ("Received SIGTERM death signal, shutting down
workers", "Sending process N closing signal SIGTERM") are not shown: the launcher prints one line instead.
Everything else torchrun says (a worker's failure among it) is unchanged.
"""

import logging
import sys

# torchrun's logging format strings of the shutdown notices, and the modules that log them
SHUTDOWN_NOTICES = {
    "torch.distributed.elastic.agent.server.api": "Received %s death signal",
    "torch.distributed.elastic.multiprocessing.api": "Sending process %s closing signal",
}


class _DropNotice(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def main(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import main as torchrun

    for name, start in SHUTDOWN_NOTICES.items():
        logging.getLogger(name).addFilter(_DropNotice(start))
    try:
        torchrun(argv)
    except SignalException as stop:
        return 128 + int(stop.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
