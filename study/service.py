"""What the rater pages and the admin pages call. Each function is one short transaction.

Rater side (identified only by the unguessable token from :func:`join`): nothing returned here
names a condition, a track, a title or a source file; media are opaque file names.
Admin side: progress, rows for the CSV exports, the analysis.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from study import rater_input
from study.config import StudyConfig
from study.db import Database
from study.design import DesignSpec
from study.join_limit import JoinLimiter, too_many_joins
from study.listening import checked_listened, min_answer_s, seconds_left, too_soon
from study.models import CHOICES, Assignment, Candidate, Participant, Stimulus, Study, Trial, Vote, utcnow
from study.provenance import analysis_provenance
from study.session_time import session_time, with_session_time
from study.slots import add_slots, has_place, next_slot, replan_unfinished_slot, study_full
from study.stats import Analysis, RaterScreening, analyze_votes, screen_raters
from study.vote_row import VoteRow
from vmnet_core.errors import VmnetError


class StudyError(VmnetError):
    """A request the study cannot serve; the message is safe to show to the person who made it."""


class NotFound(StudyError):
    """Unknown study, token, trial or media file."""


class Refused(StudyError):
    """A request that is understood but not allowed (closed study, not your trial, out of order...)."""


class TooSoon(Refused):
    """A vote sooner than both soundtracks can be played after the trial was served; ``wait_s`` says
    how many seconds are left."""

    def __init__(self, wait_s: float):
        super().__init__(too_soon(wait_s))
        self.wait_s = wait_s


class SaveFailed(StudyError):
    """The database did not confirm the write; nothing was stored, the rater should try again."""


SAVE_FAILED = "Saving your answer failed; please try again."
UNAVAILABLE = "The study database is not reachable right now; please try again in a moment."
MEDIA_NAME = re.compile(r"^[0-9a-f]{16,64}\.mp4$")
JOIN_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
JOIN_ATTEMPTS = 20  # a join that loses a race for a slot (or a join key) tries again this often
MAX_KEY_CHARS = 64  # a token or public study key longer than this is not one (they are 32 and 16)
T = TypeVar("T")


@dataclass(frozen=True)
class StudyInfo:
    """What a rater's page may show before and around the trials."""

    key: str  # the study's public key (safe in URLs)
    title: str
    consent_text: str  # with the session's expected minutes filled in (study.session_time)
    instructions_text: str
    strength_scale: bool
    is_open: bool
    contact: str = ""  # the researcher's contact, shown with consent and after a decline
    decline_text: str = ""  # shown when a rater does not agree


@dataclass(frozen=True)
class TrialView:
    """One trial as the rater sees it: only opaque things."""

    trial_id: int
    number: int  # 1-based position in the session
    total: int  # trials in the session, practice included
    answered: int  # trials already answered
    media_a: str  # opaque file name of the clip with soundtrack A (shown first / left)
    media_b: str  # opaque file name of the clip with soundtrack B
    practice: bool  # the practice trial (its answer is not analysed)
    instruction: str | None  # an instructed-response check's instruction, else None
    media_dir: str = ""  # server side only, never sent: the folder holding media_a and media_b

    def media_paths(self) -> tuple[Path, Path]:
        """The local files behind ``media_a`` and ``media_b`` (for the server to hand to Gradio)."""
        return Path(self.media_dir) / self.media_a, Path(self.media_dir) / self.media_b


@dataclass(frozen=True)
class VoteAck:
    """The server's confirmation that a vote is stored; resubmitting the same trial returns an equal ack."""

    trial_id: int
    number: int
    total: int
    choice: str  # the stored choice (the first one submitted)
    finished: bool  # this was the session's last trial
    # the first trial still unanswered after this vote (None: all done); not part of the ack's equality
    next_trial: TrialView | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StudyProgress:
    study: str
    is_open: bool
    planned_slots: int
    replanned_slots: int  # slots planned again because their rater had not finished within the hold
    participants: int  # joined
    consented: int
    finished: int
    screened_out: int
    votes: int  # analysable votes (normal trials)
    votes_by_pair: dict[str, int]  # "x vs y" -> normal votes


# ---------------------------------------------------------------------------------------- helpers
class _SlotTaken(Exception):
    """Another participant claimed the slot between our read and our update."""


@contextmanager
def _database_errors(message: str = UNAVAILABLE) -> Iterator[None]:
    """Turn driver failures (connection lost, locked, disk full) into SaveFailed with ``message``."""
    try:
        yield
    except StudyError:
        raise
    except IntegrityError:
        raise
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        raise SaveFailed(message) from exc


def _study_by_key(session: Session, key: str | None) -> Study:
    if key is not None and not (isinstance(key, str) and len(key) <= MAX_KEY_CHARS):
        raise NotFound("This study link is not valid, or no study is open right now.")
    if key:
        study = session.scalar(select(Study).where(Study.public_key == key))
    else:
        study = session.scalar(select(Study).where(Study.is_open.is_(True)).order_by(Study.id.desc()).limit(1))
    if study is None:
        raise NotFound("This study link is not valid, or no study is open right now.")
    return study


def _study_by_name(session: Session, name: str | None) -> Study:
    if name is None:
        studies = session.scalars(select(Study).order_by(Study.id)).all()
        if len(studies) == 1:
            return studies[0]
        if not studies:
            raise NotFound("The database holds no study yet; create one with `vmnet study create`.")
        raise NotFound(f"The database holds {len(studies)} studies; name one of: "
                       f"{', '.join(s.name for s in studies)}.")
    study = session.scalar(select(Study).where(Study.name == name))
    if study is None:
        raise NotFound(f"No study named {name!r} in this database.")
    return study


def _participant(session: Session, token: str, lock: bool = False) -> Participant:
    participant = None
    if isinstance(token, str) and 0 < len(token) <= MAX_KEY_CHARS:
        query = select(Participant).where(Participant.token == token)
        participant = session.scalar(query.with_for_update() if lock else query)
    if participant is None:
        raise NotFound("This session is not known; please open the study link again.")
    return participant


def _rater_value(check: Callable[..., T], *args: Any) -> T:
    """``check(*args)`` (a :mod:`study.rater_input` check), its ValueError turned into :class:`Refused`."""
    try:
        return check(*args)
    except ValueError as exc:
        raise Refused(str(exc)) from None


def checked_url_params(url_params: Any) -> dict[str, str]:
    """The URL parameters a join stores: the first ``rater_input.MAX_URL_PARAMS`` (16) in the order
    given, names and values cut to 100 and 500 characters; :class:`Refused` for anything but names
    with values."""
    return _rater_value(rater_input.url_params, url_params)


def _info(study: Study) -> StudyInfo:
    config = StudyConfig.from_dict(study.config)
    durations = [st.duration_s for st in sorted(study.stimuli, key=lambda st: st.ordinal)]
    consent_text = with_session_time(config.consent_text, session_time(DesignSpec.from_dict(study.design), durations))
    return StudyInfo(study.public_key, config.title, consent_text, config.instructions_text,
                     config.strength_scale, study.is_open, config.contact, config.decline_text)


def _trials_of(session: Session, participant: Participant) -> list[Trial]:
    """The participant's trials in order, each with both candidates loaded in the same query."""
    return list(session.scalars(
        select(Trial).join(Assignment, Trial.assignment_id == Assignment.id)
        .where(Assignment.participant_id == participant.id).order_by(Trial.position)
        .options(joinedload(Trial.candidate_a), joinedload(Trial.candidate_b), selectinload(Trial.stimulus))))


def _first_unanswered(session: Session, participant: Participant, trials: list[Trial],
                      answered: set[int]) -> TrialView | None:
    """The view of the first of ``trials`` whose id is not in ``answered`` (None: all answered)."""
    for trial in trials:
        if trial.id not in answered:
            media_dir = session.get(Study, participant.study_id).media_dir
            return TrialView(trial.id, trial.position + 1, len(trials), len(answered),
                             trial.candidate_a.media_file, trial.candidate_b.media_file,
                             trial.kind == "practice", trial.instruction, media_dir)
    return None


def _mark_served(session: Session, view: TrialView | None) -> None:
    """Record now as the time ``view``'s trial was first served (kept if it already has one)."""
    if view is not None:
        session.execute(update(Trial).where(Trial.id == view.trial_id, Trial.served_at.is_(None))
                        .values(served_at=utcnow()))


def _listening_wait_s(trial: Trial, config: StudyConfig) -> float:
    """Seconds still to wait before ``trial`` may be answered (0 for the practice trial, which is not
    analysed). A trial never served counts as served now."""
    if trial.kind == "practice":
        return 0.0
    duration = float(trial.stimulus.duration_s)
    needed = min_answer_s(duration, duration, config.min_listen_fraction)
    return seconds_left(trial.served_at or utcnow(), utcnow(), needed)


def _voted_trial_ids(session: Session, participant: Participant) -> set[int]:
    return set(session.scalars(select(Vote.trial_id).where(Vote.participant_id == participant.id)))


def _screening(config: StudyConfig, rows: list[VoteRow]) -> dict[int, RaterScreening]:
    """{participant: screening} of the raters in ``rows`` by the study's thresholds: the one
    screening path behind the stored status, the progress, the participants export and the analysis."""
    rules = config.screening
    return {s.participant: s for s in screen_raters(rows, rules.max_attention_failure_rate, rules.min_repeat_consistency,
                                                    rules.min_listened_fraction, rules.min_response_ms)}


def screening_status(participant: Participant, screening: RaterScreening | None) -> str:
    """``excluded`` once the rater's votes so far fail screening, else ``included`` once they
    finished, else ``pending``."""
    if screening is not None and screening.excluded:
        return "excluded"
    return "included" if participant.finished_at is not None else "pending"


# ------------------------------------------------------------------------------------ rater side
def study_info(db: Database, study_key: str | None = None) -> StudyInfo:
    """The public texts of the study with ``study_key`` (None: the newest open study)."""
    with _database_errors(), db.read() as s:
        return _info(_study_by_key(s, study_key))


def study_info_for(db: Database, token: str) -> StudyInfo:
    """The public texts of the study a participant belongs to."""
    with _database_errors(), db.read() as s:
        return _info(s.get(Study, _participant(s, token).study_id))


def _checked_join_key(join_key: str | None) -> str | None:
    """``join_key`` stripped, or None when empty; refuses anything but 16-64 URL-safe characters."""
    key = str(join_key or "").strip()
    if not key:
        return None
    if not JOIN_KEY.match(key):
        raise Refused("The join key must be 16 to 64 letters, digits, '-' or '_'; please reload the page.")
    return key


def join(db: Database, study_key: str | None = None, url_params: dict[str, Any] | None = None,
         join_key: str | None = None, client: str | None = None, limiter: JoinLimiter | None = None) -> str:
    """Start a new participant in the study (None: the newest open study) and give them the next
    planned slot; returns their secret token. ``url_params`` (e.g. ``PROLIFIC_PID``) are stored,
    at most 16 of them (see :func:`checked_url_params`).

    ``join_key``: a random key (16-64 URL-safe characters) the rater's client makes once and sends
    with every attempt; a join retried with the same key (say after a time-out whose answer was
    lost) returns the participant the first attempt made, with the same token. The database holds
    one participant per (study, join key).

    ``client`` (the caller's IP address) and ``limiter``: a new participant counts against the
    study's ``joins_per_client`` per ``joins_window_s`` for that client; past it, :class:`Refused`
    (a retry with a known join key is not a new participant and always passes). A join that starts
    no participant (refused as full or closed, a failed save) is given back: a rater told that a full
    study frees a place in N minutes may try again without spending their joins.
    """
    params = checked_url_params(url_params)
    key = _checked_join_key(join_key)
    earlier = _earlier_token(db, study_key, key) if key is not None else None
    if earlier is not None:
        return earlier  # a retried join, answered from a read: nothing counted or written
    give_back = _count_join(db, study_key, client, limiter) if client and limiter is not None else None
    token, started = None, False
    try:
        token, started = _start_participant(db, study_key, params, key)
    finally:
        if give_back is not None and not started:
            give_back()  # no participant started (full, closed, a known join key, a failed save): not a join
    return token


def _start_participant(db: Database, study_key: str | None, params: dict[str, str],
                       key: str | None) -> tuple[str, bool]:
    """:func:`join`'s work: the new participant's token and True, or the token a known join key
    already has and False."""
    for _ in range(JOIN_ATTEMPTS):
        try:
            with _database_errors("Starting the study failed; please reload the page."), db.write() as s:
                study = _study_by_key(s, study_key)
                if key is not None:
                    earlier = s.scalar(select(Participant.token).where(
                        Participant.study_id == study.id, Participant.join_key == key))
                    if earlier is not None:
                        return earlier, False
                if not study.is_open:
                    raise Refused("This study is closed; thank you for your interest.")
                participant = Participant(study_id=study.id, token=secrets.token_urlsafe(24), url_params=params,
                                          join_key=key)
                s.add(participant)
                s.flush()
                # SKIP LOCKED (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises joins): joins
                # at the same moment take different free slots instead of all racing for the first
                slot_id = s.scalar(select(Assignment.id).where(
                    Assignment.study_id == study.id, Assignment.participant_id.is_(None))
                    .order_by(Assignment.slot).limit(1).with_for_update(skip_locked=True))
                if slot_id is None:  # a slot whose rater ran out of time first, so the plan stays balanced
                    slot_id = replan_unfinished_slot(s, study)
                if slot_id is None:
                    if StudyConfig.from_dict(study.config).close_when_full:
                        raise Refused(study_full(s, study))
                    slot_id = add_slots(s, study, next_slot(s, study.id), 1)[0].id
                claimed = s.execute(
                    update(Assignment).where(Assignment.id == slot_id, Assignment.participant_id.is_(None))
                    .values(participant_id=participant.id, assigned_at=utcnow()))
                if claimed.rowcount != 1:
                    raise _SlotTaken
                token = participant.token
            return token, True  # committed
        except (IntegrityError, _SlotTaken):
            continue  # another join took the same slot (or the same join key) at the same moment: try again
    raise SaveFailed("Starting the study failed; please reload the page.")


def _earlier_token(db: Database, study_key: str | None, key: str) -> str | None:
    """The token of the participant a join with ``key`` already started in the study, or None."""
    with _database_errors("Starting the study failed; please reload the page."), db.read() as s:
        study = _study_by_key(s, study_key)
        return s.scalar(select(Participant.token).where(Participant.study_id == study.id,
                                                        Participant.join_key == key))


def _count_join(db: Database, study_key: str | None, client: str,
                limiter: JoinLimiter) -> Callable[[], None] | None:
    """Count a new participant from ``client`` against the study's join limit, or refuse it; returns
    what gives the join back (None: nothing was counted)."""
    with _database_errors("Starting the study failed; please reload the page."), db.read() as s:
        study = _study_by_key(s, study_key)
        if not study.is_open:
            return None  # refused as closed by the join itself
        config = StudyConfig.from_dict(study.config)
        if config.close_when_full and not has_place(s, study):
            raise Refused(study_full(s, study))  # a read, uncounted: asking again costs no join and no write
    limit = (study.id, client, config.joins_per_client, config.joins_window_s)
    wait = limiter.take(*limit)
    if wait > 0:
        raise Refused(too_many_joins(wait))
    return lambda: limiter.give_back(*limit)


def consent(db: Database, token: str) -> None:
    """Record the participant's consent (idempotent: the first time is kept)."""
    with _database_errors(SAVE_FAILED), db.write() as s:
        participant = _participant(s, token)
        if participant.consented_at is None:
            participant.consented_at = utcnow()


def current_trial(db: Database, token: str) -> TrialView | None:
    """The first unanswered trial (so a reload resumes there), or None when all are answered."""
    with _database_errors(), db.read() as s:
        participant = _participant(s, token)
        if participant.consented_at is None:
            raise Refused("Please read and accept the consent form first.")
        view = _first_unanswered(s, participant, _trials_of(s, participant), _voted_trial_ids(s, participant))
        served = view is None or s.scalar(select(Trial.served_at).where(Trial.id == view.trial_id)) is not None
    if not served:
        with _database_errors(), db.write() as s:
            _mark_served(s, view)
    return view


def _ack(session: Session, participant: Participant, trial: Trial, trials: list[Trial], choice: str,
         answered: set[int]) -> VoteAck:
    """The confirmation of the stored ``choice`` on ``trial`` with the next unanswered trial
    (``answered`` includes this one)."""
    return VoteAck(trial.id, trial.position + 1, len(trials), choice, trial.position + 1 == len(trials),
                   _first_unanswered(session, participant, trials, answered))


def _own_trial(trials: list[Trial], trial_id: int) -> Trial:
    """The trial with ``trial_id`` among a participant's ``trials``, else Refused."""
    trial = next((t for t in trials if t.id == trial_id), None)
    if trial is None:
        raise Refused("This trial is not part of your session; please reload the page.")
    return trial


def _choices_of(session: Session, participant: Participant) -> dict[int, str]:
    """{trial id: stored choice} of the participant's votes."""
    return dict(session.execute(select(Vote.trial_id, Vote.choice).where(Vote.participant_id == participant.id)).all())


def record_vote(db: Database, token: str, trial_id: int, choice: str, strength: int | None = None,
                response_ms: int | None = None, played_a: bool = False, played_b: bool = False,
                listened_a_s: float | None = None, listened_b_s: float | None = None) -> VoteAck:
    """Store the participant's vote on their current trial and confirm it.

    ``listened_a_s``/``listened_b_s``: seconds of each soundtrack the page actually played (seeking
    forward excluded), stored for screening. A strength goes only with a preference for A or B.
    ``response_ms``: 0 to 86,400,000 (a day). Values of the wrong type or out of range are refused
    with a sentence before the database is touched (:mod:`study.rater_input`).
    Idempotent: a resubmit or double click on a trial already answered stores nothing new and
    returns an ack equal to the first one. Refuses another participant's trial and trials out of
    order, and (:class:`TooSoon`) a vote sooner than the study's ``min_listen_fraction`` of both
    soundtracks' lengths after the trial was served.
    Raises :class:`SaveFailed` whenever the database does not confirm the write.
    """
    if choice not in CHOICES:
        raise Refused(f"The answer must be one of {', '.join(CHOICES)}.")
    strength = _rater_value(rater_input.strength, strength)
    if strength is not None and choice == "none":
        raise Refused("A strength goes with a preference for A or B; leave it empty with no preference.")
    response_ms = _rater_value(rater_input.response_ms, response_ms)
    played = (_rater_value(rater_input.flag, played_a, "soundtrack A was played"),
              _rater_value(rater_input.flag, played_b, "soundtrack B was played"))
    listened = (_rater_value(checked_listened, listened_a_s, "A"), _rater_value(checked_listened, listened_b_s, "B"))
    trial_id = _rater_value(rater_input.trial_id, trial_id)
    try:
        with _database_errors(SAVE_FAILED), db.write() as s:
            # lock the participant's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
            # writers) so one participant's submits are handled one at a time
            participant = _participant(s, token, lock=True)
            trials = _trials_of(s, participant)
            trial = _own_trial(trials, trial_id)
            votes = _choices_of(s, participant)
            if trial.id in votes:
                ack = _ack(s, participant, trial, trials, votes[trial.id], set(votes))
                _mark_served(s, ack.next_trial)
                return ack
            if participant.consented_at is None:
                raise Refused("Please read and accept the consent form first.")
            current = next((t for t in trials if t.id not in votes), None)
            if current is None or current.id != trial.id:
                raise Refused("Please answer the trials in order; reload the page to continue where you left off.")
            wait_s = _listening_wait_s(trial, StudyConfig.from_dict(s.get(Study, trial.study_id).config))
            if trial.served_at is None:
                trial.served_at = utcnow()  # kept: the wait starts now
            if wait_s > 0:
                early = TooSoon(wait_s)
            else:
                vote = Vote(study_id=trial.study_id, trial_id=trial.id, participant_id=participant.id,
                            choice=choice, strength=strength, response_ms=response_ms,
                            played_a_to_end=played[0], played_b_to_end=played[1],
                            listened_a_s=listened[0], listened_b_s=listened[1])
                s.add(vote)
                s.flush()
                if len(votes) + 1 == len(trials):
                    _finish(s, participant)
                ack = _ack(s, participant, trial, trials, choice, {*votes, trial.id})
                _mark_served(s, ack.next_trial)
                return ack
        raise early  # after the commit, so a first serving recorded above is kept
    except IntegrityError:
        pass  # a concurrent submit of the same vote won; report what it stored
    with _database_errors(SAVE_FAILED), db.read() as s:
        participant = _participant(s, token)
        trials = _trials_of(s, participant)
        trial = _own_trial(trials, trial_id)
        votes = _choices_of(s, participant)
        if trial.id not in votes:
            raise SaveFailed(SAVE_FAILED)
        return _ack(s, participant, trial, trials, votes[trial.id], set(votes))


def _finish(session: Session, participant: Participant) -> None:
    """Mark a participant finished: completion code and screening status."""
    study = session.get(Study, participant.study_id)
    config = StudyConfig.from_dict(study.config)
    participant.finished_at = utcnow()
    participant.completion_code = config.completion_code or secrets.token_hex(5).upper()
    screening = _screening(config, _vote_rows(session, study, participant_id=participant.id))
    participant.screening = screening_status(participant, screening.get(participant.id))


def completion_code(db: Database, token: str) -> str:
    """The completion code, only once every trial's vote is stored (else Refused)."""
    with _database_errors(), db.read() as s:
        participant = _participant(s, token)
        n_trials = len(_trials_of(s, participant))
        n_votes = len(_voted_trial_ids(s, participant))
        if participant.completion_code is None or n_votes < n_trials:
            raise Refused(f"The study is not finished yet: {n_votes} of {n_trials} answers are stored.")
        return participant.completion_code


def completion_url(db: Database, token: str) -> str:
    """Where to send the finished rater (the study's ``completion_url`` with ``{code}`` replaced by
    their completion code, URL-quoted); ``""`` when the study names none. Refused, like
    :func:`completion_code`, until every vote is stored."""
    code = completion_code(db, token)
    with _database_errors(), db.read() as s:
        url = StudyConfig.from_dict(s.get(Study, _participant(s, token).study_id).config).completion_url
    return url.replace("{code}", quote(code, safe="")) if url else ""


def media_path(db: Database, media_file: str) -> Path:
    """The file behind an opaque media name a TrialView gave out (for the UI's file route)."""
    if not MEDIA_NAME.match(str(media_file)):
        raise NotFound("No such media file.")
    with _database_errors(), db.read() as s:
        row = s.execute(select(Study.media_dir).join(Candidate, Candidate.study_id == Study.id)
                        .where(Candidate.media_file == media_file)).first()
    if row is None:
        raise NotFound("No such media file.")
    return Path(row[0]) / media_file


# ------------------------------------------------------------------------------------ admin side
def list_studies(db: Database) -> list[str]:
    """Names of the studies in the database, oldest first."""
    with _database_errors(), db.read() as s:
        return list(s.scalars(select(Study.name).order_by(Study.id)))


def open_studies(db: Database) -> list[str]:
    """Names of the studies open to new raters, oldest first."""
    with _database_errors(), db.read() as s:
        return list(s.scalars(select(Study.name).where(Study.is_open.is_(True)).order_by(Study.id)))


def media_dirs(db: Database) -> list[Path]:
    """The media folders of every study in ``db`` (for the server's ``allowed_paths``)."""
    with _database_errors(), db.read() as s:
        return sorted({Path(p) for p in s.scalars(select(Study.media_dir))})


def set_open(db: Database, study: str | None, is_open: bool) -> None:
    """Open or close a study for new participants (those already in can finish)."""
    with _database_errors(), db.write() as s:
        _study_by_name(s, study).is_open = bool(is_open)


def study_config(db: Database, study: str | None = None) -> StudyConfig:
    """The stored configuration of a study."""
    with _database_errors(), db.read() as s:
        return StudyConfig.from_dict(_study_by_name(s, study).config)


def progress(db: Database, study: str | None = None) -> StudyProgress:
    """Counts for the admin page: participants started/consented/finished/screened out, votes per pair."""
    with _database_errors(), db.read() as s:
        st = _study_by_name(s, study)
        participants = s.scalars(select(Participant).where(Participant.study_id == st.id)).all()
        planned = s.scalar(select(func.count(func.distinct(Assignment.slot))).where(Assignment.study_id == st.id)) or 0
        replanned = s.scalar(select(func.count(Assignment.id)).where(
            Assignment.study_id == st.id, Assignment.released_at.is_not(None))) or 0
        rows = _vote_rows(s, st)
    screening = _screening(StudyConfig.from_dict(st.config), rows)
    normal = [r for r in rows if r.kind == "normal"]
    by_pair = Counter(" vs ".join(sorted((r.condition_a, r.condition_b))) for r in normal)
    excluded = sum(screening_status(p, screening.get(p.id)) == "excluded" for p in participants)
    return StudyProgress(st.name, st.is_open, int(planned), int(replanned), len(participants),
                         sum(p.consented_at is not None for p in participants),
                         sum(p.finished_at is not None for p in participants),
                         excluded, len(normal), dict(sorted(by_pair.items())))


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _vote_rows(session: Session, study: Study, participant_id: int | None = None,
               include_practice: bool = False) -> list[VoteRow]:
    cand_a, cand_b = aliased(Candidate), aliased(Candidate)
    query = (select(Vote, Trial, Stimulus.name, Stimulus.duration_s, cand_a, cand_b)
             .join(Trial, Vote.trial_id == Trial.id).join(Stimulus, Trial.stimulus_id == Stimulus.id)
             .join(cand_a, Trial.candidate_a_id == cand_a.id).join(cand_b, Trial.candidate_b_id == cand_b.id)
             .where(Vote.study_id == study.id).order_by(Vote.participant_id, Trial.position))
    if participant_id is not None:
        query = query.where(Vote.participant_id == participant_id)
    if not include_practice:
        query = query.where(Trial.kind != "practice")
    rows = []
    for vote, trial, stimulus, duration_s, a, b in session.execute(query):
        winner = a.condition if vote.choice == "A" else b.condition if vote.choice == "B" else "none"
        rows.append(VoteRow(
            study=study.name, participant=vote.participant_id, trial=trial.id, position=trial.position,
            kind=trial.kind, stimulus=stimulus, condition_a=a.condition, condition_b=b.condition,
            track_a=a.track_title, track_b=b.track_title, choice=vote.choice, winner=winner,
            strength=vote.strength, response_ms=vote.response_ms, played_a_to_end=vote.played_a_to_end,
            played_b_to_end=vote.played_b_to_end, both_played=vote.played_a_to_end and vote.played_b_to_end,
            expected_choice=trial.expected_choice, repeat_of=trial.repeat_of, voted_at=_iso(vote.created_at),
            listened_a_s=vote.listened_a_s, listened_b_s=vote.listened_b_s, duration_s=duration_s,
            served_at=_iso(trial.served_at)))
    return rows


def vote_rows(db: Database, study: str | None = None, include_practice: bool = False) -> list[VoteRow]:
    """One :class:`~study.vote_row.VoteRow` per vote, long format, in the order shown."""
    with _database_errors(), db.read() as s:
        return _vote_rows(s, _study_by_name(s, study), include_practice=include_practice)


def participant_rows(db: Database, study: str | None = None) -> list[dict[str, Any]]:
    """One dict per participant (never the secret token); URL parameters as ``url_<name>`` columns,
    for the 16 names the most participants carry, those who answered first
    (:func:`study.rater_input.common_url_param_names`), and all of a participant's, as JSON, in
    ``all_url_params`` (so no join can push a platform's id out of the export)."""
    with _database_errors(), db.read() as s:
        st = _study_by_name(s, study)
        counts = dict(s.execute(select(Vote.participant_id, func.count(Vote.id))
                                .where(Vote.study_id == st.id).group_by(Vote.participant_id)).all())
        query = (select(Participant, Assignment.slot, Assignment.seed, Assignment.released_at, func.count(Trial.id))
                 .join(Assignment, Assignment.participant_id == Participant.id, isouter=True)
                 .join(Trial, Trial.assignment_id == Assignment.id, isouter=True)
                 .where(Participant.study_id == st.id)
                 .group_by(Participant.id, Assignment.slot, Assignment.seed, Assignment.released_at)
                 .order_by(Participant.id))
        screening = _screening(StudyConfig.from_dict(st.config), _vote_rows(s, st))
        found = s.execute(query).all()
        params = {p.id: rater_input.stored_url_params(p.url_params) for p, *_ in found}
        columns = rater_input.common_url_param_names([params[p.id] for p, *_ in found],
                                                     [counts.get(p.id, 0) > 0 for p, *_ in found])
        rows = []
        for p, slot, seed, released_at, n_trials in found:
            row = {"study": st.name, "participant": p.id, "slot": slot, "seed": seed,
                   "slot_replanned_at": _iso(released_at), "joined_at": _iso(p.created_at),
                   "consented_at": _iso(p.consented_at), "finished_at": _iso(p.finished_at),
                   "screening": screening_status(p, screening.get(p.id)), "completion_code": p.completion_code or "",
                   "trials": n_trials, "answers": counts.get(p.id, 0),
                   "all_url_params": json.dumps(params[p.id], ensure_ascii=False, separators=(",", ":"))}
            row.update({f"url_{name}": params[p.id][name] for name in columns if name in params[p.id]})
            rows.append(row)
        return rows


def analyze(db: Database, study: str | None = None, n_boot: int = 1000) -> Analysis:
    """The study's analysis (see :mod:`study.stats`) with its configured pairs, tie rule and screening."""
    with _database_errors(), db.read() as s:
        st = _study_by_name(s, study)
        rows = _vote_rows(s, st)
    config = StudyConfig.from_dict(st.config)
    provenance = analysis_provenance(st.name, config.seed, n_boot, config.screening, config.tie_rule)
    return analyze_votes(rows, config.conditions, config.condition_pairs, config.headline_pair, config.tie_rule,
                         config.screening.max_attention_failure_rate, config.screening.min_repeat_consistency,
                         n_boot=n_boot, seed=config.seed, min_listened_fraction=config.screening.min_listened_fraction,
                         min_response_ms=config.screening.min_response_ms, provenance=provenance)
