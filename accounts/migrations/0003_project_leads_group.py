"""Create the "Project leads" group with the permissions a lead needs in the admin.

create_permissions runs here because on a fresh database the post_migrate signal that normally
creates permissions has not fired yet when this migration runs.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

LEADS_GROUP = "Project leads"  # accounts.models.LEADS_GROUP (frozen here, as migrations must be)

LEAD_PERMISSIONS = {
    "comparisons": [
        "view_project", "add_project", "change_project",
        "view_comparison", "add_comparison", "change_comparison",
        "view_response", "add_response", "change_response",
        "view_assignment",
        "view_judgment",
        "view_exportjob", "add_exportjob",
        "view_metricssnapshot",
    ],
    "accounts": [
        "view_invite", "add_invite", "change_invite",
        # Django's user admin needs "change" to add a user at all; accounts.admin.UserAdmin
        # limits leads to non-staff accounts and makes staff/permission fields read-only.
        "view_user", "add_user", "change_user",
    ],
}


def create_leads_group(apps, schema_editor):
    for app_label in LEAD_PERMISSIONS:
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True  # create_permissions skips apps without models
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=LEADS_GROUP)
    for app_label, codenames in LEAD_PERMISSIONS.items():
        perms = list(
            Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )
        missing = set(codenames) - {p.codename for p in perms}
        if missing:
            raise RuntimeError(f"Missing permissions for {app_label}: {sorted(missing)}")
        group.permissions.add(*perms)


def remove_leads_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=LEADS_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_initial"),
        ("comparisons", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_leads_group, remove_leads_group)]
