"""The exception tree of the composition root (executors and the broker)."""


class SheetbatchError(Exception):
    """Root of the errors `sheetbatch` itself raises (the layers below have their own)."""


class BrokerUnavailable(SheetbatchError):
    """The Celery broker could not be reached, or refused a message."""


class ExecutorRefused(SheetbatchError):
    """The chosen executor cannot run with this store (celery needs PostgreSQL)."""
