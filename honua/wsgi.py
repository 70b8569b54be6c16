"""WSGI entry point."""
import os

from django.core.wsgi import get_wsgi_application

from honua.runtime import tune_gc

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "honua.settings")
application = get_wsgi_application()

tune_gc()
