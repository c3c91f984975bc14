"""Remote OpenAI-compatible speech servers, declared in the config (``router.remotes``): the plugin."""
