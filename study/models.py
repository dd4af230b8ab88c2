"""The study's tables (SQLAlchemy 2.x typed ORM). Alembic migrations in ``study/migrations`` create them.

Blindness lives in the schema: what a rater may see (opaque media file names, trial ids,
positions) sits apart from what only the admin sees (condition names, titles, source paths).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TRIAL_KINDS = ("normal", "attention", "repeat_swapped", "practice")
CHOICES = ("A", "B", "none")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)  # opaque id a rater's URL may carry
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    seed: Mapped[int] = mapped_column(Integer)
    media_dir: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # the StudyConfig as created
    design: Mapped[dict[str, Any]] = mapped_column(JSON)  # the DesignSpec the plan comes from

    stimuli: Mapped[list[Stimulus]] = relationship(back_populates="study", cascade="all, delete-orphan")


class Stimulus(Base):
    __tablename__ = "stimulus"
    __table_args__ = (UniqueConstraint("study_id", "name"), UniqueConstraint("study_id", "ordinal"))

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)  # position in the design's stimulus list
    name: Mapped[str] = mapped_column(String(300))
    source_path: Mapped[str] = mapped_column(Text)  # admin only; never sent to raters
    duration_s: Mapped[float] = mapped_column(Float)

    study: Mapped[Study] = relationship(back_populates="stimuli")
    candidates: Mapped[list[Candidate]] = relationship(back_populates="stimulus", cascade="all, delete-orphan")


class Candidate(Base):
    """One soundtrack for one clip, premuxed into ``media_file`` (an opaque random name)."""

    __tablename__ = "candidate"
    __table_args__ = (UniqueConstraint("stimulus_id", "condition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id", ondelete="CASCADE"), index=True)
    condition: Mapped[str] = mapped_column(String(100))  # hidden: ground_truth, vmnet, random, ...
    track_id: Mapped[str] = mapped_column(String(300))
    track_title: Mapped[str] = mapped_column(Text)
    track_path: Mapped[str] = mapped_column(Text)
    media_file: Mapped[str] = mapped_column(String(100), unique=True)

    stimulus: Mapped[Stimulus] = relationship(back_populates="candidates")


class Participant(Base):
    __tablename__ = "participant"
    __table_args__ = (UniqueConstraint("study_id", "join_key", name="one_participant_per_join_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(100), unique=True)  # secrets.token_urlsafe: the rater's key
    # random key the rater's client makes once and sends with every join attempt: a retried join
    # returns the same participant (NULL for joins without one)
    join_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    url_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. PROLIFIC_PID
    screening: Mapped[str] = mapped_column(String(20), default="pending")  # pending|included|excluded
    completion_code: Mapped[str | None] = mapped_column(String(100), nullable=True)

    assignment: Mapped[Assignment | None] = relationship(back_populates="participant", uselist=False)


ACTIVE_SLOT = text("released_at IS NULL")


class Assignment(Base):
    """One planned rater slot: the seed and the ordered trial list, stored before anyone joins.

    A slot whose rater did not finish within the study's hold is *released* (``released_at``): the
    rater keeps it, with their trials and votes, and the same slot is planned again, as a new row,
    for the next rater (:mod:`study.slots`). So one slot number has one unreleased row at most."""

    __tablename__ = "assignment"
    __table_args__ = (Index("one_active_row_per_slot", "study_id", "slot", unique=True,
                            sqlite_where=ACTIVE_SLOT, postgresql_where=ACTIVE_SLOT),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    plan: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the design's trial list, in order
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participant.id", ondelete="SET NULL"), unique=True, nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    participant: Mapped[Participant | None] = relationship(back_populates="assignment")
    trials: Mapped[list[Trial]] = relationship(back_populates="assignment", order_by="Trial.position",
                                               cascade="all, delete-orphan")


class Trial(Base):
    __tablename__ = "trial"
    __table_args__ = (
        UniqueConstraint("assignment_id", "position"),
        CheckConstraint(f"kind IN {TRIAL_KINDS}", name="trial_kind"),
        CheckConstraint("expected_choice IS NULL OR expected_choice IN ('A', 'B')", name="trial_expected"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based order shown
    stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimulus.id", ondelete="CASCADE"))
    candidate_a_id: Mapped[int] = mapped_column(ForeignKey("candidate.id", ondelete="CASCADE"))  # first / left
    candidate_b_id: Mapped[int] = mapped_column(ForeignKey("candidate.id", ondelete="CASCADE"))  # second / right
    kind: Mapped[str] = mapped_column(String(20))
    repeat_of: Mapped[int | None] = mapped_column(Integer, nullable=True)  # position of the original trial
    expected_choice: Mapped[str | None] = mapped_column(String(1), nullable=True)  # attention checks
    instruction: Mapped[str | None] = mapped_column(Text, nullable=True)  # instructed-response checks
    # when the trial (its two media) was first handed to its participant: a vote sooner than the
    # listening time after this is refused (study.listening)
    served_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    assignment: Mapped[Assignment] = relationship(back_populates="trials")
    stimulus: Mapped[Stimulus] = relationship()
    candidate_a: Mapped[Candidate] = relationship(foreign_keys=[candidate_a_id])
    candidate_b: Mapped[Candidate] = relationship(foreign_keys=[candidate_b_id])


class Vote(Base):
    __tablename__ = "vote"
    __table_args__ = (
        UniqueConstraint("participant_id", "trial_id", name="one_vote_per_trial"),
        CheckConstraint(f"choice IN {CHOICES}", name="vote_choice"),
        CheckConstraint("strength IS NULL OR (strength BETWEEN 1 AND 5)", name="vote_strength"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trial.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"), index=True)
    choice: Mapped[str] = mapped_column(String(4))
    strength: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    played_a_to_end: Mapped[bool] = mapped_column(Boolean, default=False)
    played_b_to_end: Mapped[bool] = mapped_column(Boolean, default=False)
    # seconds of each soundtrack the page reports as actually played (seeking forward excluded)
    listened_a_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    listened_b_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    trial: Mapped[Trial] = relationship()
