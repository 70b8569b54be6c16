"""The optional SNS webhook of AWS Batch job events: signature verification and dispatch.

Every message is verified before anything is done with it: its TopicArn must be one of
HONUA_BATCH_SNS_TOPIC_ARNS, its SigningCertURL an https URL of an AWS SNS host
(sns.<region>.amazonaws.com[.cn], nothing else, no redirects), fetched through the outbound
guard and cached, and its Signature (SignatureVersion 1: RSA SHA-1, 2: RSA SHA-256) must
verify over the canonical string AWS documents for its Type. Subscription confirmations
are confirmed by fetching their SubscribeURL (same host rule); notifications carry an
EventBridge event handed to the same handler as the SQS consumer's.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

from controlplane.exceptions import OutboundFailed, OutboundRefused, SnsMessageRefused
from controlplane.services.outbound import outbound_fetch

log = logging.getLogger("honua.sns")

SNS_HOST = r"sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?"
CERT_URL_RE = re.compile(rf"^https://{SNS_HOST}/SimpleNotificationService-[A-Za-z0-9]+\.pem$")
SUBSCRIBE_URL_RE = re.compile(rf"^https://{SNS_HOST}/\?Action=ConfirmSubscription&[^#\s]*$")
SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERT_BYTES = 64 * 1024

_lock = threading.Lock()
# SigningCertURL -> its certificate (a test may put one here: the hosts are AWS's only).
certificates: dict[str, x509.Certificate] = {}


def sns_topics() -> list[str]:
    return [str(t) for t in settings.HONUA.get("BATCH", {}).get("SNS_TOPIC_ARNS", []) if t]


def sns_canonical(message: dict[str, Any]) -> bytes:
    """The string SNS signs: "Key\\nValue\\n" for the keys of the message's Type, in order
    (Subject only when the message has one)."""
    keys = SIGNED_KEYS.get(str(message.get("Type")))
    if keys is None:
        raise SnsMessageRefused(f"unknown SNS message type {message.get('Type')!r}")
    out = []
    for key in keys:
        if key not in message or message[key] is None:
            if key == "Subject":
                continue
            raise SnsMessageRefused(f"the SNS message has no {key}")
        out.append(f"{key}\n{message[key]}\n")
    return "".join(out).encode()


def sns_certificate(url: str) -> x509.Certificate:
    """The signing certificate at ``url`` (an AWS SNS host only), fetched once."""
    if not isinstance(url, str) or not CERT_URL_RE.match(url):
        raise SnsMessageRefused("the SigningCertURL is not an AWS SNS certificate URL")
    with _lock:
        cert = certificates.get(url)
    if cert is None:
        try:
            response = outbound_fetch(url, max_bytes=MAX_CERT_BYTES, timeout=10, max_redirects=0)
        except (OutboundRefused, OutboundFailed) as exc:
            raise SnsMessageRefused(f"the signing certificate could not be fetched: {exc.message}") from exc
        if response.status != 200:
            raise SnsMessageRefused(f"the signing certificate could not be fetched (HTTP {response.status})")
        try:
            cert = x509.load_pem_x509_certificate(response.content)
        except ValueError as exc:
            raise SnsMessageRefused("the signing certificate is not a PEM certificate") from exc
        with _lock:
            certificates[url] = cert
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SnsMessageRefused("the signing certificate is not valid now")
    return cert


def sns_message_verify(message: dict[str, Any]) -> None:
    """Raise SnsMessageRefused unless ``message`` is signed by SNS for an accepted topic."""
    if message.get("TopicArn") not in sns_topics():
        raise SnsMessageRefused("the SNS topic is not one Honua accepts")
    digest = HASHES.get(str(message.get("SignatureVersion")))
    if digest is None:
        raise SnsMessageRefused(f"unsupported SignatureVersion {message.get('SignatureVersion')!r}")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsMessageRefused("the SNS signature is not base64") from exc
    canonical = sns_canonical(message)
    key = sns_certificate(str(message.get("SigningCertURL") or "")).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsMessageRefused("the signing certificate has no RSA key")
    try:
        key.verify(signature, canonical, padding.PKCS1v15(), digest())
    except InvalidSignature as exc:
        raise SnsMessageRefused("the SNS signature does not verify") from exc


def sns_message_receive(*, body: bytes) -> str:
    """Verify and act on one SNS HTTP delivery; returns what was done."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise SnsMessageRefused("the body is not an SNS message") from exc
    if not isinstance(message, dict):
        raise SnsMessageRefused("the body is not an SNS message")
    sns_message_verify(message)
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL") or "")
        if not SUBSCRIBE_URL_RE.match(url):
            raise SnsMessageRefused("the SubscribeURL is not an AWS SNS URL")
        try:
            response = outbound_fetch(url, max_bytes=MAX_CERT_BYTES, timeout=10, max_redirects=0)
        except (OutboundRefused, OutboundFailed) as exc:
            raise SnsMessageRefused(f"the subscription could not be confirmed: {exc.message}") from exc
        log.info("SNS subscription confirmed", extra={"topic": message["TopicArn"], "status": response.status})
        return "confirmed" if response.status == 200 else "not-confirmed"
    if kind == "UnsubscribeConfirmation":
        return "ignored"
    from controlplane.services.batch_events import batch_event_handle, batch_event_parse

    event = batch_event_parse(str(message.get("Message") or ""))
    return batch_event_handle(event=event) if event is not None else "ignored"
