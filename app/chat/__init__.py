"""One conversation: the Qt-free session and its turns, and the widgets that show and edit it."""
