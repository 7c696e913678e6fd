"""Access tokens, secrets at rest (Fernet) and masked secrets sent back by clients.

Secret fields are those :func:`brokers.config.mask_secrets` masks (``credentials.access_key_id``,
``credentials.secret_access_key``). At rest, each is replaced by ``"enc:fernet:<token>"`` when a secret key is
configured; the rest of the configuration stays readable.
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

from brokers.config import MASK, mask_secrets

__all__ = ["ENCRYPTED_PREFIX", "SecretBox", "SecretError", "TokenChecker", "keep_masked_secrets", "secret_paths"]

ENCRYPTED_PREFIX = "enc:fernet:"


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


def _fernet_key(key: str) -> bytes:
    """Use a Fernet key as is; derive one from any other string (SHA-256, so prefer a real Fernet key)."""
    raw = key.encode("utf-8")
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def _is_secret_key(key: str) -> bool:
    masked = mask_secrets({key: "probe"})
    return bool(masked[key] == MASK)


def secret_paths(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Yield the path of every secret string field in JSON data."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(value, str) and _is_secret_key(key):
                yield (*path, key)
            else:
                yield from secret_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from secret_paths(value, (*path, index))


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
        usable = [Fernet(_fernet_key(k)) for k in keys if k]
        self._primary = usable[0] if usable else None
        self._fernet = MultiFernet(usable) if usable else None

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
            value: str = _get(sealed, path)
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
            _set(sealed, path, ENCRYPTED_PREFIX + token.decode("ascii"))
        return sealed

    def open(self, config: Any) -> Any:
        """Return a copy with every encrypted secret decrypted.

        Raises:
            SecretError: A secret is encrypted and no configured key decrypts it.
        """
        opened = copy.deepcopy(config)
        for path in list(secret_paths(opened)):
            value: str = _get(opened, path)
            if not value.startswith(ENCRYPTED_PREFIX):
                continue
            if self._fernet is None:
                raise SecretError(dotted(path), f"{dotted(path)} is encrypted and no secret key is configured")
            try:
                plain = self._fernet.decrypt(value[len(ENCRYPTED_PREFIX):].encode("ascii"))
            except (InvalidToken, UnicodeEncodeError):
                raise SecretError(dotted(path), f"{dotted(path)} cannot be decrypted with the configured secret "
                                                "keys") from None
            _set(opened, path, plain.decode("utf-8"))
        return opened


def keep_masked_secrets(new: Any, stored: Any) -> Any:
    """Replace masked secrets in a configuration sent by a client with the stored values.

    A client that read a configuration (secrets masked) and sends it back keeps the secrets it never saw. The
    stored secret is only carried over to the same store: if ``broker.endpoint_url`` or ``broker.type`` changed,
    the secret must be given again (otherwise a writer could send the stored keys to a server of their choice).

    Args:
        new: The configuration received (JSON data).
        stored: The configuration stored for the workspace (secrets as stored: plain or encrypted), or None.

    Returns:
        A copy of ``new`` with masked secrets replaced.

    Raises:
        SecretError: A secret is masked and there is no stored value for it (or the store changed).
    """
    result = copy.deepcopy(new)
    masked = [p for p in secret_paths(result) if _get(result, p) == MASK]
    if not masked:
        return result
    same_store = stored is not None and all(
        _get(new, ("broker", key)) == _get(stored, ("broker", key)) for key in ("type", "endpoint_url"))
    for path in masked:
        old = _get(stored, path) if same_store else None
        if not isinstance(old, str):
            reason = ("the workspace stores no value for it" if same_store else
                      "the broker type or endpoint_url changed, so the stored secret is not carried over")
            raise SecretError(dotted(path), f"{dotted(path)} is masked ({MASK}); give the real value ({reason})")
        _set(result, path, old)
    return result
