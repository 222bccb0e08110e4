"""The Pulseboard web application: settings, pages, callbacks and the running instance."""
