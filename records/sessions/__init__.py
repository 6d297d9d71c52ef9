"""Sessions, participants, session events, recordings, announcements and the duty roster.

The database is written first (DESIGN.md decision 4): a session row exists before media
starts, joins and leaves are appended as they happen, and :func:`mark_interrupted` turns
sessions that a crash left live into ``interrupted`` at start, keeping everything written.

The package is split by concern: :mod:`~records.sessions.values` (what the functions take and
return), :mod:`~records.sessions.core` (sessions and participants through the ORM),
:mod:`~records.sessions.recording_files`, :mod:`~records.sessions.announcements` (with the duty
roster), :mod:`~records.sessions.statistics` and :mod:`~records.sessions.hotpath` (the hub's
hello, join and leave as Core statements, one transaction each). Callers use the names
re-exported here (``from records import sessions``; ``sessions.join_session(...)``).
"""

from records.sessions.announcements import (
    AnnouncementInfo,
    AnnouncementRecord,
    active_announcements,
    create_announcement,
    duty_between,
    get_announcement,
    leader_on_duty,
    list_announcements,
    set_duty,
    withdraw_announcement,
)
from records.sessions.core import (
    accept_visit,
    add_participant,
    attendance_counts,
    create_session,
    get_participant,
    get_session,
    get_session_for,
    list_sessions,
    log_event,
    mark_interrupted,
    open_session_ids_of,
    open_visit_of_terminal,
    orphaned_participants,
    participant_joined,
    participant_left,
    session_events,
    session_participants,
    set_participant,
    set_state,
    touch_sessions,
    update_session,
    waiting_visits,
)
from records.sessions.hotpath import (
    JoinDecision,
    JoinView,
    LeaveView,
    TerminalHello,
    attendance,
    join_session,
    leave_session,
    orphans,
    terminal_hello,
    touch_live_sessions,
)
from records.sessions.recording_files import (
    RecordingInfo,
    get_recording,
    recordings_of,
    upsert_recording,
)
from records.sessions.statistics import (
    SessionStatistics,
    session_statistics,
)
from records.sessions.values import (
    TRANSITIONS,
    ParticipantInfo,
    SessionInfo,
)

__all__ = [
    "attendance",
    "orphans",
    "touch_live_sessions",
    "AnnouncementInfo",
    "AnnouncementRecord",
    "JoinDecision",
    "JoinView",
    "LeaveView",
    "ParticipantInfo",
    "RecordingInfo",
    "SessionInfo",
    "SessionStatistics",
    "TRANSITIONS",
    "TerminalHello",
    "accept_visit",
    "active_announcements",
    "add_participant",
    "attendance_counts",
    "create_announcement",
    "create_session",
    "duty_between",
    "get_announcement",
    "get_participant",
    "get_recording",
    "get_session",
    "get_session_for",
    "join_session",
    "leader_on_duty",
    "leave_session",
    "list_announcements",
    "list_sessions",
    "log_event",
    "mark_interrupted",
    "open_session_ids_of",
    "open_visit_of_terminal",
    "orphaned_participants",
    "participant_joined",
    "participant_left",
    "recordings_of",
    "session_events",
    "session_participants",
    "session_statistics",
    "set_duty",
    "set_participant",
    "set_state",
    "terminal_hello",
    "touch_sessions",
    "update_session",
    "upsert_recording",
    "waiting_visits",
    "withdraw_announcement",
]
