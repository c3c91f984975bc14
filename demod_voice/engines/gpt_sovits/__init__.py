"""GPT-SoVITS: its api_v2 server run as a child process (``process``), its plugin and its CLI command."""
