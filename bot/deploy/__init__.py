"""Deploy side: `manage.py migrate_phase PHASE` applies the migrations of one deploy phase.

Add "migration_safe.deploy" to INSTALLED_APPS. The pure parts (phase of a migration, plan,
backoff, report) know nothing of Django's runtime; `runner` is the part that touches the database.
"""
