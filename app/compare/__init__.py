"""The effort comparison view: one prompt at low, medium and high effort side by side."""
