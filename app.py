"""Chalice's entry point: the app object only. Handlers live in chalice_app/handlers.py."""

from chalice import Chalice

from chalice_app.handlers import blueprint

app = Chalice(app_name="animl-ingest")
app.register_blueprint(blueprint)
