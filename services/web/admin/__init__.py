"""The admin screens of the web app: rules, templates, campaigns, forms and inboxes.

Each module is one screen with its own router; `routes_admin` puts them under
``/admin``. They write through the same application commands and validation
functions as the JSON API, so a page refuses exactly what the API refuses,
with the same message, shown next to the field it concerns.
"""
