"""The main window and what frames it: notices, the kernel-preparation indicator, screenshots."""
