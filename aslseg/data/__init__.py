"""Data stage: the embedded phantom, reading LiTS-format volumes, preparation and splits."""
