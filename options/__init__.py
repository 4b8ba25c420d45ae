"""Command-line options: base flags, training flags, test flags, and the chosen model's and dataset's."""
