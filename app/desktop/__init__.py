"""The app on the user's desktop: launcher entry, single instance, crash reports, self-test, icon."""
