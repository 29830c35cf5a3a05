"""The app's server side that is not a tab: request guarding, job handling, temporary files.

Imported only by app.py; the library (`seg/`) never imports it.
"""
