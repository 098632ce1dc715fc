"""deliveries: per-destination leasing indexes and circuit-breaker state

Revision ID: 0007_delivery_destinations
Revises: 0006_erasure_pseudonym
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_delivery_destinations"
down_revision = "0006_erasure_pseudonym"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_subscription_due", "deliveries", ["subscription_id", "status", "next_attempt_at"])
    op.create_index("ix_deliveries_channel_due", "deliveries", ["channel", "status", "next_attempt_at"])
    op.create_table(
        "delivery_destinations",
        sa.Column("key", sa.String(length=150), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("openings", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_delivery_destinations")),
    )


def downgrade() -> None:
    op.drop_table("delivery_destinations")
    op.drop_index("ix_deliveries_channel_due", table_name="deliveries")
    op.drop_index("ix_deliveries_subscription_due", table_name="deliveries")
