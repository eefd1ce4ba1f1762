"""Checks for the tutorials' exercises: `from tutorials.exercises.checks import check_...`."""
