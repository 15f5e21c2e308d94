"""The long-running service: stream manager + cache + status server (``autoconfig-cache run``)."""
