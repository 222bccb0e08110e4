"""Alembic's entry: migrations run on the connection Pulseboard hands over (see state/database.py)."""

from alembic import context

from dashboard_app.state.database import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
