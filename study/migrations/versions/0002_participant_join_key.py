"""participant join key: a retried join returns the same participant

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 20:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('join_key', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('one_participant_per_join_key', ['study_id', 'join_key'])


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_constraint('one_participant_per_join_key', type_='unique')
        batch_op.drop_column('join_key')
