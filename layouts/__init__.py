"""Dashboard schema, chart builders and the component tree built from dashboard configs."""
