"""Drop allauth address rows that are not their account's own address (User.email).

Until addresses were managed by admins only, /accounts/email/ let anyone add any address to
their account, even one another person holds or is about to be invited with. Such a row lets
its holder sign in with that address, so it goes; a row of the account's own address stays.
"""

from django.db import migrations
from django.db.models import F
from django.db.models.functions import Lower


def drop_foreign_addresses(apps, schema_editor):
    EmailAddress = apps.get_model("account", "EmailAddress")
    # Lower() on both sides rather than iexact: on SQLite, iexact against a column is a LIKE,
    # and the "_" common in addresses would match any character.
    foreign = (
        EmailAddress.objects.annotate(address=Lower("email"), own=Lower("user__email"))
        .exclude(address=F("own"))
        .values_list("pk", flat=True)
    )
    EmailAddress.objects.filter(pk__in=list(foreign)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_user_email_unique_ignoring_case"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(drop_foreign_addresses, migrations.RunPython.noop)]
