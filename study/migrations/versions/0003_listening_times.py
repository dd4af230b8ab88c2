"""listening: when each trial was first served, and the listening times a vote reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 18:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('trial', schema=None) as batch_op:
        batch_op.add_column(sa.Column('served_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('vote', schema=None) as batch_op:
        batch_op.add_column(sa.Column('listened_a_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('listened_b_s', sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('vote', schema=None) as batch_op:
        batch_op.drop_column('listened_b_s')
        batch_op.drop_column('listened_a_s')
    with op.batch_alter_table('trial', schema=None) as batch_op:
        batch_op.drop_column('served_at')
