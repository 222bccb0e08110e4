"""Where metric data is read from: the embedded store, or a Prometheus server."""
