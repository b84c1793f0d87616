from tests.helpers.web_site import site

__all__ = ["site"]
