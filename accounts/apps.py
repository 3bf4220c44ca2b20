from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.leads import sync_leads_group

        post_migrate.connect(sync_leads_group, dispatch_uid="accounts.sync_leads_group")
