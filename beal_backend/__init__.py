"""beal-backend: a Label Studio ML backend that orders tasks by BEAL's lowest expected confidence."""

__version__ = "0.4.0"
