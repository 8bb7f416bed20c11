"""Folder of the `video_qa_accuracy` evaluate module (the `__init__` makes setuptools ship it with the package)."""
