"""SMTP alerts in keepalived's layout, with what keepalived lacks: TLS, AUTH and a reason to retry.

Plain mode is keepalived's dialogue: a new connection per alert, ``HELO``
(not EHLO) with ``smtp_helo_name``, ``MAIL FROM``, one ``RCPT TO`` per
recipient, DATA in keepalived's header order, ``QUIT``.  Asking for STARTTLS,
implicit TLS or AUTH switches to EHLO, since those are ESMTP extensions.  One
header is added: a ``Message-ID`` built from the event's ``boot_id`` and
``seq``, so a mail re-sent after an uncertain failure is recognizable as the
same alert (mail clients thread or de-duplicate on it).

keepalived drops an alert when the server is down; here that is a retryable
``DeliveryError`` and the core decides.  A permanent refusal (5xx) is not
retryable, nor is a server that does not offer STARTTLS when ``starttls`` is
on (the mail is never sent in clear instead).  TLS always verifies the server's
certificate and name: against the system's trust store, or ``tls_context``
(e.g. ``ssl.create_default_context(cafile=...)`` for a private CA).

AUTH is never sent over a connection that is neither TLS nor STARTTLS
(AUTH PLAIN and LOGIN carry the password in base64, anyone on the path reads
it): with ``username`` but neither ``use_tls`` nor ``starttls`` every
delivery is refused before connecting, a non-retryable error naming the
reason (so the core dead-letters it), unless the operator set
``allow_plaintext_auth`` (lifeline.toml ``[smtp]``).  The connection itself
is checked again just before AUTH.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Sequence

import aiosmtplib

from services.notifier.core.formats import Mail, mail_data, mail_date, mail_for, message_id
from services.notifier.sinks.base import DeliveryContext, DeliveryError
from shared.events import Event, VrrpState

log = logging.getLogger("lifeline.notifier.smtp")


class SmtpSink:
    """Mails one alert per event that keepalived would mail for.

    ``alert_filter`` is the resolved per-object ``smtp_alert`` (default: every
    object alerts); ``no_email_faults`` suppresses FAULT mails as keepalived does;
    ``no_checker_emails`` mails a real server's checker only when it changed the
    server's state (keepalived's default mails every checker's up and down).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int = 25,
        sender: str,
        recipients: Sequence[str],
        router_id: str,
        helo_name: str,
        connect_timeout: float = 30.0,
        timeout: float = 30.0,
        starttls: bool = False,
        use_tls: bool = False,
        tls_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        allow_plaintext_auth: bool = False,
        message_id_domain: str | None = None,
        no_email_faults: bool = False,
        no_checker_emails: bool = False,
        alert_filter: Callable[[Event], bool] | None = None,
        utc_dates: bool = False,
        name: str = "smtp",
    ) -> None:
        if not recipients:
            raise ValueError("an SMTP sink needs at least one recipient (notification_email)")
        self.name = name
        self.host, self.port = host, port
        self.sender, self.recipients = sender, list(recipients)
        self.router_id, self.helo_name = router_id, helo_name
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.starttls, self.use_tls, self.tls_context = starttls, use_tls, tls_context
        self.username, self.password = username, password
        self.allow_plaintext_auth = allow_plaintext_auth
        refusal = self.plaintext_auth_refusal()
        if refusal is not None:  # said at start (and reload), not only when the first mail is due
            log.error("%s; every mail will be dead-lettered", refusal)
        self.message_id_domain = message_id_domain or helo_name
        self.no_email_faults = no_email_faults
        self.no_checker_emails = no_checker_emails
        self.alert_filter = alert_filter
        self.utc_dates = utc_dates

    def message_for(self, event: Event) -> bytes | None:
        """The exact DATA for ``event``, None when no mail is due."""
        if self.alert_filter is not None and not self.alert_filter(event):
            return None
        if self.no_email_faults and getattr(event, "state", None) is VrrpState.FAULT:
            return None
        mail: Mail | None = mail_for(event, self.router_id, no_checker_emails=self.no_checker_emails)
        if mail is None:
            return None
        ts = event.ts or time.time_ns()
        return mail_data(
            date=mail_date(ts, utc=self.utc_dates),
            sender=self.sender,
            recipients=self.recipients,
            mail=mail,
            extra_headers=[("Message-ID", message_id(event, self.message_id_domain))],
        )

    def plaintext_auth_refusal(self) -> str | None:
        """Why this sink may not log in (credentials without TLS, not allowed), or None."""
        if self.username is None or self.use_tls or self.starttls or self.allow_plaintext_auth:
            return None
        return (
            f"SMTP AUTH to {self.host}:{self.port} refused: username is set but neither use_tls nor"
            " starttls, and the password would cross the network in clear text"
            " (set starttls or use_tls, or allow_plaintext_auth in lifeline.toml [smtp])"
        )

    async def deliver(self, event: Event, context: DeliveryContext) -> None:
        data = self.message_for(event)
        if data is None:
            return
        refusal = self.plaintext_auth_refusal()
        if refusal is not None:  # before connecting: nothing of the mail or the password leaves
            log.error("%s", refusal)
            raise DeliveryError(refusal, retryable=False)
        try:
            await self._send(data)
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP server {self.host}:{self.port} refused: {exc.code} {exc.message}",
                retryable=not 500 <= exc.code < 600,
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            retry = any(not 500 <= c < 600 for c in codes)
            raise DeliveryError(f"SMTP recipients refused: {exc}", retryable=retry) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP to {self.host}:{self.port} failed: {exc}", retryable=True) from exc

    def _check_encrypted(self, client: aiosmtplib.SMTP) -> None:
        """The last word before AUTH: the connection really is TLS, or clear text was allowed."""
        if self.allow_plaintext_auth or client.get_transport_info("sslcontext") is not None:
            return
        reason = f"SMTP AUTH to {self.host}:{self.port} refused: the connection is not encrypted"
        log.error("%s", reason)
        raise DeliveryError(reason, retryable=False)

    async def _send(self, data: bytes) -> None:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            local_hostname=self.helo_name,
            timeout=self.timeout,
            use_tls=self.use_tls,
            start_tls=False,
            tls_context=self.tls_context,
        )
        await client.connect(timeout=self.connect_timeout)
        try:
            if self.starttls or self.use_tls or self.username is not None:
                await client.ehlo()
                if self.starttls:
                    if not client.supports_extension("starttls"):
                        # Same server, same answer: a configuration mismatch, not a passing fault,
                        # and the mail is never sent in clear instead.
                        raise DeliveryError(
                            f"SMTP server {self.host}:{self.port} does not offer STARTTLS"
                            " (starttls is on; not sending in clear)",
                            retryable=False,
                        )
                    await client.starttls(tls_context=self.tls_context)
                    await client.ehlo()
                if self.username is not None:
                    self._check_encrypted(client)
                    await client.login(self.username, self.password or "")
            else:
                await client.helo()
            refused, _reply = await client.sendmail(self.sender, self.recipients, data)
            for rcpt, response in refused.items():
                log.warning("SMTP server refused recipient %s: %s", rcpt, response)
            await client.quit()
        finally:
            client.close()
