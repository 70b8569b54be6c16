"""One error hierarchy: each error has a code and an HTTP status; adapters render it."""

from __future__ import annotations

from typing import Any


class HonuaError(Exception):
    """Base of every error a client may see."""

    code = "honua-error"
    status = 500
    title = "Server error"

    def __init__(self, message: str = "", *, details: list[str] | None = None, **extra: Any) -> None:
        super().__init__(message or self.title)
        self.message = message or self.title
        self.details = details or []
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details, "status": self.status}


class InvalidRequest(HonuaError):
    code = "invalid-request"
    status = 400
    title = "Invalid request"


class InvalidParameterValue(InvalidRequest):
    code = "invalid-parameter-value"
    title = "Invalid parameter value"


class MissingParameter(InvalidRequest):
    code = "missing-parameter"
    title = "Missing parameter"


class UnknownParameter(InvalidRequest):
    code = "unknown-parameter"
    title = "Unknown parameter"


class InvalidGeometry(InvalidParameterValue):
    code = "invalid-geometry"
    title = "Invalid geometry"


class PayloadTooLarge(HonuaError):
    code = "payload-too-large"
    status = 413
    title = "Payload too large"


class InputLimitExceeded(PayloadTooLarge):
    code = "input-limit-exceeded"
    title = "Input limit exceeded"


class JSONTooDeep(InvalidRequest):
    code = "json-too-deep"
    title = "JSON nested too deeply"


class JSONTooLarge(PayloadTooLarge):
    code = "json-too-large"
    title = "JSON with too many values"


class LengthRequired(HonuaError):
    code = "length-required"
    status = 411
    title = "Length required"


class OutboundRefused(InvalidParameterValue):
    """A URL Honua would fetch or notify on a client's behalf is not allowed (SSRF guard)."""

    code = "outbound-refused"
    title = "URL not allowed"


class OutboundTooLarge(PayloadTooLarge):
    code = "outbound-too-large"
    title = "The remote resource is too large"


class OutboundFailed(HonuaError):
    """A remote server did not answer as it should (connection, TLS, protocol)."""

    code = "outbound-failed"
    status = 502
    title = "The remote server could not be reached"


class OutboundTimeout(OutboundFailed):
    code = "outbound-timeout"
    status = 504
    title = "The remote server took too long"


class NotAuthenticated(HonuaError):
    code = "not-authenticated"
    status = 401
    title = "Authentication required"


class InvalidCredentials(NotAuthenticated):
    """Credentials were sent but are not valid: unknown, expired, revoked, or bound elsewhere."""

    code = "invalid-credentials"
    title = "Invalid credentials"


class PermissionDenied(HonuaError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class SnsMessageRefused(PermissionDenied):
    """An SNS message that is not provably from an accepted topic (signature, certificate host)."""

    code = "sns-message-refused"
    title = "SNS message refused"


class NoSuchProcess(HonuaError):
    code = "no-such-process"
    status = 404
    title = "No such process"


class NoSuchJob(HonuaError):
    code = "no-such-job"
    status = 404
    title = "No such job"


class NoSuchOutput(HonuaError):
    code = "no-such-output"
    status = 404
    title = "No such output"


class NoSuchService(HonuaError):
    code = "no-such-service"
    status = 404
    title = "No such service"


class NoSuchUpload(HonuaError):
    code = "no-such-upload"
    status = 404
    title = "No such upload"


class NoSuchLayer(HonuaError):
    code = "no-such-layer"
    status = 404
    title = "No such layer"


class NoSuchFeature(HonuaError):
    code = "no-such-feature"
    status = 404
    title = "No such feature"


class UploadNotCommitted(InvalidRequest):
    code = "upload-not-committed"
    title = "The upload is not committed"


class UnsupportedMediaType(HonuaError):
    code = "unsupported-media-type"
    status = 415
    title = "File type not allowed"


class ResultNotReady(HonuaError):
    code = "result-not-ready"
    status = 404
    title = "Result not ready"


class ResultNotAvailable(HonuaError):
    code = "result-not-available"
    status = 404
    title = "Result not available"


class ModeNotSupported(HonuaError):
    code = "mode-not-supported"
    status = 400
    title = "Execution mode not supported"


class QuotaExceeded(HonuaError):
    code = "quota-exceeded"
    status = 429
    title = "Too many requests"

    def __init__(self, message: str = "", *, retry_after: int = 1, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class InvalidRunTransition(HonuaError):
    code = "invalid-run-transition"
    status = 409
    title = "The job is not in a state that allows this"


class NoTierAvailable(HonuaError):
    code = "no-tier-available"
    status = 503
    title = "No execution tier can serve this request"


class DataNotInDatabase(NoTierAvailable):
    """The process needs its data in this database (the postgis tier) and an input is not:
    a file layer or inline data. The client's choice of data, so a 400, not a 503."""

    code = "data-not-in-database"
    status = 400
    title = "The input data is not in this database"


class ExecutionFailed(HonuaError):
    code = "execution-failed"
    status = 500
    title = "Execution failed"
