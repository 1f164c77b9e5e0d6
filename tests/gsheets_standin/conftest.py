"""The stand-in's tests use the shared Google fixtures (a running stand-in, keys, gspread)."""

from tests.support.google import *  # noqa: F403
