"""Code for the probes of fresh interpreters that check where aiohttp is imported.

``WATCH_AIOHTTP`` goes at the top of a probe script: it imports ``json``, ``sys`` and
``threading``, and appends to ``aiohttp_imports`` one entry per import of aiohttp (``True``: on
the main thread, the one running the event loop), without changing what is imported.
"""

WATCH_AIOHTTP = """
import json, sys, threading

aiohttp_imports = []

class WatchAiohttp:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "aiohttp":
            aiohttp_imports.append(threading.current_thread() is threading.main_thread())
        return None

sys.meta_path.insert(0, WatchAiohttp)
"""
