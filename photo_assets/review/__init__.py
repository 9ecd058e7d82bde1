"""The review pages (`photo-assets review`): app.py serves them; pages.py (people) and browse.py (find, places,
duplicates) render them from the people view and photo_assets.find; images.py makes face crops, photo previews and
thumbnails; world_map.py draws the places map."""
