"""The Pulseboard web application: settings, pages, callbacks and the running instance."""

__version__ = "0.4.0"  # the one place Pulseboard's version is set: the package, /version, buildinfo
