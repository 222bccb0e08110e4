"""The live channel: WebSocket streams of dashboard updates, and the cap on open connections."""
