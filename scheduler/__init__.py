"""The daemon: scheduled polling, delivery and housekeeping."""
