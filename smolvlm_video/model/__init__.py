"""The model side: which checkpoint, on which device, and how chats become answers.

- `registry`: the known checkpoints and the names of devices, dtypes, attentions (torch-free).
- `devices`: the device, precision, attention and vision batching chosen for this machine, and why.
- `loading`: a checkpoint and its processor, loaded once (`load`, `load_model`, `LoadedModel`).
- `prompts` (torch-free), `inputs`, `context`: a chat's prompt text, its model inputs, and whether it fits.
- `generate` and `grammar`: answers, batched or streamed, free or constrained by `schemas` (torch-free).

Importing this package loads nothing heavy: torch and transformers come with the modules that need them.
"""
