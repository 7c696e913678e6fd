"""Access tokens, secrets at rest (Fernet) and masked secrets sent back by clients.

Secrets are what :func:`brokers.config.mask_secrets` masks: the values of ``credentials.access_key_id`` and
``credentials.secret_access_key``, and the user info of ``endpoint_url`` (``https://user:password@host``). At
rest, each is replaced by ``"enc:fernet:<token>"`` when a secret key is configured (in a URL, the user info
only: ``https://enc:fernet:<token>@host``); the rest of the configuration stays readable.

A secret key is a Fernet key, used as it is, or a passphrase, stretched once per process with scrypt (the fixed
salt and cost below, so the same passphrase gives the same key everywhere). Values sealed by earlier versions,
which turned a passphrase into a key with a bare SHA-256, still open; the service re-seals them under the
scrypt key when it starts.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from brokers.config import MASK, URL_FIELDS, mask_secrets, safe_endpoint
from brokers.config.endpoints import split_userinfo
from brokers.config.model import holds_secret

__all__ = ["ENCRYPTED_PREFIX", "SecretBox", "SecretError", "TokenChecker", "keep_masked_secrets", "masked",
           "secret_paths"]

ENCRYPTED_PREFIX = "enc:fernet:"

SCRYPT_SALT = b"brokers.service.security/passphrase/v1"
"""The scrypt salt of passphrases: fixed, so every process derives the same key (the passphrase is the secret)."""
SCRYPT_COST = {"n": 2**16, "r": 8, "p": 1}
"""scrypt's cost: 64 MiB and about 0.2 s per passphrase, once per process."""


class SecretError(ValueError):
    """A secret could not be decrypted, or a masked secret has no stored value to stand for.

    Attributes:
        field: Dotted path of the secret field (never its value).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class TokenChecker:
    """Checks ``X-Access-Token`` values against the configured tokens in constant time."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = [t.encode("utf-8") for t in tokens if t]

    @property
    def configured(self) -> bool:
        """True when at least one token is configured."""
        return bool(self._tokens)

    def check(self, presented: str | None) -> bool:
        """Return True if ``presented`` equals one of the tokens (every token is compared, no early exit)."""
        if presented is None:
            return False
        try:
            given = presented.encode("utf-8")
        except UnicodeEncodeError:
            return False
        found = False
        for token in self._tokens:
            found |= hmac.compare_digest(given, token)
        return found


def masked(stored: Any) -> Any:
    """A stored configuration as every answer shows it: each secret (plain or sealed) masked; None stays None."""
    return None if stored is None else mask_secrets(stored)


def _fernet_keys(key: str) -> tuple[bytes, bytes | None]:
    """Return (the key, the key earlier versions derived): a Fernet key as is; a passphrase through scrypt."""
    raw = key.encode("utf-8")
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw, None
    except (binascii.Error, ValueError):
        pass
    stretched = Scrypt(salt=SCRYPT_SALT, length=32, **SCRYPT_COST).derive(raw)
    return base64.urlsafe_b64encode(stretched), base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def secret_paths(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Yield the path of every field holding a secret in JSON data (a key, or a URL with user info)."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if holds_secret(key, value):
                yield (*path, key)
            else:
                yield from secret_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from secret_paths(value, (*path, index))


def _read_secret(data: Any, path: Sequence[str | int]) -> str | None:
    """Return the secret at ``path``: the field's value, or the user info of a URL field (None: none there)."""
    value = _get(data, path)
    if not holds_secret(path[-1], value):
        return None
    return split_userinfo(value)[1] if path[-1] in URL_FIELDS else value


def _write_secret(data: Any, path: Sequence[str | int], secret: str) -> None:
    if path[-1] in URL_FIELDS:
        scheme, _, rest = split_userinfo(_get(data, path))
        secret = f"{scheme}{secret}@{rest}"
    _set(data, path, secret)


def _get(data: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        if isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
            continue
        if not (isinstance(part, str) and isinstance(data, Mapping) and part in data):
            return None
        data = data[part]
    return data


def _set(data: Any, path: Sequence[str | int], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def dotted(path: Sequence[str | int]) -> str:
    """Return ``("broker", "credentials", "x")`` as ``"broker.credentials.x"``."""
    return ".".join(str(p) for p in path)


class SecretBox:
    """Encrypts and decrypts the secret fields of a configuration.

    Args:
        keys: Fernet keys or passphrases. The first encrypts; every key decrypts (rotation). No keys: secrets
            are stored in plain text.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        derived = [_fernet_keys(k) for k in keys if k]
        usable = [Fernet(key) for key, _ in derived]
        legacy = [Fernet(old) for _, old in derived if old is not None]  # decrypts only: never the first
        self._primary = usable[0] if usable else None
        self._fernet = MultiFernet(usable + legacy) if usable else None

    @property
    def enabled(self) -> bool:
        """True when secrets are encrypted at rest."""
        return self._fernet is not None

    def seal(self, config: Any) -> Any:
        """Return a copy with every plain secret encrypted (and old ciphertexts re-encrypted with the first key)."""
        if self._fernet is None or self._primary is None:
            return config
        sealed = copy.deepcopy(config)
        for path in list(secret_paths(sealed)):
            value = _read_secret(sealed, path) or ""
            if value.startswith(ENCRYPTED_PREFIX):
                token_text = value[len(ENCRYPTED_PREFIX):].encode("ascii", "replace")
                try:
                    self._primary.decrypt(token_text)
                    continue  # already under the current key
                except InvalidToken:
                    pass
                try:
                    token = self._fernet.rotate(token_text)
                except (InvalidToken, UnicodeEncodeError):
                    continue  # sealed with a key we no longer have: keep as is
            else:
                token = self._fernet.encrypt(value.encode("utf-8"))
            _write_secret(sealed, path, ENCRYPTED_PREFIX + token.decode("ascii"))
        return sealed

    def open(self, config: Any) -> Any:
        """Return a copy with every encrypted secret decrypted.

        Raises:
            SecretError: A secret is encrypted and no configured key decrypts it.
        """
        opened = copy.deepcopy(config)
        for path in list(secret_paths(opened)):
            value = _read_secret(opened, path) or ""
            if not value.startswith(ENCRYPTED_PREFIX):
                continue
            if self._fernet is None:
                raise SecretError(dotted(path), f"{dotted(path)} is encrypted and no secret key is configured")
            try:
                plain = self._fernet.decrypt(value[len(ENCRYPTED_PREFIX):].encode("ascii"))
            except (InvalidToken, UnicodeEncodeError):
                raise SecretError(dotted(path), f"{dotted(path)} cannot be decrypted with the configured secret "
                                                "keys") from None
            _write_secret(opened, path, plain.decode("utf-8"))
        return opened


_SAME_STORE = ("type", "endpoint_url", "bucket_name")
"""What must not change for a stored secret to be carried over: the same store, the same bucket."""


def _changed_store(new: Any, stored: Any) -> str | None:
    """Return the first ``broker`` field naming another store than the stored one (endpoints without user info)."""
    for key in _SAME_STORE:
        before, after = _get(stored, ("broker", key)), _get(new, ("broker", key))
        if key == "endpoint_url" and isinstance(before, str) and isinstance(after, str):
            before, after = safe_endpoint(before), safe_endpoint(after)
        if before != after:
            return f"broker.{key}"
    return None


def keep_masked_secrets(new: Any, stored: Any) -> Any:
    """Replace masked secrets in a configuration sent by a client with the stored values.

    A client that read a configuration (secrets masked) and sends it back keeps the secrets it never saw. The
    stored secret is only carried over to the same workspace's same store: if ``broker.type``, the
    ``endpoint_url`` (user info aside) or ``broker.bucket_name`` changed, the secret must be given again
    (otherwise a writer could send the stored keys to a server or bucket of their choice). Encrypted values are
    never accepted from a client (a ciphertext is a stored secret too).

    Args:
        new: The configuration received (JSON data).
        stored: The configuration stored for the workspace (secrets as stored: plain or encrypted), or None.

    Returns:
        A copy of ``new`` with masked secrets replaced.

    Raises:
        SecretError: A secret is masked and there is no stored value for it (or the store changed), or a
            value is encrypted.
    """
    result = copy.deepcopy(new)
    paths = list(secret_paths(result))
    for path in paths:
        if (_read_secret(result, path) or "").startswith(ENCRYPTED_PREFIX):
            raise SecretError(dotted(path), f"{dotted(path)} holds an encrypted value; give the real value")
    masked = [p for p in paths if _read_secret(result, p) == MASK]
    if not masked:
        return result
    changed = "no workspace" if stored is None else _changed_store(new, stored)
    for path in masked:
        old = _read_secret(stored, path) if changed is None else None
        if old is None:
            reason = ("the workspace stores no value for it" if changed in (None, "no workspace") else
                      f"{changed} changed, so the stored secret is not carried over")
            raise SecretError(dotted(path), f"{dotted(path)} is masked ({MASK}); give the real value ({reason})")
        _write_secret(result, path, old)
    return result
