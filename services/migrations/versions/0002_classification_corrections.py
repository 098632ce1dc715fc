"""classification corrections: people's fixes to themes and sentiment, with who and when

Revision ID: 0002_classification_corrections
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_classification_corrections"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classification_corrections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("response_id", sa.String(length=36), nullable=False),
        sa.Column("themes", sa.Text(), nullable=True),
        sa.Column("sentiment", sa.String(length=20), nullable=True),
        sa.Column("corrected_by", sa.String(length=200), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classification_corrections")),
    )
    with op.batch_alter_table("classification_corrections", schema=None) as batch_op:
        batch_op.create_index("ix_classification_corrections_response", ["response_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("classification_corrections", schema=None) as batch_op:
        batch_op.drop_index("ix_classification_corrections_response")
    op.drop_table("classification_corrections")
