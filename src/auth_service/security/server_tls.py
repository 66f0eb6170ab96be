"""The listeners' TLS context, and picking up a certificate rotated on disk without a restart.

The server keeps one ``ssl.SSLContext`` for its lifetime (asyncio's listeners hold it); a
rotation loads the new chain into that same context, so connections opened afterwards get
the new certificate and open ones carry on with the one they negotiated. The files are
checked by their stat (mtime, size, inode: a ``mv`` of a new file, a Kubernetes secret's
symlink swap, an in-place write) every ``server.tls.reload_interval_seconds``, on the
event loop, so a reload never races a handshake. A new pair is first copied aside and
loaded into a scratch context: a half-written file or a key that does not match the
certificate is logged and retried at the next check while the old certificate keeps
serving (loading a mismatched pair into the live context would break it).
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

Stamp = tuple[tuple[int, int, int], ...]


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ReloadingServerContext:
    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.context = _new_context()
        self._stamp = self._files_stamp()
        self.context.load_cert_chain(cert_path, key_path)
        self.reloads = 0

    def _files_stamp(self) -> Stamp:
        stats = (self.cert_path.stat(), self.key_path.stat())
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)

    def reload_if_changed(self) -> bool:
        """Load the files again if either changed since the last load; whether it did."""
        try:
            stamp = self._files_stamp()
        except OSError as exc:  # mid-swap: the next check sees the new file
            log.warning("tls_certificate_unreadable", error=str(exc))
            return False
        if stamp == self._stamp:
            return False
        with tempfile.TemporaryDirectory(prefix="auth-tls-") as scratch:
            cert = Path(shutil.copy(self.cert_path, Path(scratch) / "cert.pem"))
            key = Path(shutil.copy(self.key_path, Path(scratch) / "key.pem"))
            try:
                _new_context().load_cert_chain(cert, key)
            except (ssl.SSLError, OSError) as exc:
                log.warning(
                    "tls_certificate_reload_failed",
                    cert_path=str(self.cert_path),
                    error=str(exc),
                )
                return False
            self.context.load_cert_chain(cert, key)
        self._stamp = stamp
        self.reloads += 1
        log.info("tls_certificate_reloaded", cert_path=str(self.cert_path))
        return True

    async def watch(self, interval: float) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload_if_changed()
            except OSError as exc:  # the copy raced a swap: try again next time
                log.warning("tls_certificate_reload_failed", error=str(exc))
