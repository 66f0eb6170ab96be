"""Password hashing: argon2id for new hashes; bcrypt, PBKDF2-SHA256, scrypt and Firebase's
modified scrypt verified for imported accounts (and upgraded to argon2id at their next sign-in).

Passwords are NFKC-normalised before they are hashed or verified (NIST SP 800-63B section
5.1.1.2), so the same password typed on any keyboard or system hashes alike. Hashes stored
before normalisation (of the raw input) still verify: see ``PasswordHasher.verify``.

Hashing is CPU-bound and releases the GIL, so it runs in a bounded thread pool and never on
the event loop. When more logins wait for a hashing thread than the queue allows, or the wait
ahead of a new one (queued operations x recent hash time / threads) would exceed
``hash_max_wait_seconds``, it is shed at once (``HashingOverloaded``) instead of queueing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ctypes
import hashlib
import hmac
import multiprocessing
import os
import signal
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

import bcrypt
import structlog
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from auth_service.config.settings import PasswordSettings
from auth_service.observability import metrics, tracing
from auth_service.problems import ServiceError, problem
from auth_service.security.aead import MasterKey, MasterKeyError

T = TypeVar("T")
log = structlog.get_logger(__name__)


@problem(503, "overloaded", "The service is busy; retry shortly")
class HashingOverloaded(ServiceError):
    """Too many password operations are waiting; the caller should retry later."""

    retry_after_seconds = 1


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    needs_rehash: bool = False


def normalize_password(password: str) -> str:
    """The form a password is hashed in: NFKC (NIST SP 800-63B section 5.1.1.2).

    NFC alone would unify composed and decomposed accents (macOS and Windows type "ü"
    differently); NFKC also unifies compatibility forms (full-width letters, ligatures) that
    input methods produce without the user seeing a difference.
    """
    return unicodedata.normalize("NFKC", password)


def _pbkdf2_verify(password: str, encoded: str) -> bool:
    """Django (``pbkdf2_sha256$iter$salt$b64hash``) and passlib (``$pbkdf2-sha256$...``)."""
    if encoded.startswith("pbkdf2_sha256$"):
        _, iterations, salt, expected_b64 = encoded.split("$", 3)
        expected = base64.b64decode(expected_b64)
        salt_bytes = salt.encode()
    else:  # passlib: $pbkdf2-sha256$<rounds>$<ab64 salt>$<ab64 hash>
        _, _, iterations, salt, expected_b64 = encoded.split("$", 4)

        def ab64(s: str) -> bytes:
            s = s.replace(".", "+")
            return base64.b64decode(s + "=" * (-len(s) % 4))

        salt_bytes = ab64(salt)
        expected = ab64(expected_b64)
    rounds = int(iterations)
    if not 1000 <= rounds <= 10_000_000:
        return False
    actual = hashlib.pbkdf2_hmac("sha256", password.encode(), salt_bytes, rounds, len(expected))
    return hmac.compare_digest(actual, expected)


# Bounds on imported scrypt parameters: a hash is data from another system, and its cost must
# not let one sign-in take the memory or CPU of the whole process (128 * N * r bytes each).
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024
SCRYPT_MAX_P = 16


def _scrypt_bounds(n: int, r: int, p: int, length: int) -> int:
    """The memory one scrypt computation takes; ValueError when out of bounds."""
    memory = 128 * n * r
    if (
        n < 2
        or n & (n - 1)
        or not 1 <= r <= 64
        or not 1 <= p <= SCRYPT_MAX_P
        or memory > SCRYPT_MAX_MEMORY
        or not 16 <= length <= 128
    ):
        raise ValueError("scrypt parameters out of range")
    return memory


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = _scrypt_bounds(n, r, p, length)
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, dklen=length, maxmem=memory + 1024 * 1024
    )


def _ab64(s: str) -> bytes:
    """passlib's "adapted base64": "." for "+", no padding."""
    s = s.replace(".", "+")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


@dataclass(frozen=True)
class _ScryptHash:
    salt: bytes
    key: bytes
    n: int
    r: int
    p: int


def _scrypt_parse(encoded: str) -> _ScryptHash:
    """passlib (``$scrypt$ln=16,r=8,p=1$<ab64 salt>$<ab64 key>``) and the plain form Werkzeug
    writes (``scrypt:N:r:p$<salt>$<hex key>``; bare ``scrypt$`` is N=2^15, r=8, p=1), whose
    salt is used as its text. ValueError (or KeyError) when malformed or out of bounds."""
    if encoded.startswith("$scrypt$"):
        _, _, params, salt_text, key_text = encoded.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        if set(values) != {"ln", "r", "p"} or not 1 <= int(values["ln"]) <= 30:
            raise ValueError("scrypt parameters")
        n, r, p = 2 ** int(values["ln"]), int(values["r"]), int(values["p"])
        parsed = _ScryptHash(_ab64(salt_text), _ab64(key_text), n, r, p)
    else:
        method, salt_text, key_text = encoded.split("$")
        parts = method.split(":")
        if parts[0] != "scrypt" or len(parts) not in (1, 4) or not salt_text:
            raise ValueError("scrypt method")
        n, r, p = (int(x) for x in parts[1:]) if len(parts) == 4 else (2**15, 8, 1)
        parsed = _ScryptHash(salt_text.encode(), bytes.fromhex(key_text), n, r, p)
    _scrypt_bounds(parsed.n, parsed.r, parsed.p, len(parsed.key))
    return parsed


def _scrypt_verify(password: str, encoded: str) -> bool:
    h = _scrypt_parse(encoded)
    actual = _scrypt(password.encode(), h.salt, h.n, h.r, h.p, len(h.key))
    return hmac.compare_digest(actual, h.key)


FIREBASE_PREFIX = "$firebase-scrypt$"
_FIREBASE_SEAL = b"auth-service firebase-scrypt signer key"


@dataclass(frozen=True)
class FirebaseScrypt:
    """A Firebase project's password hash parameters (console: Authentication > Users >
    Password hash parameters; ``firebase auth:import --hash-algo=SCRYPT --hash-key=...
    --salt-separator=... --rounds=... --mem-cost=...``)."""

    signer_key: bytes
    salt_separator: bytes
    rounds: int
    mem_cost: int

    def __post_init__(self) -> None:
        if not self.signer_key or not 1 <= self.rounds <= 64 or not 1 <= self.mem_cost <= 20:
            raise ValueError("Firebase hash parameters: signer key, rounds 1-64, mem_cost 1-20")

    def derive(self, password: str, salt: bytes) -> bytes:
        """Firebase's modified scrypt (github.com/firebase/scrypt): a 32-byte scrypt key of
        the password over salt + salt separator (N = 2^mem_cost, r = rounds, p = 1) is the
        AES-256-CTR key (zero counter block) that encrypts the project's signer key; the
        ciphertext is the stored hash."""
        key = _scrypt(
            password.encode(), salt + self.salt_separator, 2**self.mem_cost, self.rounds, 1, 32
        )
        encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        return encryptor.update(self.signer_key) + encryptor.finalize()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def firebase_prefix(params: FirebaseScrypt, master_key: MasterKey) -> str:
    """The start of the stored form of every hash of one Firebase project:
    ``$firebase-scrypt$m=<mem_cost>,r=<rounds>$<salt separator>$<sealed signer key>$``, then
    ``<salt>$<hash>`` per user (all base64). The signer key acts as a pepper: it is stored
    sealed under the master key, so a copy of the database alone cannot test guesses."""
    sealed = master_key.seal(params.signer_key, _FIREBASE_SEAL)
    return (
        f"{FIREBASE_PREFIX}m={params.mem_cost},r={params.rounds}$"
        f"{_b64(params.salt_separator)}${_b64(sealed)}$"
    )


def _firebase_verify(password: str, encoded: str, master_key: MasterKey | None) -> bool:
    if master_key is None:
        return False
    _, _, costs, separator, sealed, salt, expected_b64 = encoded.split("$")
    values = dict(item.split("=", 1) for item in costs.split(","))
    try:
        signer_key = master_key.open(base64.b64decode(sealed, validate=True), _FIREBASE_SEAL)
    except MasterKeyError:
        return False
    params = FirebaseScrypt(
        signer_key, base64.b64decode(separator, validate=True), int(values["r"]), int(values["m"])
    )
    actual = params.derive(password, base64.b64decode(salt, validate=True))
    return hmac.compare_digest(actual, base64.b64decode(expected_b64, validate=True))


def scrypt_hash_is_valid(encoded: str) -> bool:
    """Whether an imported scrypt hash (passlib or plain form) parses, with parameters in the
    bounds a sign-in will accept: checked at import, so that a bad hash is a refused line
    rather than an account nobody can sign in to."""
    try:
        _scrypt_parse(encoded)
    except (ValueError, KeyError, binascii.Error):
        return False
    return True


# Hash threads run at a lower CPU priority than the event loop (nice +10, per thread on Linux).
# When logins saturate the CPU, token-authenticated requests are then still answered in
# milliseconds, and hashing still gets every cycle the loop does not need (bench/README.md).
HASH_THREAD_NICE_INCREMENT = 10


def _lower_thread_priority() -> None:
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + HASH_THREAD_NICE_INCREMENT))
    except (AttributeError, OSError):  # not Linux, or not permitted: keep the priority
        pass


# ---- argon2id in child processes (``passwords.hash_pool = "processes"``) -------------------
#
# A hashing thread shares the worker's GIL: it takes it back after each hash, and a thread at
# nice +10 that holds it while the CPU is saturated keeps the event loop waiting until the
# scheduler gives that thread a slice again (a priority inversion: the tail of every request
# of the worker during a login flood, bench/README.md). A child process has its own GIL; the
# loop only writes the job to a pipe and reads the answer. These functions run in the child.

Argon2Params = tuple[int, int, int]  # time cost, memory cost (KiB), parallelism
_child_hashers: dict[Argon2Params, Argon2Hasher] = {}


def _new_argon2(params: Argon2Params) -> Argon2Hasher:
    time_cost, memory_cost, parallelism = params
    return Argon2Hasher(
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def _child_argon2(params: Argon2Params) -> Argon2Hasher:
    hasher = _child_hashers.get(params)
    if hasher is None:
        hasher = _child_hashers[params] = _new_argon2(params)
    return hasher


_PR_SET_PDEATHSIG = 1  # prctl(2)


def _child_init(worker_pid: int) -> None:
    """A hashing process (forked from a worker): lower priority, none of the worker's signal
    handling (a signal to the process group must not reach the worker's event loop through
    the inherited wakeup descriptor, nor interrupt a hash), and killed with its worker.

    A worker killed outright (uvicorn SIGKILLs one that misses its health ping) cannot tell
    its children to stop, and they would wait for work forever: on Linux the kernel sends
    them SIGKILL when the worker dies (PR_SET_PDEATHSIG); one forked just as it died exits."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError):  # not permitted: keep the priority
        os.nice(HASH_THREAD_NICE_INCREMENT)
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no parent-death signal
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker_pid:
        os._exit(0)


def _argon2_check(hasher: Argon2Hasher, encoded: str, password: str) -> VerifyResult:
    try:
        hasher.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return VerifyResult(False)
    return VerifyResult(True, hasher.check_needs_rehash(encoded))


def _verify_forms(
    check: Callable[[str, str], VerifyResult], encoded: str, password: str
) -> VerifyResult:
    """The normalised form first; then, when it differs, the raw input (a hash stored before
    normalisation: a match asks for a rehash). A wrong password costs two checks here, and
    verify_dummy spends the same two for unknown accounts."""
    normalized = normalize_password(password)
    result = check(encoded, normalized)
    if result.ok or normalized == password:
        return result
    legacy = check(encoded, password)
    return VerifyResult(True, needs_rehash=True) if legacy.ok else legacy


def _child_verify(params: Argon2Params, encoded: str, password: str) -> tuple[VerifyResult, float]:
    """Verify an argon2id hash in a hashing process; the result and the CPU time it took."""
    began = time.thread_time()
    hasher = _child_argon2(params)
    result = _verify_forms(lambda e, p: _argon2_check(hasher, e, p), encoded, password)
    return result, time.thread_time() - began


def _child_hash(params: Argon2Params, normalized: str) -> tuple[str, float]:
    began = time.thread_time()
    encoded = _child_argon2(params).hash(normalized)
    return encoded, time.thread_time() - began


# Weight of the newest hash time in the moving average that estimates queue wait.
_EWMA_WEIGHT = 0.1


def pool_size(settings: PasswordSettings, workers: int = 1) -> int:
    """Hashing threads per worker: the configured number, else the CPUs shared by the workers.

    More threads than cores only makes each hash slower (their 7-19 MiB working sets thrash
    the caches) and takes CPU from the event loops and the database.
    """
    return settings.hash_concurrency or max(1, (os.cpu_count() or 1) // max(1, workers))


def in_processes(settings: PasswordSettings, production: bool) -> bool:
    """Whether argon2id runs in child processes (``passwords.hash_pool``; ``auto``: in
    production, where a login flood must not stall the workers' event loops; elsewhere the
    threads, which start nothing)."""
    if settings.hash_pool == "auto":
        return production
    return settings.hash_pool == "processes"


def _params(settings: PasswordSettings) -> Argon2Params:
    return (
        settings.argon2_time_cost,
        settings.argon2_memory_cost_kib,
        settings.argon2_parallelism,
    )


class PasswordHasher:
    def __init__(
        self,
        settings: PasswordSettings,
        workers: int = 1,
        master_key: MasterKey | None = None,
        *,
        production: bool = False,
    ) -> None:
        self._settings = settings
        self._master_key = master_key  # opens the Firebase signer keys of imported hashes
        self._params = _params(settings)
        self._argon2 = _new_argon2(self._params)
        self._threads = pool_size(settings, workers)
        self._pool = ThreadPoolExecutor(
            max_workers=self._threads,
            thread_name_prefix="pwhash",
            initializer=_lower_thread_priority,
        )
        # argon2id (every new hash, and nearly every verification) runs in child processes
        # when so configured; imported formats stay on the threads.
        self._processes = self._new_processes() if in_processes(settings, production) else None
        self._limit = self._threads + settings.hash_queue_limit
        self._max_wait = settings.hash_max_wait_seconds
        self._pending = 0
        self._hash_seconds = 0.0  # moving average of one operation's CPU time in its thread
        self._dummy_hash: str | None = None

    def _new_processes(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._threads,
            # Forked, at the first hash (warm_up, at start-up): the child runs only the
            # functions above, on a copy of the worker's memory shared until written.
            mp_context=multiprocessing.get_context("fork"),
            initializer=_child_init,
            initargs=(os.getpid(),),
        )

    def apply_settings(self, settings: PasswordSettings) -> None:
        """Hot reload of argon2 cost: new hashes use it; old ones are rehashed on login.

        The pool's size and kind are fixed at start (``hash_concurrency`` and ``hash_pool``
        need a restart).
        """
        self._limit = self._threads + settings.hash_queue_limit
        self._max_wait = settings.hash_max_wait_seconds
        self._params = _params(settings)
        self._argon2 = _new_argon2(self._params)
        self._settings = settings

    @property
    def pending(self) -> int:
        return self._pending

    def expected_wait(self) -> float:
        """Seconds of hashing queued ahead of a new operation, per thread (CPU time of recent
        hashes: the wait itself is longer when the CPU is shared)."""
        queued = self._pending - self._threads + 1
        return queued * self._hash_seconds / self._threads if queued > 0 else 0.0

    def admits(self) -> bool:
        """Whether a new operation would be accepted now (callers check before costly work,
        so that shedding under overload costs microseconds, not a database round trip)."""
        if self._pending >= self._limit:
            return False
        return not self._max_wait or self.expected_wait() <= self._max_wait

    def _took(self, seconds: float) -> None:
        # A float store is atomic under the GIL; a lost update only delays the average.
        if self._hash_seconds:
            self._hash_seconds += _EWMA_WEIGHT * (seconds - self._hash_seconds)
        else:
            self._hash_seconds = seconds

    async def _run(self, operation: str, fn: Callable[[], T]) -> T:
        if not self.admits():
            raise HashingOverloaded
        self._pending += 1
        start = time.perf_counter()

        def traced() -> T:
            # CPU time of this thread, not wall time: under contention the wall time of a
            # hash grows, which would shed more, which (clients retrying at once) adds load
            # and slows hashing further. The CPU cost of a hash is what the queue will need.
            began = time.thread_time()
            try:
                with tracing.span(f"password.{operation}"):
                    return fn()
            finally:
                self._took(time.thread_time() - began)

        try:
            # The span starts in the hashing thread: bind it to the request's trace context.
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, tracing.in_context(traced)
            )
        finally:
            self._pending -= 1
            metrics.PASSWORD_HASH_DURATION.labels(operation).observe(time.perf_counter() - start)

    async def _run_in_process(
        self, operation: str, fn: Callable[..., tuple[T, float]], *args: str
    ) -> T:
        """``_run`` in a hashing process: the same admission and accounting; ``fn`` returns
        its result and the CPU time it took in the child.

        A pool whose child died (killed, out of memory) is broken for good: it is replaced by
        a new one, and the operations it held are answered as overloaded (503, retry)."""
        pool = self._processes
        assert pool is not None
        if not self.admits():
            raise HashingOverloaded
        self._pending += 1
        start = time.perf_counter()
        try:
            with tracing.span(f"password.{operation}"):
                result, took = await asyncio.get_running_loop().run_in_executor(
                    pool, fn, self._params, *args
                )
            self._took(took)
            return result
        except BrokenProcessPool:
            if self._processes is pool:
                log.warning("password_hashing_pool_replaced", reason="a hashing process died")
                pool.shutdown(wait=False, cancel_futures=True)
                self._processes = self._new_processes()
            raise HashingOverloaded from None
        finally:
            self._pending -= 1
            metrics.PASSWORD_HASH_DURATION.labels(operation).observe(time.perf_counter() - start)

    async def hash(self, password: str) -> str:
        """An argon2id hash of the normalised password (``normalize_password``)."""
        normalized = normalize_password(password)
        if self._processes is not None:
            return await self._run_in_process("hash", _child_hash, normalized)
        return await self._run("hash", lambda: self._argon2.hash(normalized))

    def _verify_sync(self, encoded: str, password: str) -> VerifyResult:
        return _verify_forms(self._check, encoded, password)

    def _check(self, encoded: str, password: str) -> VerifyResult:
        """One verification of ``password`` as given against ``encoded``."""
        try:
            if encoded.startswith("$argon2"):
                return _argon2_check(self._argon2, encoded, password)
            if encoded.startswith(("$2a$", "$2b$", "$2y$")):
                # bcrypt reads at most 72 bytes; longer passwords are refused by policy anyway.
                ok = bcrypt.checkpw(password.encode()[:72], encoded.encode())
                return VerifyResult(ok, needs_rehash=ok)
            if encoded.startswith(("pbkdf2_sha256$", "$pbkdf2-sha256$")):
                ok = _pbkdf2_verify(password, encoded)
                return VerifyResult(ok, needs_rehash=ok)
            if encoded.startswith(("$scrypt$", "scrypt:", "scrypt$")):
                ok = _scrypt_verify(password, encoded)
                return VerifyResult(ok, needs_rehash=ok)
            if encoded.startswith(FIREBASE_PREFIX):
                ok = _firebase_verify(password, encoded, self._master_key)
                return VerifyResult(ok, needs_rehash=ok)
        except (ValueError, KeyError, binascii.Error):
            return VerifyResult(False)
        return VerifyResult(False)

    def firebase_prefix(self, params: FirebaseScrypt) -> str:
        """The stored form's start for hashes of one Firebase project (``firebase_prefix``)."""
        if self._master_key is None:
            raise ValueError("Firebase hashes need the master key")
        return firebase_prefix(params, self._master_key)

    async def verify(self, encoded: str, password: str) -> VerifyResult:
        """Check a password against any supported hash; say whether to rehash it.

        The normalised form is checked first; when it fails and differs from the raw input,
        the raw input is checked too (a hash stored before normalisation), and a match asks
        for a rehash, which stores the normalised form.
        """
        if self._processes is not None and encoded.startswith("$argon2"):
            return await self._run_in_process("verify", _child_verify, encoded, password)
        return await self._run("verify", lambda: self._verify_sync(encoded, password))

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real verification, for unknown accounts (no enumeration)."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(os.urandom(16).hex())
        await self.verify(self._dummy_hash, password)

    async def warm_up(self) -> None:
        await self.verify_dummy("warm-up")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)
