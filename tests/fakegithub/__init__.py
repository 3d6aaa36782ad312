"""A fake GitHub for the test suite: a real HTTP server that PyGithub and git talk to.

See `server.FakeGitHub` for the API; `sign` computes X-Hub-Signature-256.
"""

from .dispatch import API_PREFIX
from .payloads import sign
from .server import FakeGitHub
from .transport import RecordedRequest

__all__ = ["API_PREFIX", "FakeGitHub", "RecordedRequest", "sign"]
