"""Which model the app uses: the model manager and the model menu's downloads."""
