"""Import jobs (large admin uploads imported by Celery), and leads' permission to view them.

create_permissions runs here because on a fresh database the post_migrate signal that normally
creates permissions has not fired yet (as in accounts.0003_project_leads_group).
"""

import django.db.models.deletion
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

LEADS_GROUP = "Project leads"  # accounts.models.LEADS_GROUP (frozen here, as migrations must be)


def let_leads_view_import_jobs(apps, schema_editor):
    app_config = apps.get_app_config("comparisons")
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = True  # create_permissions skips apps without models
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = models_module  # None in a migration's apps; kept when called on the real ones
    group = apps.get_model("auth", "Group").objects.filter(name=LEADS_GROUP).first()
    if group is not None:
        group.permissions.add(
            apps.get_model("auth", "Permission").objects.get(
                content_type__app_label="comparisons", codename="view_importjob"
            )
        )


class Migration(migrations.Migration):

    dependencies = [
        ('comparisons', '0003_project_criteria_is_a_list'),
        ('accounts', '0003_project_leads_group'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ImportJob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('filename', models.CharField(blank=True, max_length=255)),
                ('upload', models.FileField(blank=True, help_text='The stored upload; emptied once the job has finished and deleted it.', max_length=500, upload_to='imports/')),
                ('skip_existing', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='queued', max_length=16)),
                ('total_lines', models.PositiveIntegerField(default=0, help_text='Lines in the upload, counted when it was stored.')),
                ('lines_read', models.PositiveIntegerField(default=0)),
                ('created_count', models.PositiveIntegerField(default=0)),
                ('gold_count', models.PositiveIntegerField(default=0)),
                ('skipped_count', models.PositiveIntegerField(default=0)),
                ('error_count', models.PositiveIntegerField(default=0, help_text='Bad lines, all of them.')),
                ('errors', models.JSONField(blank=True, default=list, help_text='The first bad lines: [{line, message, code}].')),
                ('error', models.TextField(blank=True, help_text='Why the job failed, if not for a bad line.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='import_jobs', to='comparisons.project')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at'],
                'constraints': [models.CheckConstraint(condition=models.Q(('status__in', ['queued', 'running', 'succeeded', 'failed'])), name='importjob_status_valid')],
            },
        ),
        migrations.RunPython(let_leads_view_import_jobs, migrations.RunPython.noop),
    ]
