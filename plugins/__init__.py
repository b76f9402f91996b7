"""shapgov's built-in plugins, installed as ``shapgov_plugins``.

Each module registers through the ``shapgov`` entry-point group exactly as a
third-party plugin would, and marks its hooks ``trylast`` so others win.
"""
