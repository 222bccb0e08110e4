"""Where Pulseboard's own HTTP API lives: every route, link and client builds on this one prefix."""

API_PREFIX = "/api/v1/monitoring"
