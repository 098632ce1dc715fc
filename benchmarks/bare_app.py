"""The baseline: a bare FastAPI endpoint that only validates the same body npsloop accepts.

It is the framework's ceiling on this machine; npsloop's ingest is reported as a ratio to it.
"""

from fastapi import FastAPI

from npsloop.services.ingest.schemas import ResponseAccepted, ResponseIn

app = FastAPI()


@app.post("/v1/responses", status_code=202)
async def accept(payload: ResponseIn) -> ResponseAccepted:
    return ResponseAccepted(id="not-stored")
