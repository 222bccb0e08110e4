"""Dashboards and their versions."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_table(
        "dashboard_versions",
        sa.Column("dashboard_id", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("saved", sa.Float, nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("panels", sa.Integer, nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("dashboard_id", "version"),
    )
    op.create_table(
        "state_marks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("state_marks")
    op.drop_table("dashboard_versions")
    op.drop_table("dashboards")
