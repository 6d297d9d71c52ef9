"""Accounts, terminals, invites, login sessions and the audit log.

Secrets (device credentials, login cookies) are random tokens; only their SHA-256 is stored.
Invite tokens are signed with the service's secret key and bound to one invite row, which can
be revoked. Password hashing (argon2) runs in a thread: it takes tens of milliseconds.

The package is split by concern: :mod:`~records.accounts.officials` (accounts and passwords),
:mod:`~records.accounts.logins` (login sessions and the throttle),
:mod:`~records.accounts.terminals`, :mod:`~records.accounts.invites` and
:mod:`~records.accounts.audit_log`. Callers use the names re-exported here
(``from records import accounts``; ``accounts.authenticate(...)``).
"""

from records.accounts.audit_log import (
    AuditRecord,
    audit,
    audit_entries,
)
from records.accounts.invites import (
    INVITE_PREFIX,
    InviteInfo,
    create_invite,
    get_valid_invite,
    resolve_invite,
    revoke_invite,
    sign_invite,
    verify_invite_token,
)
from records.accounts.logins import (
    LoginInfo,
    close_login,
    open_login,
    resolve_login,
)
from records.accounts.officials import (
    MAX_PASSWORD,
    USERNAME_RE,
    AccountInfo,
    authenticate,
    check_password,
    create_account,
    display_names,
    find_account,
    get_account,
    hash_password,
    list_leaders,
    set_password,
    sha256_hex,
    validate_password,
    validate_username,
)
from records.accounts.terminals import (
    TERMINAL_PREFIX,
    TerminalInfo,
    create_terminal,
    get_terminal,
    resolve_terminal,
    revoke_terminal,
)

__all__ = [
    "AccountInfo",
    "AuditRecord",
    "INVITE_PREFIX",
    "InviteInfo",
    "LoginInfo",
    "MAX_PASSWORD",
    "TERMINAL_PREFIX",
    "TerminalInfo",
    "USERNAME_RE",
    "audit",
    "audit_entries",
    "authenticate",
    "check_password",
    "close_login",
    "create_account",
    "create_invite",
    "create_terminal",
    "display_names",
    "find_account",
    "get_account",
    "get_terminal",
    "get_valid_invite",
    "hash_password",
    "list_leaders",
    "open_login",
    "resolve_invite",
    "resolve_login",
    "resolve_terminal",
    "revoke_invite",
    "revoke_terminal",
    "set_password",
    "sha256_hex",
    "sign_invite",
    "validate_password",
    "validate_username",
    "verify_invite_token",
]
