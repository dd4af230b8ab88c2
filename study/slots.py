"""Store planned rater slots: turn the design's trial lists into Assignment and Trial rows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from study.config import StudyConfig
from study.design import DesignSpec, plan_slot, slot_seed
from study.models import Assignment, Candidate, Stimulus, Study, Trial


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
