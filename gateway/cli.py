"""``petition-gateway``: the console entry point.

Commands: ``serve``, ``worker``, ``db upgrade``, ``orgs import``, ``accounts create``,
``terminals create``, ``invites create``, ``recordings verify``, ``calendar import``,
``reports freeze``, ``reports check``, ``data-key rotate``, ``data-key retire``. A bad
setting or bad input prints one line naming the problem and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import getpass
import json
import logging
import secrets
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from config.errors import ConfigError, GatewayError
from config.settings import (
    PACKAGE_DIR,
    Settings,
    build_settings,
    data_key_path,
    new_account_password,
    with_data_key,
    with_secret_key,
    write_data_keyring,
)
from records import accounts, items, recordings, sessions
from records.calendar import load_calendar, notice_year, notices_in
from records.deadlines import CHINA_TZ
from records.enums import ParticipantRole, Role
from records.frozen_reports import check_frozen, freeze_report
from records.keyring import DataKeyring, new_key_entry
from records.notices import import_notice, imported_notices, recompute_open_deadlines
from records.store import Store

logger = logging.getLogger("petition-gateway")

EXAMPLE_ORGS = PACKAGE_DIR / "orgs" / "example.toml"


def _operator() -> str:
    """Who runs an audited command, when ``--by`` does not say: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="petition-gateway", description="Video petition gateway")
    parser.add_argument(
        "--config", type=Path, help="a TOML settings file (see config/default.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hub (embedded default: SQLite, in-memory bus)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--demo", action="store_true", help="import the example org tree and create demo logins"
    )
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations on start")

    worker = sub.add_parser("worker", help="run a media worker on the Redis bus")
    worker.add_argument("--id", help="worker id (default: random)")

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations")

    orgs = sub.add_parser("orgs", help="org tree commands")
    orgs_sub = orgs.add_subparsers(dest="orgs_command", required=True)
    imp = orgs_sub.add_parser("import", help="import an org tree file (idempotent)")
    imp.add_argument("file", type=Path)

    cal = sub.add_parser("calendar", help="holiday calendar")
    cal_sub = cal.add_subparsers(dest="calendar_command", required=True)
    cal_imp = cal_sub.add_parser(
        "import",
        help="import a year's official holiday notice (CN-<year>.toml, the format of "
        "config/holidays/) and recompute open deadlines",
    )
    cal_imp.add_argument("file", type=Path)
    cal_imp.add_argument("--by", default=_operator(), help="who imports it (audit log)")

    rep = sub.add_parser("reports", help="annual reports as filed")
    rep_sub = rep.add_subparsers(dest="reports_command", required=True)
    freeze = rep_sub.add_parser(
        "freeze", help="compute a year's district report as of its end and store it as filed"
    )
    freeze.add_argument("--year", type=int, required=True)
    freeze.add_argument("--by", default=_operator(), help="who files it (audit log)")
    check = rep_sub.add_parser(
        "check", help="recompute a frozen report and show every figure that moved"
    )
    check.add_argument("id", type=int)

    dkey = sub.add_parser("data-key", help="the key sealing identity numbers (<data.dir>/data.key)")
    dkey_sub = dkey.add_subparsers(dest="data_key_command", required=True)
    rotate = dkey_sub.add_parser(
        "rotate",
        help="add a new sealing key and re-seal every stored identity number with it (old "
        "keys stay to open values sealed meanwhile; restart the hubs, then retire)",
    )
    rotate.add_argument("--by", default=_operator(), help="who rotates (audit log)")
    retire = dkey_sub.add_parser(
        "retire", help="drop the old keys no stored identity number is sealed with any more"
    )
    retire.add_argument("--by", default=_operator(), help="who retires (audit log)")

    acc = sub.add_parser("accounts", help="official accounts")
    acc_sub = acc.add_subparsers(dest="accounts_command", required=True)
    create = acc_sub.add_parser(
        "create", help="create an account (password from GATEWAY_NEW_PASSWORD or generated)"
    )
    create.add_argument("--username", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--unit", required=True, help="unit code")
    create.add_argument("--role", action="append", required=True, choices=[r.value for r in Role])

    term = sub.add_parser("terminals", help="community terminals")
    term_sub = term.add_subparsers(dest="terminals_command", required=True)
    tcreate = term_sub.add_parser(
        "create", help="create a terminal and print its device credential once"
    )
    tcreate.add_argument("--unit", required=True, help="community unit code")
    tcreate.add_argument("--name", required=True)

    inv = sub.add_parser("invites", help="invites into a session")
    inv_sub = inv.add_subparsers(dest="invites_command", required=True)
    icreate = inv_sub.add_parser("create", help="create an invite link for a session")
    icreate.add_argument("--session", required=True)
    icreate.add_argument("--role", required=True, choices=[r.value for r in ParticipantRole])
    icreate.add_argument("--name", required=True)
    icreate.add_argument("--ttl-hours", type=float, default=24.0)

    rec = sub.add_parser("recordings", help="recordings")
    rec_sub = rec.add_subparsers(dest="recordings_command", required=True)
    verify = rec_sub.add_parser(
        "verify", help="re-hash files and the manifest chain; report mismatches"
    )
    verify.add_argument("--session", help="re-hash only this session's files")
    verify.add_argument("--json", action="store_true", help="print the report as one JSON object")
    verify.add_argument(
        "--dir", type=Path, help="the recordings directory, e.g. a copy (default: recording.dir)"
    )
    verify.add_argument(
        "--head",
        metavar="HASH:LENGTH",
        help="verify offline against a chain head written down earlier (no database is read)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        overrides: dict[str, dict[str, Any]] = {}
        if args.command == "serve":
            if args.host:
                overrides.setdefault("server", {})["host"] = args.host
            if args.port is not None:
                overrides.setdefault("server", {})["port"] = args.port
        settings = build_settings(args.config, overrides=overrides)
        configure_logging(settings.log_level, settings.log_format)
        return _run(args, settings)
    except ConfigError as exc:
        print(f"petition-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"petition-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic in typeshed only
    """Writes to whatever ``sys.stderr`` is when a record is logged.

    Commands run in-process (by tests, say) outlive the stream they were configured with.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str, fmt: str) -> None:
    """Text logs for people, JSON lines for log collectors (``server.log_format``)."""
    handler = _StderrHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(settings, demo=args.demo, migrate=not args.no_migrate)
    if args.command == "worker":
        from gateway.worker import run_worker  # noqa: PLC0415  (loads aiortc)

        if not settings.redis_url:
            raise ConfigError(
                "redis.url is empty: a separate worker process needs GATEWAY_REDIS_URL"
            )
        asyncio.run(run_worker(settings, args.id or f"worker-{secrets.token_hex(4)}"))
        return 0
    if args.command == "recordings" and args.head:
        return _verify_offline(settings, args)
    if args.command == "data-key" and settings.data_key:
        raise ConfigError(
            "security.data_key is set in the configuration: data-key commands rewrite "
            f"{str(data_key_path(settings))!r}; move the key there and unset the setting"
        )
    settings = with_data_key(with_secret_key(settings))
    return int(asyncio.run(_admin(args, settings)))


async def _admin(args: argparse.Namespace, settings: Settings) -> int:
    store = Store(settings.database_url)
    try:
        if args.command == "db":
            await store.db.upgrade()
            print("database is at the newest revision")
            return 0
        await store.start(migrate=True)
        if args.command == "orgs":
            result = await store.import_org_file(args.file)
            print(
                f"org units: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.deactivated} deactivated"
            )
            return 0
        if args.command == "accounts":
            unit = store.tree.by_code.get(args.unit)
            if unit is None:
                raise ConfigError(f"--unit {args.unit!r}: no such unit code")
            password = new_account_password() or secrets.token_urlsafe(12)
            async with store.transaction() as tx:
                account = await accounts.create_account(
                    tx, args.username, args.name, password, unit.id, [Role(r) for r in args.role]
                )
                await accounts.audit(tx, "cli", "account_create", "account", str(account.id))
            print(
                f"account {account.username} (id {account.id}) in {unit.name}; password: {password}"
            )
            return 0
        if args.command == "terminals":
            unit = store.tree.by_code.get(args.unit)
            if unit is None:
                raise ConfigError(f"--unit {args.unit!r}: no such unit code")
            async with store.transaction() as tx:
                terminal, credential = await accounts.create_terminal(tx, args.name, unit.id)
                await accounts.audit(tx, "cli", "terminal_create", "terminal", str(terminal.id))
            print(f"terminal {terminal.id} {terminal.name} in {unit.name}")
            print(f"device credential (shown once): {credential}")
            print(f"kiosk URL: /kiosk#token={credential}")
            return 0
        if args.command == "invites":
            async with store.transaction() as tx:
                invite, token = await accounts.create_invite(
                    tx,
                    settings.secret_key,
                    args.session,
                    ParticipantRole(args.role),
                    args.name,
                    None,
                    None,
                    dt.timedelta(hours=args.ttl_hours),
                )
                await accounts.audit(tx, "cli", "invite_create", "session", args.session)
            expires = invite.expires_at.isoformat()
            print(f"invite {invite.id} for session {args.session}, expires {expires}")
            print(f"link: /join#invite={token}")
            return 0
        if args.command == "recordings":
            return await _verify(settings, store, args)
        if args.command == "calendar":
            return await _import_calendar(settings, store, args)
        if args.command == "reports":
            return await _reports(store, args)
        if args.command == "data-key":
            return await _data_key(settings, store, args)
    finally:
        await store.close()
    return 2


async def _import_calendar(settings: Settings, store: Store, args: argparse.Namespace) -> int:
    """Store a year's notice for every hub, audit it, recompute the open deadlines."""
    path: Path = args.file
    year = notice_year(path.name)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    holiday_dir = settings.holidays_dir
    async with store.transaction() as tx:
        known = await imported_notices(tx)
        file_notices = await asyncio.to_thread(notices_in, holiday_dir)
        info = await import_notice(
            tx, year, path.name, text, imported_by=args.by, shipped=[*file_notices, *known]
        )
        calendar = await asyncio.to_thread(load_calendar, holiday_dir, await imported_notices(tx))
        changes = await recompute_open_deadlines(tx, calendar, year=year)
        await accounts.audit(
            tx,
            f"cli:{args.by}",
            "calendar_import",
            "calendar_notice",
            str(info.id),
            detail={
                "year": year,
                "file": path.name,
                "source": info.source,
                "sha256": info.sha256,
                "deadlines_moved": len(changes),
            },
        )
    print(f"holiday notice for {year} imported (#{info.id}, sha256 {info.sha256[:16]}…)")
    print(f"open deadlines moved: {len(changes)}")
    for c in changes[:20]:
        print(f"  item {c.item_id} {c.what}: {c.before} -> {c.after}")
    print("restart the hubs one by one to use it for new deadlines")
    return 0


async def _reports(store: Store, args: argparse.Namespace) -> int:
    """Freeze a year's report, or check a frozen one (exit 1 when it no longer holds)."""
    if args.reports_command == "freeze":
        start = dt.date(args.year, 1, 1)
        async with store.transaction() as tx:
            frozen = await freeze_report(
                tx, start=start, end=start.replace(year=args.year + 1), frozen_by=None
            )
            await accounts.audit(
                tx,
                f"cli:{args.by}",
                "report_freeze",
                "frozen_report",
                str(frozen.id),
                detail={"year": args.year, "sha256": frozen.sha256},
            )
        r = frozen.report
        print(
            f"report {frozen.id} for {args.year} as of "
            f"{r.as_of.astimezone(CHINA_TZ).isoformat()}: received "
            f"{r.received}, concluded {r.concluded} ({r.completion_rate}); sha256 {frozen.sha256}"
        )
        return 0
    async with store.transaction() as tx:
        result = await check_frozen(tx, args.id)
        await accounts.audit(
            tx,
            "cli",
            "report_check",
            "frozen_report",
            str(args.id),
            outcome="ok" if result.intact and result.reproduced else "failed",
            detail={"intact": result.intact, "differences": list(result.differences[:50])},
        )
    print(f"stored text matches its hash: {'yes' if result.intact else 'NO'}")
    print(f"recomputed figures identical: {'yes' if result.reproduced else 'no'}")
    for line in result.differences:
        print(f"  {line}")
    return 0 if result.intact and result.reproduced else 1


async def _data_key(settings: Settings, store: Store, args: argparse.Namespace) -> int:
    """Rotate: new sealing key first in the file, then re-seal in one transaction. Retire.

    The file is written before the database: if the re-sealing fails, the new key is in the
    ring unused and the old keys still open everything; nothing is ever sealed with a key
    the file does not hold.
    """
    old = DataKeyring.parse(settings.data_key)
    if args.data_key_command == "retire":
        async with store.transaction() as tx:
            in_use = await items.data_key_ids_in_use(tx)
            kept = tuple(
                (kid, key) for n, (kid, key) in enumerate(old.keys) if n == 0 or kid in in_use
            )
            kept_ids = [kid for kid, _ in kept]
            dropped = [kid for kid, _ in old.keys if kid not in kept_ids]
            await accounts.audit(
                tx,
                f"cli:{args.by}",
                "data_key_retire",
                "data_key",
                old.sealing_key_id,
                detail={"retired": dropped, "kept": kept_ids},
            )
            if dropped:
                await asyncio.to_thread(write_data_keyring, settings, DataKeyring(kept).text())
        print(
            f"retired keys: {', '.join(dropped) or 'none'}; kept: {', '.join(k for k, _ in kept)}"
        )
        return 0
    key_id = "k" + dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    if any(kid == key_id for kid, _ in old.keys):
        raise ConfigError(f"data key {key_id!r} exists already; try again in a second")
    entry = DataKeyring.parse(new_key_entry(key_id))
    ring = DataKeyring(entry.keys + old.keys)
    path = await asyncio.to_thread(write_data_keyring, settings, ring.text())
    async with store.transaction() as tx:
        result = await items.rotate_data_key(tx, ring)
        await accounts.audit(
            tx,
            f"cli:{args.by}",
            "data_key_rotate",
            "data_key",
            key_id,
            detail={
                "previous": [kid for kid, _ in old.keys],
                "sealed": result.sealed,
                "resealed": result.resealed,
            },
        )
    print(f"new sealing key {key_id} written to {path}")
    print(f"identity numbers sealed from clear: {result.sealed}, re-sealed: {result.resealed}")
    print("restart the hubs one by one, then run `petition-gateway data-key retire`")
    return 0


async def _verify(settings: Settings, store: Store, args: argparse.Namespace) -> int:
    """Re-hash every recording; compare the disk, the chain and the database."""
    from recorder.verify import Anchor, Expected, check  # noqa: PLC0415

    async with store.transaction() as tx:
        data = await recordings.verify_data(tx)
    expected = Expected(
        head=None if data.head is None else Anchor(*data.head), runs=data.runs, files=data.files
    )
    root = args.dir or settings.recordings_dir
    report = await asyncio.to_thread(check, root, args.session, expected)
    return _print_report(report, args.json, "the database")


def _verify_offline(settings: Settings, args: argparse.Namespace) -> int:
    """Verify a recordings directory (a copy, say) against a chain head noted earlier."""
    from recorder.verify import Anchor, Expected, check  # noqa: PLC0415

    chain_hash, sep, length = str(args.head).partition(":")
    if not sep or not length.isdigit() or len(chain_hash) != 64:
        raise ConfigError(f"--head {args.head!r}: expected HASH:LENGTH as verify printed it")
    expected = Expected(head=Anchor(chain_hash, int(length)))
    report = check(args.dir or settings.recordings_dir, args.session, expected)
    return _print_report(report, args.json, "the head given")


def _print_report(report: Any, as_json: bool, anchor: str) -> int:
    if as_json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        for m in report.problems:
            print(f"MISMATCH {m.problem} {m.path or ''}: {m.detail}")
        head = report.head
        print(
            f"chain head: {head.chain_hash}:{head.length}" if head else "chain head: (empty chain)"
        )
        print(
            f"{report.sessions} sessions, {report.runs} runs, {report.files} files re-hashed; "
            f"{len(report.open_runs)} runs still open; compared with {anchor}"
        )
        if report.problems:
            print(f"{len(report.problems)} mismatches")
        else:
            print("all recordings and the manifest chain verify")
    return 1 if report.problems else 0


DEMO_ACCOUNTS = (
    ("admin", "系统管理员", "QX-XFJ", (Role.ADMIN, Role.AUDITOR)),
    ("reception", "接访员 王芳", "QX-XFJ-JDZX", (Role.RECEPTION,)),
    ("leader", "值班领导 李强", "QX-XFJ", (Role.LEADER,)),
    ("mediator", "调解员 赵敏", "QX-SFJ", (Role.MEDIATOR,)),
    ("trainer", "培训讲师 陈静", "QX-XFJ", (Role.TRAINER,)),
    ("housing", "住建局 刘洋", "QX-ZJJ", (Role.RECEPTION,)),
    ("dongfeng", "东风街道 孙丽", "QX-DFJD", (Role.RECEPTION, Role.LEADER)),
    ("agent", "和平社区 周红", "QX-DFJD-HPSQ", (Role.AGENT,)),
)


async def _demo(settings: Settings) -> list[str]:
    """Import the example tree, (re)create demo accounts and one terminal per community."""
    store = Store(settings.database_url)
    lines = []
    try:
        await store.start(migrate=True)
        await store.import_org_file(EXAMPLE_ORGS)
        async with store.transaction() as tx:
            from records.enums import UnitLevel  # noqa: PLC0415

            for username, name, code, roles in DEMO_ACCOUNTS:
                password = secrets.token_urlsafe(9)
                unit = store.tree.by_code[code]
                existing = await accounts.find_account(tx, username)
                if existing is None:
                    await accounts.create_account(tx, username, name, password, unit.id, roles)
                else:
                    await accounts.set_password(tx, existing.id, password)
                lines.append(
                    f"  official  {username:<10} password {password:<14} {name} @ {unit.name}"
                )
            if (
                await sessions.leader_on_duty(
                    tx, dt.date.today(), store.tree.by_code["QX-XFJ-JDZX"].id
                )
                is None
            ):
                leader = await accounts.find_account(tx, "leader")
                if leader is not None:
                    await sessions.set_duty(
                        tx, dt.date.today(), store.tree.by_code["QX-XFJ-JDZX"].id, leader.id
                    )
            for unit in store.tree.units.values():
                if unit.level is UnitLevel.COMMUNITY and unit.active:
                    _terminal, credential = await accounts.create_terminal(
                        tx, f"{unit.name}终端", unit.id
                    )
                    lines.append(f"  terminal  {unit.name:<8} /kiosk#token={credential}")
    finally:
        await store.close()
    return lines


def _serve(settings: Settings, *, demo: bool, migrate: bool) -> int:
    from gateway.app import create_app, run_app  # noqa: PLC0415

    settings = with_secret_key(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ssl_context = None
    if not settings.tls and demo and settings.host not in ("127.0.0.1", "localhost", "::1"):
        from gateway.tls import self_signed  # noqa: PLC0415

        cert, key, fingerprint = self_signed(settings.data_dir / "tls", settings.host)
        print(f"serving HTTPS with a self-signed certificate, SHA-256 fingerprint {fingerprint}")
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(cert, key)
    elif settings.tls:
        assert settings.tls_cert is not None
        assert settings.tls_key is not None
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if demo:
        lines = asyncio.run(_demo(settings))
        print("demo logins (example data; new passwords on every --demo start):")
        print("\n".join(lines))
    sys.stdout.flush()
    app = create_app(settings, migrate=migrate)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_app(app, settings, ssl_context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
