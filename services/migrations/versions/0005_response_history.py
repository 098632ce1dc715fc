"""ingest: responses imported as history (follow-up skips those already past their SLA)

Revision ID: 0005_response_history
Revises: 0004_privacy_erasures
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_response_history"
down_revision = "0004_privacy_erasures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("history", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("history")
