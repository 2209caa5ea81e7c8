from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token for one client (a phone, a script). A user holds as many as they have devices.

    Only the SHA-256 of the key is stored: a database dump does not hand out working tokens. A plain
    hash is enough (no salt, no slow KDF) because keys are 256-bit random strings, not passwords.
    """

    KEY_PREFIX = "rvg_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="The device or script it was issued to.")
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=12, editable=False, help_text="The key's first characters.")
    created_at = models.DateTimeField(auto_now_add=True)
    # The client address that signed in for it (the real one behind a trusted proxy): lets a user tell
    # their own devices from a stolen password.
    created_from_ip = models.GenericIPAddressField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.key_hint}… ({self.name or 'unnamed'})"

    @staticmethod
    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class SignInAttempt(models.Model):
    """One sign-in attempt counted against TOKEN_LOGIN_RATE (apps.accounts.throttling).

    In PostgreSQL, not Redis: the budget must hold while Redis is down (a throttle that fails open hands a
    password guesser unlimited tries; one that fails closed locks everybody out). Rows live one rate
    window; sign-ins are rare and every one already costs a password hash, so a row each is cheap.
    """

    client = models.CharField(max_length=64, help_text="An IPv4 address or an IPv6 /64.")
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["client", "at"], name="accounts_signin_client_at"),
            models.Index(fields=["at"], name="accounts_signin_at"),
        ]

    def __str__(self) -> str:
        return f"{self.client} at {self.at:%Y-%m-%d %H:%M:%S}"
