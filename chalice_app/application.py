"""The Chalice application object, with every handler registered on it."""

from chalice import Chalice

from chalice_app.handlers import blueprint
from functions.platform.settings import APP_NAME

app = Chalice(app_name=APP_NAME)
app.register_blueprint(blueprint)
