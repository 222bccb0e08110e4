"""Alert rules made through the API, alert state and history, the lease and outbox, the audit log."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("rule", sa.Text, nullable=False),
    )
    op.create_table(
        "alert_state",
        sa.Column("rule_id", sa.String(200), primary_key=True),
        sa.Column("alerts", sa.Text, nullable=False),
        sa.Column("seen", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("evaluated", sa.Float, nullable=False),
    )
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert", sa.Text, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("changes", sa.Integer, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("done", sa.Float, nullable=True),
    )
    op.create_index("notifications_open", "notifications", ["done"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_index("notifications_open", "notifications")
    op.drop_table("notifications")
    op.drop_table("leases")
    op.drop_table("alert_history")
    op.drop_table("alert_state")
    op.drop_table("alert_rules")
