"""Metrics the field uses: per-class and macro F1, confusion matrix, CinC 2017 score."""
