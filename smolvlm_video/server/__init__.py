"""An OpenAI-compatible HTTP server for images and videos: `smolvlm-video serve`. Needs FastAPI and uvicorn:
pip install 'smolvlm-video[serve]'.

- `protocol`: a chat-completions request, read into typed objects and checked; OpenAI's error object.
- `media`: a request's images and videos, from `data:` URIs or from folders the operator shares.
- `app`: the FastAPI app over one loaded model.
"""
