"""The human preference study: blind A/B sessions, votes in a real database, statistics, CSV.

See docs/study.md. Modules: models, db, config, design, stimuli, create, slots, service, stats,
export, cli (the Gradio pages live in ui_* / pages and build only on ``study.service``).
"""
