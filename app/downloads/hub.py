"""How to reach the Hub (endpoint, token, cache, offline) and the download plan from its file metadata.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME``/``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` once, when it is
imported. :meth:`HubSettings.from_environment` reads the first two again at call time (so a changed environment is
honoured) and passes them explicitly on every call; offline mode is taken from the client's own flag, because that
flag is what it enforces on every request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from huggingface_hub import HfApi, constants

from gpt_oss_desktop.app.downloads.errors import OfflineError, classify_error
from gpt_oss_desktop.app.downloads.plan import DownloadPlan, RemoteFile, select_original_files


@dataclass(frozen=True)
class HubSettings:
    """Where and how to download.

    Attributes:
        endpoint: the Hub's base URL (``HF_ENDPOINT``; a mirror or a test server).
        cache_dir: the Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ~/.cache/huggingface/hub).
        token: a token typed into the app; None lets the client use ``HF_TOKEN`` or the stored ``hf auth login``.
        offline: no network calls at all (``HF_HUB_OFFLINE``).
    """

    endpoint: str
    cache_dir: Path
    token: str | None = None
    offline: bool = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> HubSettings:
        env = os.environ if env is None else env
        endpoint = env.get("HF_ENDPOINT") or constants.ENDPOINT
        if env.get("HF_HUB_CACHE"):
            cache = Path(env["HF_HUB_CACHE"])
        elif env.get("HF_HOME"):
            cache = Path(env["HF_HOME"]) / "hub"
        else:
            cache = Path(constants.HF_HUB_CACHE)
        return cls(endpoint.rstrip("/"), cache.expanduser(), None, constants.is_offline_mode())

    def with_token(self, token: str | None) -> HubSettings:
        """A copy using ``token`` (stripped; blank means "no token typed": the client's own lookup applies)."""
        return replace(self, token=(token or "").strip() or None)

    def api(self) -> HfApi:
        return HfApi(endpoint=self.endpoint, token=self.token)


def fetch_plan(hub: HubSettings, repo_id: str, revision: str = "main") -> DownloadPlan:
    """Ask the Hub for the repo's files (sizes, git ids, LFS sha256) and choose the ones the engine needs.

    Raises:
        DownloadError: offline, no network, 401/403, 404, or a repo without an ``original/`` checkpoint.
    """
    if hub.offline:
        raise OfflineError(f"Offline mode is on (HF_HUB_OFFLINE): cannot look up {repo_id} on the Hub.")
    try:
        info = hub.api().model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:
        raise classify_error(exc, what=repo_id) from exc
    siblings = info.siblings or []
    remote = [
        RemoteFile(
            s.rfilename,
            int(s.lfs.size if s.lfs is not None else (s.size or 0)),
            s.lfs.sha256 if s.lfs is not None else None,
            s.blob_id,
        )
        for s in siblings
    ]
    if info.sha is None:
        raise classify_error(RuntimeError("the Hub did not say which commit it served"), what=repo_id)
    return DownloadPlan(repo_id, revision, info.sha, select_original_files(repo_id, remote))
