"""The one exception root of petition-gateway and its per-layer subclasses.

Tree::

    GatewayError
    ├── ConfigError            bad or missing setting, bad org file (config/)
    ├── RecordsError           persistence and domain rules (records/)
    │   ├── NotFound           no such object (or not visible to the caller)
    │   ├── Conflict           unique key taken, stale state
    │   ├── InvalidTransition  a lifecycle or session state change that is not allowed
    │   └── ValidationError    a value that breaks a domain rule
    │       └── TooLarge       a request body beyond its limit (HTTP 413)
    ├── AccessDenied           the policy refused an action
    ├── SignalingError         WebSocket protocol and rooms (signaling/)
    │   └── BusError           the message bus (memory or Redis) failed
    ├── MediaError             peer connections and forwarding (gateway/media/)
    └── RecorderError          muxing, hashing, manifests (recorder/)

Errors from third-party libraries (SQLAlchemy, redis, aiortc, PyAV) are converted where they
are called, with ``raise ... from exc``. Only the edges (``signaling/``, ``web/``) turn these
into wire codes or HTTP statuses. Messages quote the offending value.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error raised by petition-gateway code."""

    #: stable machine-readable code used on the wire and in HTTP error bodies
    code = "internal_error"


class ConfigError(GatewayError):
    """A setting or configuration file is missing or invalid."""

    code = "bad_config"


class RecordsError(GatewayError):
    """A persistence or domain-rule failure in ``records/``."""

    code = "records_error"


class NotFound(RecordsError):
    """The object does not exist or is not visible to the caller."""

    code = "not_found"


class Conflict(RecordsError):
    """A unique key is taken or the object changed under the caller."""

    code = "conflict"


class InvalidTransition(RecordsError):
    """A state change that the lifecycle does not allow from the current state."""

    code = "invalid_transition"


class ValidationError(RecordsError):
    """A value breaks a domain rule."""

    code = "invalid"


class TooLarge(ValidationError):
    """A request body beyond its limit."""

    code = "too_large"


class AccessDenied(GatewayError):
    """The policy refused the action."""

    code = "forbidden"


class SignalingError(GatewayError):
    """A WebSocket protocol or room failure."""

    code = "signaling_error"


class BusError(SignalingError):
    """The message bus failed."""

    code = "bus_error"


class MediaError(GatewayError):
    """A peer connection or forwarding failure."""

    code = "media_error"


class RecorderError(GatewayError):
    """A muxing, hashing or manifest failure."""

    code = "recorder_error"
