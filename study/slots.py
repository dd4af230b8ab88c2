"""Store planned rater slots: turn the design's trial lists into Assignment and Trial rows, and plan
a slot again when its rater did not finish within the study's hold (:func:`replan_unfinished_slot`)."""

from __future__ import annotations

import math
from datetime import UTC, timedelta

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from study.config import StudyConfig
from study.design import DesignSpec, plan_slot, slot_seed
from study.models import Assignment, Candidate, Participant, Stimulus, Study, Trial, utcnow
from study.session_time import session_time

MIN_AUTO_HOLD_S = 1800.0
"""The shortest hold ``slot_hold_s = 0`` gives: a session of a few minutes still keeps its slot 30 minutes."""


def add_slots(session: Session, study: Study, first: int, count: int) -> list[Assignment]:
    """Plan slots ``first .. first + count - 1`` of ``study`` and add their rows to ``session``
    (flushed, not committed). A slot that already exists raises IntegrityError at flush."""
    spec = DesignSpec.from_dict(study.design)
    config = StudyConfig.from_dict(study.config)
    stimulus_ids = dict(session.execute(
        select(Stimulus.ordinal, Stimulus.id).where(Stimulus.study_id == study.id)).all())
    candidate_ids = {(sid, cond): cid for sid, cond, cid in session.execute(
        select(Candidate.stimulus_id, Candidate.condition, Candidate.id).where(Candidate.study_id == study.id))}
    out = []
    for slot in range(first, first + count):
        plan = plan_slot(spec, slot)
        assignment = Assignment(study_id=study.id, slot=slot, seed=slot_seed(spec, slot),
                                plan=[t.to_dict() for t in plan])
        session.add(assignment)
        for t in plan:
            sid = stimulus_ids[t.stimulus]
            assignment.trials.append(Trial(
                study_id=study.id, position=t.position, stimulus_id=sid,
                candidate_a_id=candidate_ids[(sid, t.condition_a)], candidate_b_id=candidate_ids[(sid, t.condition_b)],
                kind=t.kind, repeat_of=t.repeat_of, expected_choice=t.expected,
                instruction=config.attention.instruction.format(side=t.expected) if t.instructed else None))
        out.append(assignment)
    session.flush()
    return out


def next_slot(session: Session, study_id: int) -> int:
    """The first slot number not yet planned."""
    last = session.scalar(select(func.max(Assignment.slot)).where(Assignment.study_id == study_id))
    return 0 if last is None else int(last) + 1


def slot_hold_s(study: Study) -> float:
    """Seconds a rater may take from joining to finishing before their slot is planned again: the
    study's ``slot_hold_s``, or for 0 three times the session's expected length
    (:func:`study.session_time.session_time`), at least :data:`MIN_AUTO_HOLD_S`."""
    config = StudyConfig.from_dict(study.config)
    if config.slot_hold_s > 0:
        return float(config.slot_hold_s)
    durations = [st.duration_s for st in sorted(study.stimuli, key=lambda st: st.ordinal)]
    return max(MIN_AUTO_HOLD_S, 3 * session_time(DesignSpec.from_dict(study.design), durations).total_s)


def replan_unfinished_slot(session: Session, study: Study) -> int | None:
    """Release the lowest slot whose rater joined more than :func:`slot_hold_s` ago and has not
    finished, and plan that slot again as a new unclaimed row; returns the new row's id (``None``:
    no such slot). The released row keeps its rater, trials and votes: a slow rater finishes as
    before, and a join that never answers holds a slot no longer than the hold (before, a
    ``close_when_full`` study could be filled for good by joins that never answered).

    Rows are locked with SKIP LOCKED on PostgreSQL, and the release only takes a row not released
    yet, so two joins never plan the same slot twice (the unique index on active slots checks it).
    The rater's row is locked too, as :func:`study.service.record_vote` locks it: a rater whose last
    vote is being saved is skipped, not released as unfinished the moment they finish (before, on
    PostgreSQL, a join at that moment planned a finished rater's slot again)."""
    row = session.execute(_held_too_long(study).order_by(Assignment.slot).limit(1)
                          .with_for_update(of=[Assignment, Participant], skip_locked=True)).first()
    if row is None:
        return None
    released = session.execute(update(Assignment).where(Assignment.id == row.id, Assignment.released_at.is_(None))
                               .values(released_at=utcnow()))
    if released.rowcount != 1:
        return None
    return add_slots(session, study, row.slot, 1)[0].id


def _held_too_long(study: Study) -> Select:
    """The ``(id, slot)`` of ``study``'s active rows whose rater joined more than the hold ago and has not finished."""
    cutoff = utcnow() - timedelta(seconds=slot_hold_s(study))
    return (select(Assignment.id, Assignment.slot).join(Participant, Assignment.participant_id == Participant.id)
            .where(Assignment.study_id == study.id, Assignment.released_at.is_(None),
                   Participant.finished_at.is_(None), Assignment.assigned_at < cutoff))


def has_place(session: Session, study: Study) -> bool:
    """True when a join could get a slot of the slots planned so far: one not claimed yet, or one whose
    rater ran out of time (a read: :func:`study.service.join` asks it before it counts or writes)."""
    unclaimed = select(Assignment.id).where(Assignment.study_id == study.id, Assignment.participant_id.is_(None))
    return (session.scalar(unclaimed.limit(1)) is not None
            or session.execute(_held_too_long(study).limit(1)).first() is not None)


def study_full(session: Session, study: Study) -> str:
    """The sentence for a join a full ``close_when_full`` study refuses: when a slot frees up next (its
    rater's hold runs out), else that the study is full for good."""
    oldest = session.scalar(
        select(func.min(Assignment.assigned_at)).join(Participant, Assignment.participant_id == Participant.id)
        .where(Assignment.study_id == study.id, Assignment.released_at.is_(None), Participant.finished_at.is_(None)))
    if oldest is None:
        return "This study is full; thank you for your interest."
    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)  # SQLite keeps no time zone
    wait_s = (oldest + timedelta(seconds=slot_hold_s(study)) - utcnow()).total_seconds()
    minutes = max(1, math.ceil(wait_s / 60))
    return (f"This study is full for now: a place held by a rater who has not finished is offered again in about "
            f"{minutes} minute{'s' if minutes != 1 else ''}. Thank you for your interest.")
