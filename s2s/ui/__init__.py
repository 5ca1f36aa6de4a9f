"""The web explorer (Gradio): one module per view; ``app.py`` only starts it."""
