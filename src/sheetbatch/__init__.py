"""sheetbatch: every spreadsheet row a job, every transition durable and visible live."""

__version__ = "0.1.0"
