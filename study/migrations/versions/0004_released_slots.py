"""released slots: a slot whose rater did not finish within the hold is planned again

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 18:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ACTIVE = sa.text("released_at IS NULL")
# 0001 left the (study_id, slot) constraint unnamed: SQLite's batch mode names it by this convention
UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def _slot_constraint() -> str:
    """The name of the unique (study_id, slot) constraint 0001 made."""
    for found in sa.inspect(op.get_bind()).get_unique_constraints("assignment"):
        if found["column_names"] == ["study_id", "slot"]:
            return found["name"] or "uq_assignment_study_id_slot"
    raise RuntimeError("the assignment table has no unique (study_id, slot) constraint to replace")


def upgrade() -> None:
    """Upgrade schema."""
    name = _slot_constraint()
    with op.batch_alter_table('assignment', schema=None, naming_convention=UNNAMED) as batch_op:
        batch_op.add_column(sa.Column('released_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(name, type_='unique')
    op.create_index('one_active_row_per_slot', 'assignment', ['study_id', 'slot'], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    """Downgrade schema (refused by the database if a slot was planned again)."""
    op.drop_index('one_active_row_per_slot', table_name='assignment')
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_assignment_study_id_slot', ['study_id', 'slot'])
        batch_op.drop_column('released_at')
