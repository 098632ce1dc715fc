"""privacy: audit record of customer erasures

Revision ID: 0004_privacy_erasures
Revises: 0003_followup_policy
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_privacy_erasures"
down_revision = "0003_followup_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_erasures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id_sha256", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_erasures")),
    )
    op.create_index("ix_privacy_erasures_customer_id_sha256", "privacy_erasures", ["customer_id_sha256"])


def downgrade() -> None:
    op.drop_index("ix_privacy_erasures_customer_id_sha256", table_name="privacy_erasures")
    op.drop_table("privacy_erasures")
