"""Protocol adapters at the edge: what other tools send (InfluxDB line protocol, ...) made samples."""
