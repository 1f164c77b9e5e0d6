"""Pipelines: ordered, named phases run on one row with a job context."""
