"""Test engines that live outside demod_voice/, registered through the config (``engines.modules``)."""
