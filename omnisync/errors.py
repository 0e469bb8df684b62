"""The one exception tree of omnisync, and the exit codes the CLI maps it to.

Every error a user can cause or meet carries three things: *what* went wrong, *where*
(file:line, dotted config key, channel, SKU) and *what to do*. The CLI catches
:class:`OmnisyncError` once, prints ``what: where — hint`` and exits with ``exit_code``.

::

    OmnisyncError                    base; never raised itself
    ├── UsageError                   exit 2    the command line is wrong
    ├── ConfigError                  exit 2    the config file is invalid (lists every problem)
    ├── InputError                   exit 2    a source's data is malformed (lists every problem)
    ├── GuardrailError               exit 6    a push would exceed a guardrail (lists each one)
    ├── ConnectorError               exit 3    a channel could not be read or written
    │   ├── AuthError                          credentials rejected: check token/scopes
    │   ├── HttpError                          the API refused a request for good (4xx);
    │   │                                      defined in omnisync.sdk.http
    │   └── TransientError                     retry may help (timeouts, 429, 5xx, throttling)
    │       └── UnreachableError               nothing listens: retried briefly only
    ├── UnknownConnectorError        exit 2    no installed connector has that name
    ├── StateError                   exit 2    the state store is unusable
    ├── LockedError                  exit 7    another push holds the run lock
    └── InterruptedPush              exit 130  a push stopped midway; ``apply --resume`` finishes it

    ChangeRejected                   not an OmnisyncError: a connector refuses one change before
                                     sending it; the message becomes that change's failure and
                                     the rest of the batch goes on
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (see README, "Exit codes")."""

    OK = 0
    MISMATCH = 1
    USAGE = 2
    CHANNEL = 3
    #: A push applied some changes but not all (failed or skipped as stale).
    PARTIAL = 4
    #: A push applied none of its changes.
    FAILED = 5
    #: A guardrail refused the push (override with --force or a higher limit).
    REFUSED = 6
    #: Another omnisync push holds the run lock.
    LOCKED = 7
    #: Interrupted (Ctrl-C); a push says how to resume.
    INTERRUPTED = 130
    #: An unexpected internal error: a bug in omnisync or a plugin (rerun with --debug).
    INTERNAL = 70


@dataclass(frozen=True)
class Problem:
    """One located problem in a file or config: ``where`` is e.g. ``erp.csv:12`` or a dotted key."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class OmnisyncError(Exception):
    """Base of every error omnisync reports to a user."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, where: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} — {self.hint}" if self.hint else text


class UsageError(OmnisyncError):
    """The command line asks for something impossible."""


class _ProblemListError(OmnisyncError):
    """An error made of several located problems, all reported at once."""

    headline = "problems found"

    def __init__(self, problems: Sequence[Problem], *, where: str = "", hint: str = "") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            f"{count} {self.headline}"
            if count != 1
            else self.headline.replace("problems", "problem"),
            where=where,
            hint=hint,
        )

    def __str__(self) -> str:
        head = super().__str__()
        return head + "".join(f"\n  {p}" for p in self.problems)


class ConfigError(_ProblemListError):
    """The configuration is invalid; ``problems`` lists every error with file:line and key."""

    headline = "problems in the configuration"


class InputError(_ProblemListError):
    """A source's data cannot be used; ``problems`` locates each bad value."""

    headline = "problems in the input data"


class ConnectorError(OmnisyncError):
    """A channel system could not be reached, read or written."""

    exit_code = ExitCode.CHANNEL


class AuthError(ConnectorError):
    """The channel rejected our credentials."""


class TransientError(ConnectorError):
    """A failure that a retry may cure; ``retry_after`` is the server's hint in seconds."""

    def __init__(
        self, message: str, *, where: str = "", hint: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.retry_after = retry_after


class UnreachableError(TransientError):
    """Nothing accepts connections at the address (refused, no route, unknown host).

    Usually a server that is not running or a wrong URL: :mod:`omnisync.sdk.retry` tries it only
    briefly and then re-raises it as a plain ConnectorError."""


class UnknownConnectorError(OmnisyncError):
    """A config names a connector that is not installed."""

    exit_code = ExitCode.USAGE


class StateError(OmnisyncError):
    """The state store (run history) cannot be opened or is of an unknown schema."""


class LockedError(OmnisyncError):
    """Another run holds the push lock."""

    exit_code = ExitCode.LOCKED


class InterruptedPush(OmnisyncError):
    """The push was interrupted; its journal says where, ``--resume`` finishes it."""

    exit_code = ExitCode.INTERRUPTED


class ChangeRejected(Exception):
    """One change a connector will not send (the channel cannot hold the value, the record
    is gone). Raised while preparing a batch; the write routine turns it into that change's
    failed :class:`~omnisync.models.WriteResult` and sends the others."""


class GuardrailError(_ProblemListError):
    """A push would exceed a guardrail; ``problems`` names each limit and by how much."""

    headline = "guardrails refused the push"
    exit_code = ExitCode.REFUSED
