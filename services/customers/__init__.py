"""A customer's whole story for the people who call them: every answer, task and outcome."""
