"""The domain of Xinma: models, colour rules and operations. No Flask, no XML, no HTTP."""
