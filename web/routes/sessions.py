"""Sessions: the list, one session, recordings, the kiosk's receipt, trainings to watch.

An invitee reads a session as its join snapshot shows it.
"""

from __future__ import annotations

import contextlib
import logging

from aiohttp import web

from config.errors import AccessDenied, NotFound, ValidationError
from records import accounts, enums, items, lookup, policy, sessions
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    SessionKind,
    SessionState,
)
from records.item_periods import is_provisional
from records.policy import Action
from records.principals import Principal
from web import keys, rest, wire
from web.auth import (
    authorize,
    principal_of,
    remote_of,
    require_official,
)
from web.errors import error_response
from web.input import query_int
from web.rest import operation, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/sessions")
@operation(
    "Sessions of the caller's scope, newest first",
    tag="sessions",
    response=wire.Sessions,
    query=wire.SessionsQuery,
)
async def list_sessions(request: web.Request) -> web.Response:
    """Sessions of the caller's scope, newest first; filters: state, kind, limit."""
    p = require_official(request)
    store = request.app[keys.STORE]
    tree = store.tree
    state = request.query.get("state")
    kind = request.query.get("kind")
    if state is not None and state not in {s.value for s in SessionState}:
        raise ValidationError(f"state {state!r} unknown")
    if kind is not None and kind not in {k.value for k in SessionKind}:
        raise ValidationError(f"kind {kind!r} unknown")
    limit = query_int(request, "limit", lo=1, hi=500, default=100)
    assert p.unit_id is not None
    unit_ids = None if tree.sees_everything(p.unit_id) else tree.subtree(p.unit_id)
    async with store.transaction() as tx:
        rows = await sessions.list_sessions(
            tx,
            unit_ids=unit_ids,
            states=[SessionState(state)] if state else None,
            kinds=[SessionKind(kind)] if kind else None,
            limit=limit,
        )
    return reply(wire.Sessions(sessions=[wire.Session.of(s) for s in rows]))


async def load_session(request: web.Request, action: Action) -> sessions.SessionInfo:
    """Read the session named in the path and check ``action`` on it (refusals audited)."""
    session_id = request.match_info["session_id"]
    if not session_id.isalnum() or len(session_id) > 32:
        raise NotFound(f"session {session_id!r} not found")
    async with request.app[keys.STORE].transaction() as tx:
        s = await sessions.get_session(tx, session_id)
    await authorize(request, action, s.target())
    return s


@routes.get("/api/sessions/{session_id}")
@operation(
    "One session with participants, events and recordings (audit-logged); an admitted "
    "invitee gets its join snapshot instead",
    tag="sessions",
    response=wire.SessionDetail,
    path=rest.SessionPath,
)
async def get_session(request: web.Request) -> web.Response:
    """One session with participants, events and recordings; the read is audit-logged.

    An invite holder reads what its join snapshot on ``/ws`` shows, and only while admitted.
    """
    s = await load_session(request, Action.VIEW_SESSION)
    p = principal_of(request)
    if p.kind is PrincipalKind.INVITE:
        return await _invitee_view(request, p, s)
    async with request.app[keys.STORE].transaction() as tx:
        events = await sessions.session_events(tx, s.id)
        recs = await sessions.recordings_of(tx, s.id)
        await accounts.audit(tx, p.ref, "view_session", "session", s.id, remote=remote_of(request))
    ids = {r.path: r.id for r in recs}
    return reply(
        wire.SessionDetail(
            **wire.Session.fields_of(s),
            participants=[wire.Participant.of(q) for q in s.participants],
            events=events,
            recordings=[wire.Recording.of(r, ids) for r in recs],
        )
    )


async def _invitee_view(
    request: web.Request, p: Principal, s: sessions.SessionInfo
) -> web.Response:
    """The session as its join snapshot shows it to an admitted invitee; 403 otherwise.

    No events (chat history included), no recordings, no lobby, no linked item: an invitee
    sees on ``/ws`` only what happens while it is in the room, and only once admitted.
    """
    mine = [q for q in s.participants if q.principal_ref == p.ref and q.left_at is None]
    store = request.app[keys.STORE]
    if not mine or mine[-1].admission is not AdmissionState.ADMITTED:
        state = mine[-1].admission.value if mine else "not joined"
        async with store.transaction() as tx:
            await accounts.audit(
                tx,
                p.ref,
                "view_session",
                "session",
                s.id,
                remote=remote_of(request),
                outcome="denied",
                detail={"reason": f"invitee not admitted ({state})"},
            )
        return error_response(
            403,
            "not_admitted",
            f"invite {p.id} is {state} in session {s.id}: it may read the session once admitted",
        )
    me = mine[-1]
    others = [
        q
        for q in s.participants
        if q.left_at is None
        and q.joined_at is not None
        and q.admission is AdmissionState.ADMITTED
        and (s.kind is not SessionKind.TRAINING or q.role is not ParticipantRole.VIEWER or q is me)
    ]
    async with store.transaction() as tx:
        await accounts.audit(tx, p.ref, "view_session", "session", s.id, remote=remote_of(request))
    return reply(
        wire.InviteeSession(
            id=s.id,
            kind=s.kind,
            state=s.state,
            unit_id=s.unit_id,
            title=s.title,
            category=s.category,
            recorded=s.recorded,
            created_at=s.created_at,
            participant=wire.SnapshotParticipant.of(me),
            participants=[wire.SnapshotParticipant.of(q) for q in others],
        )
    )


@routes.get("/api/recordings/{recording_id}/file")
@operation(
    "A recorded file (Range supported; every playback audit-logged)",
    tag="sessions",
    path=wire.RecordingPath,
    media={"video/webm": rest.BINARY},
)
async def recording_file(request: web.Request) -> web.StreamResponse:
    """Serve a recorded file with Range support; allowed by scope; every playback audited."""
    try:
        recording_id = int(request.match_info["recording_id"])
    except ValueError as exc:
        raise NotFound("recording not found") from exc
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        rec = await sessions.get_recording(tx, recording_id)
        s = await sessions.get_session(tx, rec.session_id)
    p = await authorize(request, Action.VIEW_RECORDING, s.target())
    if rec.deleted:
        raise NotFound(f"recording {recording_id} was deleted by the retention policy")
    root = request.app[keys.SETTINGS].recordings_dir.resolve()
    path = (root / rec.path).resolve()
    if root not in path.parents or not path.is_file():
        raise NotFound(f"recording {recording_id}: file missing")
    async with store.transaction() as tx:
        await accounts.audit(
            tx,
            p.ref,
            "playback",
            "recording",
            str(recording_id),
            remote=remote_of(request),
            detail={"session": s.id, "range": request.headers.get("Range", "")},
        )
    content_type = {".webm": "video/webm", ".mp4": "video/mp4"}.get(path.suffix, "video/x-matroska")
    return web.FileResponse(path, headers={"Content-Type": content_type})


#: deadlines that are the petitioner's windows, not the unit's duty: not printed as "next step"
_PETITIONER_WINDOWS = frozenset({"review_request", "rereview_request"})


@routes.get("/api/sessions/{session_id}/receipt")
@operation(
    "A visit's receipt, for the terminal that made it only (403 for anyone else, 404 for "
    "another terminal's session): lookup code, reference, category key and the item's next "
    "unit deadline (audit-logged)",
    tag="sessions",
    response=wire.Receipt,
    path=rest.SessionPath,
)
async def visit_receipt(request: web.Request) -> web.Response:
    """The receipt of a visit, for the terminal that made it and for nobody else.

    The terminal may not read items (they hold personal data), yet the resident's receipt is
    for the item's lookup code; this route gives the terminal exactly what the receipt prints:
    the lookup code, the reference, the category and the next deadline of the item registered
    or linked during the call. Labels are keys (``category``, ``due.what``); the page
    translates them.
    """
    p = principal_of(request)
    session_id = request.match_info["session_id"]
    if not session_id.isalnum() or len(session_id) > 32:
        raise NotFound(f"session {session_id!r} not found")
    if p.kind is not enums.PrincipalKind.TERMINAL:
        raise AccessDenied("only the terminal that made a visit reads its receipt")
    store = request.app[keys.STORE]
    async with store.transaction() as tx:
        s = await sessions.get_session(tx, session_id)
        if s.kind is not SessionKind.VISIT or s.terminal_id != int(p.id):
            # the same answer as a session that does not exist: nothing to learn by guessing
            raise NotFound(f"session {session_id!r} not found")
        item = None
        if s.item_id is not None:
            with contextlib.suppress(NotFound):
                item = await items.get_item(tx, s.item_id)
        await accounts.audit(tx, p.ref, "view_receipt", "session", s.id, remote=remote_of(request))
    return reply(
        wire.Receipt(
            session=s.id,
            reference=s.id[:8].upper(),
            state=s.state,
            ended_at=s.ended_at,
            category=(item.category if item and item.category else None) or s.category or None,
            rating=s.rating,
            lookup_code=lookup.format_code(item.lookup_code) if item else None,
            item_state=item.state if item else None,
            due=(
                wire.ReceiptDue(
                    on=item.due_on,
                    what=item.due_what,
                    provisional=is_provisional(
                        request.app[keys.CALENDAR], item.due_on, item.due_what
                    ),
                )
                if item is not None
                and item.due_on is not None
                and item.due_what not in _PETITIONER_WINDOWS
                else None
            ),
        )
    )


@routes.get("/api/trainings")
@operation(
    "Live and upcoming trainings the caller (an official or a terminal) may join, live first "
    "(403 for invites)",
    tag="sessions",
    response=wire.Trainings,
)
async def open_trainings(request: web.Request) -> web.Response:
    """Live and upcoming trainings the caller may join, live first, newest first.

    For officials and community terminals alike: a training is broadcast down the tree
    (records.policy), so a terminal sees those of its community and the units above it. The
    pages list these instead of asking anyone to type a session id.
    """
    p = principal_of(request)
    if p.kind is enums.PrincipalKind.INVITE:
        raise AccessDenied("an invite is bound to its one session")
    store = request.app[keys.STORE]
    tree = store.tree
    async with store.transaction() as tx:
        rows = await sessions.list_sessions(
            tx,
            unit_ids=None,
            states=[SessionState.LIVE, SessionState.WAITING],
            kinds=[SessionKind.TRAINING],
            limit=200,
        )
    mine = [s for s in rows if policy.decide(p, Action.JOIN_SESSION, s.target(), tree).allowed]
    mine.sort(key=lambda s: (s.state is not SessionState.LIVE, -s.created_at.timestamp()))
    return reply(
        wire.Trainings(
            trainings=[
                wire.Training(
                    id=s.id,
                    reference=s.id[:8].upper(),
                    title=s.title,
                    state=s.state,
                    unit_id=s.unit_id,
                    unit_name=unit.name if (unit := tree.get(s.unit_id)) else None,
                    created_at=s.created_at,
                    started_at=s.started_at,
                )
                for s in mine
            ]
        )
    )
