"""Pretrained speech encoders (the `ssl` model family; optional extra: pip install "ser[ssl]").

source.py resolves `model.encoder` (a local directory or a hub id) to a folder and an identity;
preprocess.py reproduces each encoder's own feature extractor in torch; stack.py loads the encoder and
returns every layer's hidden states; network.py puts the head (ser/models/components/ssl_head.py) on top.
Importing this package imports neither torch nor transformers: transformers is loaded only when an encoder
is built, so code that never uses the family never imports it.
"""
