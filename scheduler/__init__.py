"""The daemon: scheduled polling, delivery and housekeeping."""


class SchedulerError(Exception):
    """Base of every expected daemon failure; the message is one readable line."""


class DaemonAlreadyRunning(SchedulerError):
    """Another daemon holds the SQLite database's lock file."""
