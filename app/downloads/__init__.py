"""Getting models onto disk: the catalog, a hardware verdict, resumable verified downloads, the installed list.

Qt-free: the wizard (app/downloads/download_wizard.py) and the model manager (app/models/model_manager.py) drive these
from worker threads. Files live in the Hugging Face cache or a chosen folder; the list of installed models (and a
download in progress) in ``models.json`` in the user data folder.
"""

from gpt_oss_desktop.app.downloads.catalog import CATALOG, CatalogModel, catalog_model
from gpt_oss_desktop.app.downloads.destination import (
    Destination,
    FolderDestination,
    HubCacheDestination,
    LocalCopy,
    StorageKind,
    make_destination,
)
from gpt_oss_desktop.app.downloads.downloader import ModelDownload, RetryPolicy
from gpt_oss_desktop.app.downloads.errors import DownloadError, TransferStopped, human_bytes
from gpt_oss_desktop.app.downloads.hardware import Assessment, MachineInfo, MachineProbe, Verdict, assess
from gpt_oss_desktop.app.downloads.hub import HubSettings, fetch_plan
from gpt_oss_desktop.app.downloads.plan import DownloadPlan, RemoteFile
from gpt_oss_desktop.app.downloads.progress import DownloadEvent, Progress, Refetching, Retrying, StageChanged
from gpt_oss_desktop.app.downloads.registry import InstalledModel, ModelRegistry, PendingDownload

__all__ = [
    "CATALOG",
    "Assessment",
    "CatalogModel",
    "Destination",
    "DownloadError",
    "DownloadEvent",
    "DownloadPlan",
    "FolderDestination",
    "HubCacheDestination",
    "HubSettings",
    "InstalledModel",
    "LocalCopy",
    "MachineInfo",
    "MachineProbe",
    "ModelDownload",
    "ModelRegistry",
    "PendingDownload",
    "Progress",
    "Refetching",
    "RemoteFile",
    "RetryPolicy",
    "Retrying",
    "StageChanged",
    "StorageKind",
    "TransferStopped",
    "Verdict",
    "assess",
    "catalog_model",
    "fetch_plan",
    "human_bytes",
    "make_destination",
]
