"""The REST API: its frame (routes, errors, bodies) and one module of endpoints per subject."""
