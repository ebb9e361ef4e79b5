"""AI alt text and SEO file names through an OpenAI-compatible chat-completions server.

Import what you need from the submodules (``ask``, ``describe``, ``languages``,
``names``...): this package itself imports nothing, so the field schema can read the
language list without loading the HTTP client.
"""
