import os

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import admin_ensure


class Command(BaseCommand):
    help = "Create the first admin account unless one exists (REVENGE_ADMIN_USER, REVENGE_ADMIN_PASSWORD)."

    def handle(self, *args, **options):
        username = os.environ.get("REVENGE_ADMIN_USER", "").strip() or "admin"
        given_password = os.environ.get("REVENGE_ADMIN_PASSWORD") or None
        try:
            _user, password = admin_ensure(username=username, password=given_password)
        except ValueError as exc:
            raise CommandError(
                f"Cannot create the admin account: {exc}. Set REVENGE_ADMIN_USER to another name."
            ) from None
        url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/admin/"
        if password is None:  # (None, None): a superuser existed already
            self.stdout.write(f"Admin account exists. Sign in at {url}")
            return
        if given_password:
            # Not shown: the operator chose it, and printing it would copy it into every log of the start.
            shown, advice = "the one in REVENGE_ADMIN_PASSWORD (not shown)", "Sign in with the password you set."
        else:
            shown, advice = password, "Keep it: it is shown only this once."
        rule = "=" * 64
        self.stdout.write(
            self.style.SUCCESS(
                f"\n{rule}\n Revenge admin account created\n   URL:      {url}\n   user:     {username}\n"
                f"   password: {shown}\n {advice}\n{rule}\n"
            )
        )
