"""follow-up policy: routed channels on tasks, channel deliveries, round-robin, recoveries,
survey sends, business outcomes, digests

Revision ID: 0003_followup_policy
Revises: 0002_classification_corrections
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_followup_policy"
down_revision = "0002_classification_corrections"
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("escalation_channel", sa.String(length=100), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("subscription_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(sa.Column("channel", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("channel_type", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("target", sa.Text(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_deliveries_channel_event_id"), ["channel", "event_id"])
    op.create_table(
        "routing_cursors",
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("team", name=op.f("pk_routing_cursors")),
    )
    op.create_table(
        "customer_categories",
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("response_id", sa.String(length=36), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_categories")),
    )
    op.create_table(
        "recoveries",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("detractor_response_id", sa.String(length=36), nullable=False),
        sa.Column("detractor_score", sa.Integer(), nullable=False),
        sa.Column("next_response_id", sa.String(length=36), nullable=False),
        sa.Column("next_score", sa.Integer(), nullable=False),
        sa.Column("next_category", sa.String(length=20), nullable=False),
        sa.Column("recovered", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_recoveries_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_recoveries")),
    )
    with op.batch_alter_table("recoveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recoveries_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recoveries_answered_at"), ["answered_at"], unique=False)
    op.create_table(
        "survey_sends",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("touchpoint", sa.String(length=100), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_sends")),
    )
    with op.batch_alter_table("survey_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_sends_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_survey_sends_account_id"), ["account_id"], unique=False)
    op.create_table(
        "business_outcomes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_outcomes")),
    )
    with op.batch_alter_table("business_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_business_outcomes_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_business_outcomes_account_id"), ["account_id"], unique=False)
    op.create_table(
        "digests",
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team", "period_end", name=op.f("pk_digests")),
    )


def downgrade() -> None:
    op.drop_table("digests")
    op.drop_table("business_outcomes")
    op.drop_table("survey_sends")
    op.drop_table("recoveries")
    op.drop_table("customer_categories")
    op.drop_table("routing_cursors")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_deliveries_channel_event_id"), type_="unique")
        batch_op.drop_column("target")
        batch_op.drop_column("channel_type")
        batch_op.drop_column("channel")
        batch_op.alter_column("subscription_id", existing_type=sa.String(length=36), nullable=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("escalation_channel")
        batch_op.drop_column("channel")
