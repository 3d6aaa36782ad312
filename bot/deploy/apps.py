from django.apps import AppConfig


class DeployConfig(AppConfig):
    name = "migration_safe.deploy"
    label = "migration_safe_deploy"
    verbose_name = "migration-safe deploy"
