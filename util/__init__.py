"""Helpers shared by train.py, test.py, models and data: errors, images, HTML, visualisation."""
