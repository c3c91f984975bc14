"""A toy engine in one folder: a formant synthesizer (no model), to prove that an engine is one folder."""
