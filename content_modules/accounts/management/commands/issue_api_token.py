from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from content_modules.accounts.scopes import SCOPES
from content_modules.accounts.tokens import token_issue
from content_modules.errors import DomainError


class Command(BaseCommand):
    help = (
        "Issue a new API token for a user and print its secret (shown this once; "
        "only its hash is stored). Without --scope the token is unrestricted (every "
        "right of the user's role); each --scope limits it to what the scopes name."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="issued by manage.py", help="what it is for")
        parser.add_argument("--days", type=int, help="lifetime (default API_TOKEN_EXPIRY_DAYS)")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            help=f"limit the token (repeat for several): {', '.join(SCOPES)}",
        )

    def handle(self, *args, username, name, days=None, scopes=None, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        try:
            token, key = token_issue(user=user, name=name, expires_in_days=days, scopes=scopes)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(
            f"Token {token.prefix}… ({token.name}) expires {token.expires_at:%Y-%m-%d}; "
            f"scopes: {token.scopes or 'unrestricted'}."
        )
        self.stdout.write(key)
