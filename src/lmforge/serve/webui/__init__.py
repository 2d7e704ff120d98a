"""The Gradio web UI: Train, Chat and Export tabs (`lmforge webui`)."""
