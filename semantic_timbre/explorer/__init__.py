"""The explorer: a local web page to explore the timbre space by ear (explore_timbre_space.py).

service.py: what the app holds loaded (the Explorer) and its request errors; app.py: the FastAPI
app, its request guard and uvicorn; page.html: the page (package data).
"""

from semantic_timbre.explorer.app import (FORM_OVERHEAD_BYTES, UPLOAD_QUEUE, UPLOAD_TIME_LIMIT_SECONDS,
                                          UPLOAD_WORKERS, create_app, page_template, serve)
from semantic_timbre.explorer.service import (AUDIO_SUFFIXES, GRIFFIN_LIM_SEED, MAX_UPLOAD_BYTES, Explorer,
                                              RequestError, RequestStopped, check_upload)

__all__ = ["AUDIO_SUFFIXES", "FORM_OVERHEAD_BYTES", "GRIFFIN_LIM_SEED", "MAX_UPLOAD_BYTES", "UPLOAD_QUEUE",
           "UPLOAD_TIME_LIMIT_SECONDS", "UPLOAD_WORKERS", "Explorer", "RequestError", "RequestStopped",
           "check_upload", "create_app", "page_template", "serve"]
