from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import PACKAGE_DIR, build_settings, new_account_password
from gateway.cli import main


def test_defaults_are_the_embedded_default(tmp_path: Path) -> None:
    s = build_settings(environ={}, overrides={"data": {"dir": str(tmp_path)}})
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    assert s.redis_url is None
    assert s.in_process_worker is True
    assert s.recordings_dir == tmp_path / "recordings"
    assert s.ice_servers == ()  # never aiortc's default public STUN


def test_environment_overrides_file_overrides_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[retention]\nvisit = 30\n')
    s = build_settings(
        cfg,
        environ={"GATEWAY_SERVER_PORT": "9100", "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0"},
    )
    assert s.port == 9100
    assert s.host == "0.0.0.0"
    assert s.retention_days["visit"] == 30
    assert s.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"GATEWAY_SERVER_PORT": "eighty"}, "server.port"),
        ({"GATEWAY_SERVER_PORT": "70000"}, "server.port"),
        ({"GATEWAY_DATABASE_URL": "mysql://x"}, "database.url"),
        ({"GATEWAY_REDIS_URL": "http://x"}, "redis.url"),
        ({"GATEWAY_MEDIA_CODEC": "av1"}, "media.codec"),
        ({"GATEWAY_MEDIA_ICE_SERVERS": '[{"urls": "http://stun"}]'}, "media.ice_servers"),
        ({"GATEWAY_MEDIA_IN_PROCESS_WORKER": "maybe"}, "GATEWAY_MEDIA_IN_PROCESS_WORKER"),
        ({"GATEWAY_RETENTION_VISIT": "0"}, "retention.visit"),
        ({"GATEWAY_NO_SUCH_THING": "1"}, "GATEWAY_NO_SUCH_THING"),
        ({"GATEWAY_SERVER_TLS_CERT": "/nonexistent.pem"}, "server.tls_cert"),
    ],
)
def test_bad_value_names_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_settings(environ=environ)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"server\.prot"):
        build_settings(cfg, environ={})


def test_cli_bad_setting_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_SERVER_PORT", "-1")
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "server.port" in err[0]
    assert not (tmp_path / "gateway.db").exists()  # nothing was created


def test_cli_missing_config_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--config", str(tmp_path / "missing.toml"), "db", "upgrade"]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_documented_new_password_variable_is_no_unknown_setting(tmp_path: Path) -> None:
    """Issue 13, finding 11: the loader refused GATEWAY_NEW_PASSWORD as "not a known setting"."""
    environ = {"GATEWAY_NEW_PASSWORD": "s3cret pass", "GATEWAY_DATA_DIR": str(tmp_path)}
    assert build_settings(environ=environ).data_dir == tmp_path
    assert new_account_password(environ) == "s3cret pass"
    assert new_account_password({"GATEWAY_NEW_PASSWORD": ""}) is None


async def test_accounts_create_takes_its_password_from_the_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_DATA_DIR": str(tmp_path / "data"), "GATEWAY_NEW_PASSWORD": "pw from env 1"}

    async def cli(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *args,
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        return out.decode()

    await cli("orgs", "import", str(PACKAGE_DIR / "orgs" / "example.toml"))
    out = await cli(
        "accounts",
        "create",
        "--username",
        "ann",
        "--name",
        "Ann",
        "--unit",
        "QX-XFJ",
        "--role",
        "reception",
    )
    assert "password: pw from env 1" in out
