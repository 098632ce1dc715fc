"""privacy: the audit record keeps the pseudonym an erasure gave the customer

Revision ID: 0006_erasure_pseudonym
Revises: 0005_response_history
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_erasure_pseudonym"
down_revision = "0005_response_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("privacy_erasures") as batch:
        batch.add_column(sa.Column("pseudonym", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("privacy_erasures") as batch:
        batch.drop_column("pseudonym")
