"""Fetch one large file into a partial file that survives interruptions, with the hub client's own HTTP code.

``get_hf_file_metadata`` resolves the file at the planned commit (following the Hub's redirect to its CDN, whose
URL needs no token); ``http_get`` streams it, sending ``Range: bytes=<on disk>-`` to resume, retrying short reads
itself, and calling our tqdm bridge before each chunk is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from huggingface_hub import constants
from huggingface_hub.file_download import get_hf_file_metadata, hf_hub_url, http_get
from huggingface_hub.utils import build_hf_headers

from gpt_oss_desktop.app.downloads.errors import PlanError
from gpt_oss_desktop.app.downloads.hub import HubSettings
from gpt_oss_desktop.app.downloads.plan import DownloadPlan, RemoteFile
from gpt_oss_desktop.app.downloads.progress import bridge_bar_class

logger = logging.getLogger(__name__)

# http_get reads the body in DOWNLOAD_CHUNK_SIZE pieces (10 MiB by default) and only hands whole pieces over, so
# this is how much a pause may take to react and how much an interrupted read can lose. 1 MiB costs nothing in
# throughput (a python call per MiB) and keeps Pause instant. The client reads the constant on every call.
CHUNK_BYTES: Final = 1024 * 1024


def fetch_to_partial(
    hub: HubSettings,
    plan: DownloadPlan,
    file: RemoteFile,
    partial: Path,
    on_bytes: Callable[[int], None],
) -> None:
    """Append the missing tail of ``file`` to ``partial`` (created if absent) until it holds ``file.size`` bytes.

    Raises whatever the client raises (classified by the caller) and :class:`TransferStopped` from ``on_bytes``.
    """
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)
    url = hf_hub_url(plan.repo_id, file.path, revision=plan.commit, endpoint=hub.endpoint)
    metadata = get_hf_file_metadata(url, token=hub.token, endpoint=hub.endpoint)
    if metadata.size is not None and metadata.size != file.size:
        raise PlanError(
            f"{file.path}: the Hub now reports {metadata.size} bytes, the plan said {file.size}. Start again."
        )
    if file.sha256 is not None and metadata.etag not in (None, file.sha256):
        raise PlanError(f"{file.path}: the Hub now serves different content (etag {metadata.etag}). Start again.")
    location = metadata.location
    # The token goes only to the Hub itself; a redirect to a CDN carries its own signed URL.
    headers = (
        build_hf_headers(token=hub.token) if _same_origin(location, hub.endpoint) else build_hf_headers(token=False)
    )
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("ab") as out:
        resume = out.tell()
        if resume > file.size:
            logger.warning("%s is longer than %s (%d > %d); starting it over", partial, file.path, resume, file.size)
            out.truncate(0)
            resume = 0
        if resume == file.size:
            return
        logger.info("fetching %s from byte %d of %d", file.path, resume, file.size)
        http_get(
            location,
            out,
            resume_size=resume,
            headers=headers,
            expected_size=file.size,
            displayed_filename=file.path,
            tqdm_class=bridge_bar_class(on_bytes),
        )


def _same_origin(a: str, b: str) -> bool:
    sa, sb = urlsplit(a), urlsplit(b)
    return (sa.scheme, sa.hostname, sa.port) == (sb.scheme, sb.hostname, sb.port)
