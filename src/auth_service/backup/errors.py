"""Backup errors. Every message says what went wrong and what to do next; none holds a secret."""

from __future__ import annotations


class BackupError(Exception):
    """A backup, restore or verification step failed; the message is for the operator."""


class MissingKey(BackupError):
    """The backup key (or the retired key an old backup needs) is not configured."""


class WrongKey(BackupError):
    """The configured key is not the one the backup was sealed with."""


class CorruptObject(BackupError):
    """An object failed authentication, decompression or its checksum; names the object."""


class MissingObject(BackupError):
    """An object named by a manifest (or asked for) is not in the storage."""


class StorageFull(BackupError):
    """The destination has no space left."""


class NotFound(BackupError):
    """No backup matches what was asked for."""


class ToolFailed(BackupError):
    """An external tool (pg_basebackup, initdb, pg_ctl...) failed; carries its last lines."""
