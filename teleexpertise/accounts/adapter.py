from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are created by administrators for registered professionals: no self sign-up."""

    def is_open_for_signup(self, request):
        return False
