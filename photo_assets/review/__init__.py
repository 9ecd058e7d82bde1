"""The people review pages (`photo-assets review`): app.py serves them, data.py reads what they show, images.py
makes face crops and photo previews."""
