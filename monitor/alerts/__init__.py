"""Alert rules, evaluation, lifecycle, silences and notification channels."""
