"""The one entry point: ``python app.py`` serves the demo at /, the study at /study, its admin at /admin."""
