"""RaterHub's Python client: `RaterHub(url, token).project(slug)` and the calls on it."""

from raterhub_client.client import ExportJob, ImportJob, Project, RaterHub, RaterHubError

__all__ = ["ExportJob", "ImportJob", "Project", "RaterHub", "RaterHubError"]
__version__ = "0.1.0"
