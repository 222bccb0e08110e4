"""Access control: who is asking (users, keys, sessions), what each route and callback declares it
needs, the one guard that enforces those declarations, and the source bound to the caller that every
read of metric data goes through."""
