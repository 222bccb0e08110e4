"""One way to ask: PromQL, evaluated by one engine over the store, and what pages make of its answers."""
