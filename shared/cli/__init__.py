"""The ``lifeline`` command: an application on top of the library (the library never imports it)."""
