"""Running totals of pushed counters and pushed metrics' definitions, shared by replicas."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "running_totals",
        sa.Column("series", sa.String(64), primary_key=True),
        sa.Column("total", sa.Float, nullable=False),
    )
    op.create_table(
        "metric_definitions",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_definitions")
    op.drop_table("running_totals")
