"""Identity numbers at rest: sealed with AES-GCM, found again by a keyed digest, masked for views.

A keyring is text ``"<id>:<base64 of 32 bytes>"`` entries separated by spaces, commas or
newlines (``security.data_key`` or ``<data.dir>/data.key``). The first key seals; the others
only open what was sealed with them before a rotation. A sealed value is
``"s1.<key id>.<base64 of nonce + ciphertext>"``; the item id is bound in as associated data,
so a sealed number copied onto another petitioner's row does not open.

Equality (the duplicate search) uses an HMAC-SHA256 digest keyed from the sealing key; a
rotation recomputes every digest with the new key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config.errors import ConfigError, RecordsError

__all__ = [
    "SEALED_PREFIX",
    "DataKeyring",
    "SealError",
    "mask_id_number",
    "mask_phone",
    "new_key_entry",
]

SEALED_PREFIX = "s1."
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NONCE_BYTES = 12
_DIGEST_LABEL = b"petition-gateway id-number digest v1"


class SealError(RecordsError):
    """A sealed value does not open: unknown key id, wrong key, or tampered with."""


def new_key_entry(key_id: str) -> str:
    """A fresh keyring entry ``"<key_id>:<base64 key>"``."""
    if not _KEY_ID.match(key_id):
        raise ConfigError(f"data key id {key_id!r}: letters, digits, '-' or '_', 1..32")
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def _normalise(id_number: str) -> str:
    """Spaces dropped, the check letter upper-cased: ``11010119500101123x`` = ``...123X``."""
    return re.sub(r"\s", "", id_number).upper()


@dataclass(frozen=True, slots=True)
class DataKeyring:
    """The keys sealing identity numbers; the first seals, all open."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, text: str) -> DataKeyring:
        """Read a keyring.

        Raises:
            ConfigError: empty, malformed, a key not 32 bytes, or a key id twice.
        """
        entries = [e for e in re.split(r"[\s,]+", text.strip()) if e]
        if not entries:
            raise ConfigError("security.data_key: empty keyring")
        keys: list[tuple[str, bytes]] = []
        for entry in entries:
            key_id, sep, b64 = entry.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise ConfigError(
                    f"security.data_key: entry {key_id[:32]!r}…: expected <id>:<base64 key>"
                )
            try:
                key = base64.urlsafe_b64decode(b64.encode())
            except (binascii.Error, ValueError) as exc:
                raise ConfigError(f"security.data_key: key {key_id!r} is not base64") from exc
            if len(key) != 32:
                raise ConfigError(
                    f"security.data_key: key {key_id!r} has {len(key)} bytes, 32 expected"
                )
            if any(k == key_id for k, _ in keys):
                raise ConfigError(f"security.data_key: key id {key_id!r} given twice")
            keys.append((key_id, key))
        return cls(tuple(keys))

    def text(self) -> str:
        """The keyring as written to ``data.key``, sealing key first, one per line."""
        return "\n".join(
            f"{kid}:{base64.urlsafe_b64encode(key).decode()}" for kid, key in self.keys
        )

    @property
    def sealing_key_id(self) -> str:
        """The id of the key new values are sealed with."""
        return self.keys[0][0]

    def seal(self, id_number: str, *, item_id: str) -> str:
        """Seal ``id_number`` (normalised) for the petitioner row of ``item_id``."""
        kid, key = self.keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, _normalise(id_number).encode(), item_id.encode())
        return f"{SEALED_PREFIX}{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, *, item_id: str) -> str:
        """The identity number sealed in ``sealed`` for ``item_id``.

        Raises:
            SealError: not a sealed value, its key is not in the ring, or it does not verify.
        """
        if not is_sealed(sealed):
            raise SealError("the stored identity number is not sealed")
        kid, _, b64 = sealed[len(SEALED_PREFIX) :].partition(".")
        key = dict(self.keys).get(kid)
        if key is None:
            raise SealError(f"the identity number is sealed with key {kid!r}, not in the keyring")
        try:
            raw = base64.urlsafe_b64decode(b64.encode())
            plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], item_id.encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SealError(f"the identity number sealed with key {kid!r} does not open") from exc
        return plain.decode()

    def digest(self, id_number: str) -> str:
        """A keyed digest of ``id_number`` to find equal numbers without opening them."""
        mac_key = hmac.new(self.keys[0][1], _DIGEST_LABEL, hashlib.sha256).digest()
        return hmac.new(mac_key, _normalise(id_number).encode(), hashlib.sha256).hexdigest()


def is_sealed(value: str) -> bool:
    """Whether a stored value is sealed (rows from before migration 0011 are not, until rotated)."""
    return value.startswith(SEALED_PREFIX)


def key_id_of(sealed: str) -> str | None:
    """The key id a sealed value names; None for a value that is not sealed."""
    if not is_sealed(sealed):
        return None
    return sealed[len(SEALED_PREFIX) :].partition(".")[0]


def mask_id_number(value: str | None) -> str | None:
    """``110101195001011234`` → ``110***********1234``: the first 3 and last 4 characters."""
    if not value:
        return value
    v = _normalise(value)
    if len(v) <= 7:
        return "*" * len(v)
    return v[:3] + "*" * (len(v) - 7) + v[-4:]


def mask_phone(value: str | None) -> str | None:
    """``13800001234`` → ``138****1234``; short numbers keep only their last two digits."""
    if not value:
        return value
    digits = value.strip()
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) <= 2:
        return "*" * len(digits)
    return "*" * (len(digits) - 2) + digits[-2:]
